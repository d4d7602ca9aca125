package pipeline

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// DeadlineWriter is implemented by writers whose writes can be bounded by a
// deadline, such as framesend's serial port. A write
// cut short by the deadline returns what it wrote and an error for which
// errors.Is(err, os.ErrDeadlineExceeded) holds. SetWriteDeadline may be
// called while a Write is in progress, from another goroutine.
//
// Run arms a deadline before every write call, so that a device that stops
// taking data ends the run with a *StallError after Config.WriteTimeout
// instead of holding it for ever, and a stop ends a write still waiting when
// the drain timeout runs out.
type DeadlineWriter interface {
	SetWriteDeadline(t time.Time) error
}

// DeadlineDrainer is implemented by writers that can drain with a deadline
// (a serial port watching its output queue). Run prefers it to Drainer.
type DeadlineDrainer interface {
	DrainBy(deadline time.Time) error
}

// FrameShaper is implemented by writers that shape the line around every
// frame: a BREAK before it (DMX512), an idle gap after it (Modbus RTU). When
// ShapeFrames reports true, the sender writes one frame per call and calls
// BeforeFrame before and AfterFrame after each. Both block for the time
// they shape, and honour the write deadline the sender arms before them.
type FrameShaper interface {
	ShapeFrames() bool
	BeforeFrame() error
	AfterFrame() error
}

// ErrStalled is what a *StallError wraps: the writer made no progress for
// Config.WriteTimeout, or a stop's drain timeout ran out with a write or a
// drain still waiting.
var ErrStalled = errors.New("the device stopped accepting data")

// StallError ends a run whose writer stopped taking data.
type StallError struct {
	Op         string        // "write" or "drain"
	For        time.Duration // how long no progress was made
	DuringStop bool          // the stop's drain timeout ran out first
	Err        error         // the writer's error
}

func (e *StallError) Error() string {
	if e.DuringStop {
		return fmt.Sprintf("%v during the stop; quitting with a %s still pending", ErrStalled, e.Op)
	}
	return fmt.Sprintf("%v: one %s made no progress for %v", ErrStalled, e.Op, e.For.Round(100*time.Millisecond))
}

// Unwrap gives errors.Is both ErrStalled and the writer's error.
func (e *StallError) Unwrap() []error { return []error{ErrStalled, e.Err} }

// bound keeps a writer's deadline: the one armed for the write or drain in
// progress, and the stop's, which the callback run when ctx is done sets
// from another goroutine while a write may be waiting.
type bound struct {
	dw DeadlineWriter // nil: the writer has no deadlines

	mu    sync.Mutex
	stop  time.Time // when a stop's drain ends; zero until ctx is done
	armed time.Time // the deadline set on dw
}

// stopAt fixes the stop's bound at t unless it is fixed already, cuts the
// armed deadline to it, and returns it.
func (b *bound) stopAt(t time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stop.IsZero() {
		b.stop = t
		if b.dw != nil && (b.armed.IsZero() || t.Before(b.armed)) {
			b.dw.SetWriteDeadline(t)
			b.armed = t
		}
	}
	return b.stop
}

// arm sets the writer's deadline to after (or no deadline if zero), cut at
// the stop's bound.
func (b *bound) arm(after time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.stop.IsZero() && (after.IsZero() || b.stop.Before(after)) {
		after = b.stop
	}
	b.armed = after
	if b.dw == nil {
		return nil
	}
	return b.dw.SetWriteDeadline(after)
}

// duringStop reports whether the armed deadline is the stop's.
func (b *bound) duringStop() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.stop.IsZero() && !b.armed.Before(b.stop)
}
