//go:build linux

package device

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// spinBelow is the part of a wait that sleepPrecisely spends spinning on
// the clock: a nanosleep ends up to the thread's timer slack (50 µs by
// default) late, too late for a DMX512 mark-after-break of 12 µs.
const spinBelow = 200 * time.Microsecond

// sleepPrecisely blocks the calling goroutine for d: a nanosleep(2) for all
// but the last spinBelow, then a spin on the monotonic clock, so the wait
// ends within a few microseconds of d.
func sleepPrecisely(d time.Duration) {
	if d <= 0 {
		return
	}
	end := time.Now().Add(d)
	if d > spinBelow {
		ts := unix.NsecToTimespec(int64(d - spinBelow))
		for {
			var rem unix.Timespec
			if err := unix.Nanosleep(&ts, &rem); err != unix.EINTR {
				break
			}
			ts = rem
		}
	}
	for time.Now().Before(end) {
	}
}

// realtime wires the calling goroutine to its thread for good, lowers the
// thread's timer slack to 1 µs and asks for real-time priority for it
// (SCHED_FIFO 1, which needs root or CAP_SYS_NICE), so that the waits of a
// break, a mark or a gap are not cut into by other processes on a busy
// machine. It reports whether the priority was granted. The thread ends
// with the goroutine (the runtime does not reuse a thread whose goroutine
// exits wired to it), so the priority never leaks to other goroutines.
func realtime() bool {
	runtime.LockOSThread()
	unix.Prctl(unix.PR_SET_TIMERSLACK, 1000, 0, 0, 0)
	attr := unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 1}
	return unix.SchedSetAttr(0, &attr, 0) == nil
}
