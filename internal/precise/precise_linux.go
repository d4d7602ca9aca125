package precise

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// PrepareThread wires the calling goroutine to its thread for good and
// lowers that thread's timer slack from the kernel's default 50 µs to 1 µs,
// so a Sleep ends when asked. The runtime does not reuse a thread whose
// goroutine exits wired to it, so the thread, and what was set on it, ends
// with the goroutine.
func PrepareThread() {
	runtime.LockOSThread()
	unix.Prctl(unix.PR_SET_TIMERSLACK, 1000, 0, 0, 0)
}

// RealTime is PrepareThread that also asks real-time priority for the
// thread (SCHED_FIFO 1, which needs root or CAP_SYS_NICE), so that its waits
// are not cut into by other processes on a busy machine. It reports whether
// the priority was granted; the thread is prepared either way. The priority
// ends with the thread, so it never reaches another goroutine.
func RealTime() bool {
	PrepareThread()
	attr := unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 1}
	return unix.SchedSetAttr(0, &attr, 0) == nil
}

// Sleep blocks the calling thread for d with nanosleep(2), which the kernel
// serves with a high-resolution timer. A signal (such as the runtime's
// preemption signal) does not cut it short: the sleep goes on for what is
// left.
func Sleep(d time.Duration) {
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
