package pipeline

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Stats is what a run did. Every datagram or byte the run took from its
// source and did not write is in one of the counters.
type Stats struct {
	Frames    int64 `json:"frames"`    // whole frames written
	Bytes     int64 `json:"bytes"`     // bytes written
	Writes    int64 `json:"writes"`    // write calls, short ones included
	Datagrams int64 `json:"datagrams"` // datagrams taken from a datagram source
	Dropped   int64 `json:"dropped"`   // datagrams dropped because the queue was full
	// KernelDropped counts datagrams the kernel dropped before framesend
	// could read them, because the socket's receive buffer was full (see
	// KernelDropper).
	KernelDropped int64 `json:"kernel_dropped"`
	Refused       int64 `json:"refused"`          // datagrams the source refused (see Refuser)
	Padded        int64 `json:"padded"`           // short frames filled with the pad byte
	Short         int64 `json:"short"`            // short frames dropped under PartialDrop
	Unsent        int64 `json:"unsent"`           // whole frames still queued when the drain timeout ran out
	Cut           int64 `json:"cut_bytes"`        // bytes of an unfinished frame discarded on a stop
	QueueHigh     int   `json:"queue_high_bytes"` // most bytes queued at once
	// Reconnects counts outages survived (see Reconnecter); Resent counts
	// frames written again from their start after one, part of which had
	// reached the device that went away.
	Reconnects int64         `json:"reconnects"`
	Resent     int64         `json:"resent"`
	Elapsed    time.Duration `json:"-"` // the whole run, wall time
	// Active runs from the first write to the end of the last: the last
	// write's return, or when paced, the end of its slot in the schedule.
	Active time.Duration `json:"-"`
}

// Rate returns the frames written per second while the run was writing.
func (s Stats) Rate() float64 {
	if s.Active <= 0 {
		return 0
	}
	return float64(s.Frames) / s.Active.Seconds()
}

// String is the one-line summary framesend prints at the end of a run.
func (s Stats) String() string {
	line := fmt.Sprintf("%d frames, %d bytes in %.3f s (%.0f frames/s), %d writes, queue high-water %d bytes",
		s.Frames, s.Bytes, s.Elapsed.Seconds(), s.Rate(), s.Writes, s.QueueHigh)
	for _, c := range []struct {
		n    int64
		what string
	}{
		{s.Datagrams, "datagrams in"},
		{s.Dropped, "datagrams dropped (queue full)"},
		{s.KernelDropped, "datagrams dropped by the kernel (receive buffer full)"},
		{s.Refused, "datagrams refused"},
		{s.Padded, "short frames padded"},
		{s.Short, "short frames dropped"},
		{s.Unsent, "frames unsent (drain timeout)"},
		{s.Cut, "bytes of an unfinished frame discarded at stop"},
		{s.Reconnects, "reconnects"},
		{s.Resent, "frames resent after an outage"},
	} {
		if c.n != 0 {
			line += fmt.Sprintf(", %d %s", c.n, c.what)
		}
	}
	return line
}

// Live is a run's progress, readable from any goroutine while it runs.
type Live struct {
	frames  atomic.Int64
	bytes   atomic.Int64
	dropped atomic.Int64
	queued  atomic.Int64
	// kernelDropped is the source's count of datagrams the kernel dropped.
	kernelDropped atomic.Int64
	// writeSeq goes up by one as each write call starts and again as it
	// returns: odd while a write is in progress. One counter, so the
	// per-write cost is two atomic adds.
	writeSeq   atomic.Int64
	reconnects atomic.Int64
}

// Reconnects returns the outages survived so far.
func (l *Live) Reconnects() int64 { return l.reconnects.Load() }

// WriteProgress reports whether a write call is in progress and how many
// have returned, so that a watchdog can tell a stalled device (a write
// that does not return) from an idle source.
func (l *Live) WriteProgress() (writing bool, calls int64) {
	seq := l.writeSeq.Load()
	return seq%2 == 1, seq / 2
}

// Frames returns the whole frames written so far.
func (l *Live) Frames() int64 { return l.frames.Load() }

// Bytes returns the bytes written so far.
func (l *Live) Bytes() int64 { return l.bytes.Load() }

// Dropped returns the datagrams dropped so far.
func (l *Live) Dropped() int64 { return l.dropped.Load() }

// Queued returns how many bytes of frames are waiting on the queue.
func (l *Live) Queued() int64 { return l.queued.Load() }

// KernelDropped returns how many datagrams the kernel dropped before the
// source could read them, so far.
func (l *Live) KernelDropped() int64 { return l.kernelDropped.Load() }
