//go:build !linux

package pipeline

import "time"

// preparePreciseThread does nothing where the timer slack cannot be set.
func preparePreciseThread() {}

// sleepPrecisely blocks for d with the runtime's timer, the best sleep
// without Linux's nanosleep and timer slack.
func sleepPrecisely(d time.Duration) { time.Sleep(d) }
