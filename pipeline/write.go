package pipeline

import (
	"context"
	"errors"
	"io"
	"os"
	"time"
)

type pendingAck struct {
	end int64 // stream position just past the datagram (and its padding)
	fn  func()
}

// ackQueue holds the acknowledgements of the datagrams taken, in stream
// order.
type ackQueue struct {
	pending []pendingAck
	head    int
}

func (q *ackQueue) add(end int64, fn func()) { q.pending = append(q.pending, pendingAck{end, fn}) }

// due reports whether a datagram ending at or before pos waits for its ack.
func (q *ackQueue) due(pos int64) bool {
	return q.head < len(q.pending) && q.pending[q.head].end <= pos
}

// fire acknowledges every datagram ending at or before pos.
func (q *ackQueue) fire(pos int64) {
	for q.due(pos) {
		q.pending[q.head].fn()
		q.pending[q.head] = pendingAck{}
		q.head++
	}
	if q.head == len(q.pending) {
		q.pending, q.head = q.pending[:0], 0
	}
}

// unwrittenEnd is the stream position just past the last byte in buf.
func (s *sender) unwrittenEnd() int64 { return s.consumed + int64(len(s.buf)-s.off) }

// fireAcks acknowledges every datagram now written whole, draining the
// writer first if the config asks for it.
func (s *sender) fireAcks() error {
	if !s.acks.due(s.consumed) {
		return nil
	}
	if s.cfg.DrainBeforeAck {
		if err := s.drain(); err != nil {
			return err
		}
	}
	s.acks.fire(s.consumed)
	return nil
}

// maxZeroWrites bounds how often a writer may accept nothing without an
// error before WriteFull gives up on it.
const maxZeroWrites = 1000

// WriteFull writes all of p to w, looping on short writes: a serial port may
// take part of a write with a nil error. It returns how many bytes were
// written and how many write calls it made.
func WriteFull(w io.Writer, p []byte) (written, calls int, err error) {
	return writeFull(w, p, nil)
}

// writeGuard bounds each write call of writeFull: arm sets the deadline for
// the rest bytes left, retry says whether a write call that took n bytes
// before its error may go on.
type writeGuard interface {
	arm(rest int) error
	retry(n int, err error) bool
}

// writeFull is WriteFull bounding each write call by g, if not nil.
func writeFull(w io.Writer, p []byte, g writeGuard) (written, calls int, err error) {
	zeros := 0
	for written < len(p) {
		if g != nil {
			if err := g.arm(len(p) - written); err != nil {
				return written, calls, err
			}
		}
		n, err := w.Write(p[written:])
		calls++
		written += n
		if err != nil {
			if g != nil && g.retry(n, err) {
				continue // slow, not stalled: a new deadline for the rest
			}
			return written, calls, err
		}
		if n == 0 {
			if zeros++; zeros >= maxZeroWrites {
				return written, calls, ErrNoProgress
			}
		}
	}
	return written, calls, nil
}

// write writes p, whole frames. If the writer fails and can reconnect, the
// frames it took whole are counted and, once it is back, writing resumes at
// the start of the frame whose write failed.
func (s *sender) write(ctx context.Context, p []byte) error {
	var g writeGuard
	if s.dl.bound.dw != nil {
		g = &s.dl
	}
	for {
		n, calls, err := writeFull(s.w, p, g)
		err = s.dl.stalled("write", err)
		s.stats.Writes += int64(calls)
		frames := n / s.fs
		done := frames * s.fs
		s.count(int64(frames))
		if err == nil {
			return nil
		}
		rc, ok := s.w.(Reconnecter)
		if !ok {
			s.stats.Bytes += int64(n - done) // a partial frame went out
			return err
		}
		if rerr := rc.Reconnect(ctx, err); rerr != nil {
			if ctx.Err() != nil && errors.Is(rerr, ctx.Err()) {
				return errStoppedReconnecting // a stop, not a failure
			}
			return rerr
		}
		s.stats.Reconnects++
		s.cfg.Live.reconnects.Add(1)
		s.dl.afresh() // the port opened again has no deadline yet
		if n > done {
			s.stats.Resent++ // part of this frame reached the old device
		}
		p = p[done:]
	}
}

