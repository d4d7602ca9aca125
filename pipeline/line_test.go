package pipeline_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framesend/framesend/pipeline"
)

// deadlineWriter is an in-memory device that honours write deadlines like
// a serial port on the runtime's poller. It takes up to limit bytes (-1: no
// limit) and then takes nothing more, as a device holding flow control or a
// hung adapter does; a Write waiting on it ends at the deadline. Its drain
// hangs when hangDrain is set.
type deadlineWriter struct {
	mu        sync.Mutex
	deadline  time.Time
	limit     int
	taken     int
	hangDrain bool
	perByte   time.Duration // how long each byte takes, as a slow line
	holdEvery int           // after every holdEvery bytes, take nothing for hold
	hold      time.Duration
	heldUntil time.Time

	before, after, writes int // FrameShaper calls, and Write calls
	shape                 bool
	sizes                 []int
}

func (w *deadlineWriter) SetWriteDeadline(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deadline = t
	return nil
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	w.sizes = append(w.sizes, len(p))
	w.mu.Unlock()
	n := 0
	for n < len(p) {
		w.mu.Lock()
		full := w.limit >= 0 && w.taken >= w.limit || time.Now().Before(w.heldUntil)
		dl := w.deadline
		if !full {
			w.taken++
			n++
			if w.holdEvery > 0 && w.taken%w.holdEvery == 0 {
				w.heldUntil = time.Now().Add(w.hold)
			}
		}
		w.mu.Unlock()
		if !dl.IsZero() && time.Now().After(dl) && n < len(p) {
			return n, os.ErrDeadlineExceeded
		}
		if full {
			time.Sleep(time.Millisecond)
		} else if w.perByte > 0 {
			time.Sleep(w.perByte)
		}
	}
	return n, nil
}

