package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/framesend/framesend/internal/precise"
)

// lateLimit is how far behind its schedule a paced sender may fall before it
// starts the schedule afresh instead of catching up.
const lateLimit = 100 * time.Millisecond

// pacer keeps a paced sender's schedule: frame k is due at start + k/rate,
// so scheduling delays do not accumulate into a slower rate. The time a
// frame itself takes on the line (a BREAK before it, an idle gap after it)
// is the writer's, through FrameShaper; the pacer only says when each frame
// may start. A pacer is used by the sender goroutine alone.
type pacer struct {
	rate    float64 // frames per second, > 0
	logger  *slog.Logger
	start   time.Time // when frame 0 was due; zero before the first wait
	precise bool      // finish each wait with precise.Sleep
	timer   *time.Timer
}

// newPacer returns a pacer for rate frames per second, or nil for an
// unpaced run (rate 0). The caller's goroutine is the one that waits: a
// precise pacer pins it to its thread. Call stop when done.
func newPacer(rate float64, logger *slog.Logger) *pacer {
	if rate <= 0 {
		return nil
	}
	p := &pacer{rate: rate, logger: logger, timer: time.NewTimer(time.Hour), precise: preciseSleep}
	if p.precise {
		precise.PrepareThread()
	}
	return p
}

// stop releases the pacer's timer.
func (p *pacer) stop() { p.timer.Stop() }

// span is how long n frames take on the schedule.
func (p *pacer) span(n int64) time.Duration {
	return time.Duration(float64(n) / p.rate * float64(time.Second))
}

// wait blocks until frame sent (counting from 0) is due. A late wake-up is
// caught up by sending at once; a delay longer than lateLimit (a stalled
// device) re-anchors the schedule, so the device is not hit by a burst.
//
// drainBy is the stop's bound, zero while the run is not stopping: a frame
// due after it is not waited for, and wait returns errDrained. When ctx is
// done during the wait, wait calls stopping for the stop's bound (or the
// error that ends the run) and goes on waiting only if the frame is due
// before it.
func (p *pacer) wait(ctx context.Context, sent int64, drainBy time.Time, stopping func() (time.Time, error)) error {
	now := time.Now()
	if p.start.IsZero() {
		p.start = now
		return nil
	}
	due := p.start.Add(p.span(sent))
	wait := due.Sub(now)
	if wait <= 0 {
		if -wait > lateLimit {
			p.logger.Debug("pacing: behind schedule, re-anchoring", "late", -wait)
			p.start = now.Add(-p.span(sent))
		}
		return nil
	}
	if !drainBy.IsZero() && due.After(drainBy) {
		return errDrained
	}
	// The runtime's timers wake up to a millisecond or two late, so a
	// timer, which a stop can interrupt, covers the wait only up to
	// timerSlack before the frame is due, and a precise sleep the rest.
	coarse := wait
	if p.precise {
		coarse -= timerSlack
	}
	if coarse > 0 {
		p.timer.Reset(coarse)
		select {
		case <-p.timer.C:
		case <-ctx.Done():
			by, err := stopping()
			if err != nil {
				return err
			}
			if due.After(by) {
				return errDrained
			}
			<-p.timer.C
		}
	}
	if p.precise {
		precise.Sleep(time.Until(due))
	}
	return nil
}

// shape runs a FrameShaper hook (BeforeFrame or AfterFrame): the BREAK
// before a frame or the idle gap after it, which the writer times itself.
// It runs under a deadline of its own, and reconnects a writer that went
// away in between.
func (s *sender) shape(ctx context.Context, op string, hook func() error) error {
	for {
		s.dl.afresh() // a break or gap gets a deadline of its own
		if err := s.dl.arm(s.fs); err != nil {
			return err
		}
		err := s.dl.stalled(op, hook())
		if err == nil {
			return nil
		}
		rc, ok := s.w.(Reconnecter)
		if !ok {
			return err
		}
		if rerr := rc.Reconnect(ctx, err); rerr != nil {
			if ctx.Err() != nil && errors.Is(rerr, ctx.Err()) {
				return errDrained
			}
			return rerr
		}
		s.stats.Reconnects++
		s.cfg.Live.reconnects.Add(1)
	}
}
