//go:build !linux

package precise

import "time"

// PrepareThread does nothing where the timer slack cannot be set.
func PrepareThread() {}

// RealTime does nothing and reports false where framesend does not ask for
// real-time priority.
func RealTime() bool { return false }

// Sleep blocks for d with the runtime's timer, the best sleep without
// Linux's nanosleep and timer slack.
func Sleep(d time.Duration) { time.Sleep(d) }
