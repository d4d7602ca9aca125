package pipeline

import "github.com/framesend/framesend/internal/warnlimit"

// warnLimit is the packager's once-a-second limit on its queue-full
// warning (see warnlimit.Limit, which the sources use too).
type warnLimit struct{ warnlimit.Limit }

func (w *warnLimit) allow() bool { return w.Allow() }
