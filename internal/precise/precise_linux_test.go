package precise

import (
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// onThread runs f on a goroutine of its own, which ends wired to its
// thread, so what f sets on the thread never reaches the test's.
func onThread(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

func TestSleepWaitsAtLeastD(t *testing.T) {
	for _, sleep := range []struct {
		name string
		f    func(time.Duration)
	}{{"Sleep", Sleep}, {"SleepSpin", SleepSpin}} {
		for _, d := range []time.Duration{0, -time.Second, 50 * time.Microsecond, SpinBelow, 3 * time.Millisecond} {
			start := time.Now()
			sleep.f(d)
			if took := time.Since(start); took < d {
				t.Errorf("%s(%v) returned after %v", sleep.name, d, took)
			}
		}
	}
}

// TestSleepGoesOnAfterASignal interrupts a Sleep with signals sent to its
// thread (SIGURG, the runtime's own preemption signal, which the runtime
// takes in its stride): nanosleep returns EINTR at each, and the sleep must
// still last its whole time.
func TestSleepGoesOnAfterASignal(t *testing.T) {
	const d = 100 * time.Millisecond
	var tid atomic.Int32
	var took time.Duration
	stop := make(chan struct{})
	onThread(t, func() {
		runtime.LockOSThread()
		tid.Store(int32(unix.Gettid()))
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
					unix.Tgkill(unix.Getpid(), int(tid.Load()), unix.SIGURG)
				}
			}
		}()
		start := time.Now()
		Sleep(d)
		took = time.Since(start)
		close(stop)
	})
	if took < d {
		t.Errorf("Sleep(%v) interrupted by signals returned after %v", d, took)
	}
}

func TestPrepareThreadLowersTimerSlack(t *testing.T) {
	var slack int
	var err error
	onThread(t, func() {
		PrepareThread()
		slack, err = unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	})
	if err != nil || slack != 1000 {
		t.Errorf("timer slack = %d ns (%v), want 1000", slack, err)
	}
}

func TestRealTimeSaysWhatItGot(t *testing.T) {
	var granted bool
	var attr *unix.SchedAttr
	var err error
	onThread(t, func() {
		granted = RealTime()
		attr, err = unix.SchedGetAttr(0, 0)
	})
	if err != nil {
		t.Fatalf("sched_getattr: %v", err)
	}
	if fifo := attr.Policy == unix.SCHED_FIFO && attr.Priority == 1; fifo != granted {
		t.Errorf("RealTime() = %v, but the thread's policy is %d at priority %d", granted, attr.Policy, attr.Priority)
	}
	// The test's own thread keeps its ordinary policy.
	if attr, err := unix.SchedGetAttr(0, 0); err == nil && attr.Policy == unix.SCHED_FIFO {
		t.Errorf("the test's thread has SCHED_FIFO after RealTime ran on another")
	}
}

// BenchmarkLateness reports how late Sleep and SleepSpin end a 100 µs
// wait on a prepared thread: the median and the 99th percentile.
func BenchmarkLateness(b *testing.B) {
	for _, sleep := range []struct {
		name string
		f    func(time.Duration)
	}{{"Sleep", Sleep}, {"SleepSpin", SleepSpin}} {
		b.Run(sleep.name, func(b *testing.B) {
			const d = 100 * time.Microsecond
			late := make([]time.Duration, 0, b.N)
			done := make(chan struct{})
			go func() {
				defer close(done)
				PrepareThread()
				for b.Loop() {
					start := time.Now()
					sleep.f(d)
					late = append(late, time.Since(start)-d)
				}
			}()
			<-done
			slices.Sort(late)
			b.ReportMetric(float64(late[len(late)/2].Nanoseconds())/1e3, "late-µs-median")
			b.ReportMetric(float64(late[len(late)*99/100].Nanoseconds())/1e3, "late-µs-p99")
		})
	}
}
