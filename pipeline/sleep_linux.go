package pipeline

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

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