// waitFull returns once the writer has taken its limit of bytes, and
// takes no more.
func (w *deadlineWriter) waitFull() {
	for {
		w.mu.Lock()
		full := w.taken >= w.limit
		w.mu.Unlock()
		if full {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (w *deadlineWriter) DrainBy(deadline time.Time) error {
	if !w.hangDrain {
		return nil
	}
	if deadline.IsZero() {
		panic("a hung drain with no deadline would hang the test")
	}
	time.Sleep(time.Until(deadline))
	return os.ErrDeadlineExceeded
}

func (w *deadlineWriter) ShapeFrames() bool { return w.shape }
func (w *deadlineWriter) BeforeFrame() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.before != w.after {
		panic("BeforeFrame twice without AfterFrame")
	}
	w.before++
	return nil
}
func (w *deadlineWriter) AfterFrame() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.after++
	return nil
}

func TestStalledWriteEndsTheRun(t *testing.T) {
	w := &deadlineWriter{limit: 700}
	cfg := pipeline.DefaultConfig()
	cfg.WriteTimeout = 200 * time.Millisecond
	start := time.Now()
	st, err := pipeline.Run(context.Background(), w, cfg)
	var se *pipeline.StallError
	if !errors.As(err, &se) || !errors.Is(err, pipeline.ErrStalled) || se.Op != "write" || se.DuringStop {
		t.Fatalf("Run = %v, want a write *StallError", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("hang-guard: Run took %v, over 25 times the 200ms write timeout", took)
	}
	if st.Frames != 100 {
		t.Errorf("frames = %d, want 100 (the 700 bytes taken)", st.Frames)
	}
	if want := "the device stopped accepting data: one write made no progress for 200ms"; err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
}

// A device that hangs after the last write (its drain never ends) ends the
// run with the stall error instead of holding it for ever.
func TestHungDrainEndsTheRun(t *testing.T) {
	for _, ack := range []bool{false, true} {
		w := &deadlineWriter{limit: -1, hangDrain: true}
		cfg := pipeline.DefaultConfig()
		cfg.Count = 10
		cfg.WriteTimeout = 200 * time.Millisecond
		cfg.DrainBeforeAck = ack
		start := time.Now()
		st, err := pipeline.Run(context.Background(), w, cfg)
		var se *pipeline.StallError
		if !errors.As(err, &se) || se.Op != "drain" {
			t.Fatalf("drain before ack %v: Run = %v, want a drain *StallError", ack, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("hang-guard: Run took %v, over 25 times the 200ms write timeout", took)
		}
		if st.Frames != 10 {
			t.Errorf("frames = %d, want 10", st.Frames)
		}
	}
}

// At one frame per write, most write calls run under a deadline armed some
// calls before, which may have passed: a write that then waits for the
// device is not a stall until it has waited the whole write timeout.
func TestPausingWriterIsNotStalledAtOneFramePerWrite(t *testing.T) {
	// The device holds for 60 ms after every 5 frames: 12 holds, 720 ms
	// in all, each shorter than the 100 ms write timeout.
	w := &deadlineWriter{limit: -1, holdEvery: 5 * 7, hold: 60 * time.Millisecond}
	cfg := pipeline.DefaultConfig()
	cfg.Count = 60
	cfg.Batch = 1
	cfg.WriteTimeout = 100 * time.Millisecond
	st, err := pipeline.Run(context.Background(), w, cfg)
	if err != nil || st.Frames != 60 {
		t.Fatalf("Run = %d frames, %v; want 60 frames, nil", st.Frames, err)
	}
}

// A device that stops taking data in the middle of a run of one-frame
// writes (on a call that did not read the clock) ends the run with the
// stall error, after the whole write timeout and not before.
func TestStalledWriteAtOneFramePerWrite(t *testing.T) {
	for _, frames := range []int{1, 16, 21, 40} {
		w := &deadlineWriter{limit: 7 * frames}
		cfg := pipeline.DefaultConfig()
		cfg.Batch = 1
		cfg.WriteTimeout = 150 * time.Millisecond
		start := time.Now()
		st, err := pipeline.Run(context.Background(), w, cfg)
		took := time.Since(start)
		var se *pipeline.StallError
		if !errors.As(err, &se) || se.Op != "write" || se.DuringStop {
			t.Fatalf("stall after %d frames: Run = %v, want a write *StallError", frames, err)
		}
		if st.Frames != int64(frames) {
			t.Errorf("stall after %d frames: frames = %d, want %d", frames, st.Frames, frames)
		}
		if took < cfg.WriteTimeout {
			t.Errorf("stall after %d frames: reported after %v, before the %v write timeout", frames, took, cfg.WriteTimeout)
		}
		if took > 5*time.Second {
			t.Errorf("hang-guard: stall after %d frames: Run took %v", frames, took)
		}
	}
}

func TestSlowWriterIsNotStalled(t *testing.T) {
	// 70 bytes at 5 ms each take 350 ms, longer than the write timeout,
	// but every deadline finds progress.
	w := &deadlineWriter{limit: -1, perByte: 5 * time.Millisecond}
	cfg := pipeline.DefaultConfig()
	cfg.Count = 10
	cfg.WriteTimeout = 100 * time.Millisecond
	st, err := pipeline.Run(context.Background(), w, cfg)
	if err != nil || st.Frames != 10 {
		t.Fatalf("Run = %d frames, %v; want 10 frames, nil", st.Frames, err)
	}
}

func TestStopEndsAWriteWaitingOnTheDevice(t *testing.T) {
	w := &deadlineWriter{limit: 7000}
	cfg := pipeline.DefaultConfig()
	cfg.WriteTimeout = 0 // wait for ever, but for the stop
	cfg.DrainTimeout = 300 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		w.waitFull()
		cancel()
	}()
	start := time.Now()
	_, err := pipeline.Run(ctx, w, cfg)
	var se *pipeline.StallError
	if !errors.As(err, &se) || !se.DuringStop {
		t.Fatalf("Run = %v, want a *StallError during the stop", err)
	}
	if !strings.Contains(err.Error(), "during the stop") {
		t.Errorf("message = %q, want it to say during the stop", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("hang-guard: Run took %v, over 15 times the 300ms drain timeout", took)
	}
}

func TestFrameShaperGetsOneFramePerWrite(t *testing.T) {
	w := &deadlineWriter{limit: -1, shape: true}
	cfg := pipeline.DefaultConfig()
	cfg.Count = 50
	cfg.WriteTimeout = time.Second
	st, err := pipeline.Run(context.Background(), w, cfg)
	if err != nil || st.Frames != 50 {
		t.Fatalf("Run = %d frames, %v; want 50, nil", st.Frames, err)
	}
	if w.before != 50 || w.after != 50 || w.writes != 50 {
		t.Errorf("BeforeFrame %d, AfterFrame %d, writes %d; want 50 each", w.before, w.after, w.writes)
	}
	for i, n := range w.sizes {
		if n != cfg.FrameSize {
			t.Fatalf("write %d carried %d bytes, want one %d-byte frame", i, n, cfg.FrameSize)
		}
	}
}
