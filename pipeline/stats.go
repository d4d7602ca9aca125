package pipeline

import (
	"fmt"
	"strings"
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
	Refused       int64 `json:"refused"` // datagrams the source refused (see Refuser)
	Padded        int64 `json:"padded"`  // short frames filled with the pad byte
	Short         int64 `json:"short"`   // short frames dropped under PartialDrop
	// Unsent counts the frames read from the source and never written: as
	// they would have been cut, so under AlignDatagram each datagram counts
	// as the frames it becomes (its short tail one more under PartialPad).
	Unsent int64 `json:"unsent"`
	// UnsentReason says why frames went unsent: "drain timeout", "count
	// reached", "stopped while waiting for the device", "the run failed",
	// "stopped".
	UnsentReason string `json:"unsent_reason,omitempty"`
	// Cut counts bytes read and never written that make no whole frame: a
	// frame a stop or a failed source left unfinished, or the short tail of
	// an unsent datagram under PartialDrop or PartialError.
	Cut       int64 `json:"cut_bytes"`
	QueueHigh int   `json:"queue_high_bytes"` // most bytes queued at once
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

// String is the one-line summary framesend prints at the end of a run. The
// rate is over the time the run was writing; when that differs much from the
// whole run (a wait for data, a stall), the rate over the run is given too.
func (s Stats) String() string {
	line := fmt.Sprintf("%s, %s in %.3f s", count(s.Frames, "frame", "frames"), count(s.Bytes, "byte", "bytes"), s.Elapsed.Seconds())
	over := 0.0
	if s.Elapsed > 0 {
		over = float64(s.Frames) / s.Elapsed.Seconds()
	}
	switch rate := s.Rate(); {
	case s.Frames == 0:
	case rate == 0 || s.Active < s.Elapsed*9/10:
		line += fmt.Sprintf(" (%.0f frames/s while writing, %.0f frames/s over the run)", rate, over)
	default:
		line += fmt.Sprintf(" (%.0f frames/s)", rate)
	}
	line += fmt.Sprintf(", %s, queue high-water %s", count(s.Writes, "write", "writes"), count(int64(s.QueueHigh), "byte", "bytes"))
	unsent := "frames unsent"
	if s.UnsentReason != "" {
		unsent += " (" + s.UnsentReason + ")"
	}
	for _, c := range []struct {
		n            int64
		one, several string
	}{
		{s.Datagrams, "datagram in", "datagrams in"},
		{s.Dropped, "datagram dropped (queue full)", "datagrams dropped (queue full)"},
		{s.KernelDropped, "datagram dropped by the kernel (receive buffer full)", "datagrams dropped by the kernel (receive buffer full)"},
		{s.Refused, "datagram refused", "datagrams refused"},
		{s.Padded, "short frame padded", "short frames padded"},
		{s.Short, "short frame dropped", "short frames dropped"},
		{s.Unsent, strings.Replace(unsent, "frames", "frame", 1), unsent},
		{s.Cut, "byte of an unfinished frame unsent", "bytes of unfinished frames unsent"},
		{s.Reconnects, "reconnect", "reconnects"},
		{s.Resent, "frame resent after an outage", "frames resent after an outage"},
	} {
		if c.n != 0 {
			line += ", " + count(c.n, c.one, c.several)
		}
	}
	return line
}

// count is n and the word for n of a thing: 1 frame, 2 frames, 0 frames.
func count(n int64, one, several string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, several)
}

// Live is a run's progress, readable from any goroutine while it runs.
type Live struct {
	frames  atomic.Int64
	bytes   atomic.Int64
	dropped atomic.Int64
	queued  atomic.Int64
	// kernelDropped is the source's count of datagrams the kernel dropped.
	kernelDropped atomic.Int64
	reconnects    atomic.Int64
}

// Reconnects returns the outages survived so far.
func (l *Live) Reconnects() int64 { return l.reconnects.Load() }

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
