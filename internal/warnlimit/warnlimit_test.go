package warnlimit

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestLimitOncePerSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w Limit
		steps := []struct {
			after time.Duration
			want  bool
		}{
			{0, true},
			{0, false},
			{999 * time.Millisecond, false},
			{time.Millisecond, true},
			{500 * time.Millisecond, false},
			{2 * time.Second, true},
		}
		for i, s := range steps {
			time.Sleep(s.after)
			if got := w.Allow(); got != s.want {
				t.Errorf("step %d (after %v): Allow() = %v, want %v", i, s.after, got, s.want)
			}
		}
	})
}
