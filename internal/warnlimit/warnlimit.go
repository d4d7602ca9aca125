// Package warnlimit lets a repeated warning through at most once a second,
// so that a flood of drops or refusals logs a line a second, not a line
// each.
package warnlimit

import (
	"sync/atomic"
	"time"
)

// Limit lets a repeated warning through at most once a second. The zero
// value lets the first warning through. It is safe for concurrent use.
type Limit struct {
	last atomic.Int64 // when the last warning went through, in Unix ns
}

// Allow reports whether a warning may be logged now, and if so counts it.
func (w *Limit) Allow() bool {
	now := time.Now().UnixNano()
	last := w.last.Load()
	if last != 0 && now-last < int64(time.Second) {
		return false
	}
	return w.last.CompareAndSwap(last, now)
}