// count counts frames written whole.
func (s *sender) count(frames int64) {
	n := frames * int64(s.fs)
	s.stats.Frames += frames
	s.stats.Bytes += n
	s.cfg.Live.frames.Add(frames)
	s.cfg.Live.bytes.Add(n)
}

// deadlines bounds the sender's writes, drains and shaping hooks on a
// writer with deadlines (DeadlineWriter): it is writeFull's writeGuard. It
// is used by the sender goroutine alone; bound is shared with the stop.
type deadlines struct {
	bound    bound
	timeout  time.Duration // Config.WriteTimeout
	byteTime time.Duration // Config.ByteTime

	rearmAt   time.Time // arm keeps the deadline until then
	callStart time.Time // when the write call in progress began, if clocked
	clocked   bool      // arm read the clock for the write call in progress
	unclocked int       // write calls arm still lets go without the clock
}

// armEvery is how many write calls in a row share one reading of the clock.
// At one frame per write a reading (time.Now, about 60 ns in a virtual
// machine) was most of what framesend added to the write(2) itself.
const armEvery = 16

// arm sets the writer's deadline for a write or drain of rest bytes: the
// write timeout plus the time the bytes take on the line. Resetting a
// deadline costs about as much as a small write, so a deadline still at
// least half the timeout away is kept; retry makes up for it, so a stall is
// still reported only after the whole timeout without progress.
//
// Only every armEvery-th call reads the clock; the calls in between keep
// the deadline as it is, even if it has passed. That matters only to a
// write that has to wait for the device, and retry gives such a write a
// fresh deadline instead of calling it a stall, since when it began is not
// known.
func (d *deadlines) arm(rest int) error {
	if d.bound.dw == nil || d.timeout <= 0 {
		return nil // no deadline but the stop's, which stopAt sets
	}
	if d.unclocked > 0 {
		d.unclocked--
		d.clocked = false
		return nil
	}
	d.unclocked = armEvery - 1
	now := time.Now()
	d.callStart, d.clocked = now, true
	if now.Before(d.rearmAt) {
		return nil
	}
	d.rearmAt = now.Add(d.timeout / 2)
	return d.bound.arm(now.Add(d.timeout + time.Duration(rest)*d.byteTime))
}

// retry reports whether a write call that took n bytes and ended with err
// may go on under a new deadline: its deadline passed, the stop's has not,
// and it made progress, or has waited less than the write timeout.
func (d *deadlines) retry(n int, err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) || d.bound.duringStop() {
		return false
	}
	if n > 0 || !d.clocked || time.Since(d.callStart) < d.timeout {
		d.afresh()
		return true
	}
	return false
}

// afresh makes the next arm read the clock and set a new deadline.
func (d *deadlines) afresh() { d.rearmAt, d.unclocked = time.Time{}, 0 }

// stalled turns a deadline error of op into a *StallError; other errors
// pass unchanged.
func (d *deadlines) stalled(op string, err error) error {
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	if d.bound.duringStop() {
		return &StallError{Op: op, DuringStop: true, Err: err}
	}
	return &StallError{Op: op, For: d.timeout, Err: err}
}

// armed returns the deadline armed last.
func (d *deadlines) armed() time.Time {
	d.bound.mu.Lock()
	defer d.bound.mu.Unlock()
	return d.bound.armed
}

// drain waits until the written bytes have left, bounded like a write of the
// largest batch.
func (s *sender) drain() error {
	if d, ok := s.w.(DeadlineDrainer); ok {
		s.dl.afresh() // a drain gets a deadline of its own
		if err := s.dl.arm(s.maxW); err != nil {
			return err
		}
		return s.dl.stalled("drain", d.DrainBy(s.dl.armed()))
	}
	if d, ok := s.w.(Drainer); ok {
		return d.Drain()
	}
	return nil
}
