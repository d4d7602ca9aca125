// Package precise waits to the microsecond, where the runtime's timers
// (served by the network poller, with millisecond resolution) wake up a
// millisecond or two late: pacing a frame rate, holding a BREAK or an idle
// line for a set time. Its waits block the calling thread; call them from a
// goroutine prepared with PrepareThread or RealTime.
package precise

import "time"

// SpinBelow is the part of a wait that SleepSpin spends spinning on the
// clock: a sleep ends up to the thread's timer slack (50 µs by default, 1 µs
// after PrepareThread) plus the wake-up latency late, too late for a
// DMX512 mark-after-break of 12 µs.
const SpinBelow = 200 * time.Microsecond

// SleepSpin blocks for d: Sleep for all but the last SpinBelow, then a spin
// on the monotonic clock, so the wait ends within a few microseconds of d.
// The spin keeps a core busy for up to SpinBelow; use Sleep where tens of
// microseconds late do not matter.
func SleepSpin(d time.Duration) {
	if d <= 0 {
		return
	}
	end := time.Now().Add(d)
	Sleep(d - SpinBelow)
	for time.Now().Before(end) {
	}
}
