package device

import (
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
