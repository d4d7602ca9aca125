package pipeline

import (
	"sync/atomic"
	"time"
)

// warnLimit lets a repeated warning through at most once a second, so a
// flood of drops or refusals logs a line a second, not a line each. The
// zero value lets the first warning through. It is safe for concurrent use.
type warnLimit struct {
	last atomic.Int64 // when the last warning went through, in Unix ns
}

// allow reports whether a warning may be logged now, and if so counts it.
func (w *warnLimit) allow() bool {
	now := time.Now().UnixNano()
	last := w.last.Load()
	if last != 0 && now-last < int64(time.Second) {
		return false
	}
	return w.last.CompareAndSwap(last, now)
}
