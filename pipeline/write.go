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

// unwrittenEnd is the stream position just past the last byte in buf.
func (s *sender) unwrittenEnd() int64 { return s.consumed + int64(len(s.buf)-s.off) }

// fireAcks acknowledges every datagram now written whole, draining the
// writer first if the config asks for it.
func (s *sender) fireAcks() error {
	if s.ackHead == len(s.acks) || s.acks[s.ackHead].end > s.consumed {
		return nil
	}
	if s.cfg.DrainBeforeAck {
		if err := s.drain(); err != nil {
			return err
		}
	}
	for s.ackHead < len(s.acks) && s.acks[s.ackHead].end <= s.consumed {
		s.acks[s.ackHead].fn()
		s.acks[s.ackHead] = pendingAck{}
		s.ackHead++
	}
	if s.ackHead == len(s.acks) {
		s.acks, s.ackHead = s.acks[:0], 0
	}
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
	if s.bound.dw != nil {
		g = s
	}
	for {
		n, calls, err := writeFull(s.w, p, g)
		err = s.stalled("write", err)
		s.stats.Writes += int64(calls)
		done := n / s.fs * s.fs
		s.count(done)
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
		s.armAfresh() // the port opened again has no deadline yet
		if n > done {
			s.stats.Resent++ // part of this frame reached the old device
		}
		p = p[done:]
	}
}

func (s *sender) count(n int) {
	frames := int64(n / s.fs)
	s.stats.Frames += frames
	s.stats.Bytes += int64(n)
	s.cfg.Live.frames.Add(frames)
	s.cfg.Live.bytes.Add(int64(n))
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
func (s *sender) arm(rest int) error {
	if s.bound.dw == nil || s.cfg.WriteTimeout <= 0 {
		return nil // no deadline but the stop's, which stopAt sets
	}
	if s.unclocked > 0 {
		s.unclocked--
		s.clocked = false
		return nil
	}
	s.unclocked = armEvery - 1
	now := time.Now()
	s.callStart, s.clocked = now, true
	if now.Before(s.rearmAt) {
		return nil
	}
	s.rearmAt = now.Add(s.cfg.WriteTimeout / 2)
	return s.bound.arm(now.Add(s.cfg.WriteTimeout + time.Duration(rest)*s.cfg.ByteTime))
}

// retry reports whether a write call that took n bytes and ended with err
// may go on under a new deadline: its deadline passed, the stop's has not,
// and it made progress, or has waited less than the write timeout.
func (s *sender) retry(n int, err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) || s.bound.duringStop() {
		return false
	}
	if n > 0 || !s.clocked || time.Since(s.callStart) < s.cfg.WriteTimeout {
		s.armAfresh()
		return true
	}
	return false
}

// armAfresh makes the next arm read the clock and set a new deadline.
func (s *sender) armAfresh() { s.rearmAt, s.unclocked = time.Time{}, 0 }

// stalled turns a deadline error of op into a *StallError; other errors
// pass unchanged.
func (s *sender) stalled(op string, err error) error {
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	if s.bound.duringStop() {
		return &StallError{Op: op, DuringStop: true, Err: err}
	}
	return &StallError{Op: op, For: s.cfg.WriteTimeout, Err: err}
}

// drain waits until the written bytes have left, bounded like a write of the
// largest batch.
func (s *sender) drain() error {
	if d, ok := s.w.(DeadlineDrainer); ok {
		s.armAfresh() // a drain gets a deadline of its own
		if err := s.arm(s.maxW); err != nil {
			return err
		}
		s.bound.mu.Lock()
		deadline := s.bound.armed
		s.bound.mu.Unlock()
		return s.stalled("drain", d.DrainBy(deadline))
	}
	if d, ok := s.w.(Drainer); ok {
		return d.Drain()
	}
	return nil
}
