package pipeline

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// preciseSleep says whether paced runs finish each wait with a nanosleep
// instead of a runtime timer. Tests that run in a synctest bubble, where only
// runtime timers follow the fake clock, turn it off.
var preciseSleep = true

// timerSlack is how long before a frame is due a paced sender stops
// trusting the runtime's timer and sleeps precisely. Runtime timers are
// served by the network poller, whose wait has millisecond resolution.
const timerSlack = 2 * time.Millisecond

// preparePreciseThread pins the calling goroutine to its thread and lowers
// that thread's timer slack from the kernel's default 50 µs to 1 µs, so a
// nanosleep ends when asked. The goroutine keeps the thread until it exits,
// and the thread then exits with it.
func preparePreciseThread() {
	runtime.LockOSThread()
	unix.Prctl(unix.PR_SET_TIMERSLACK, 1000, 0, 0, 0)
}

// sleepPrecisely blocks the calling thread for d with nanosleep(2), which
// the kernel serves with a high-resolution timer.
func sleepPrecisely(d time.Duration) {
	if d <= 0 {
		return
	}
	ts := unix.NsecToTimespec(int64(d))
	for {
		var rem unix.Timespec
		if err := unix.Nanosleep(&ts, &rem); err != unix.EINTR {
			return
		}
		ts = rem
	}
}
