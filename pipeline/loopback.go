package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LoopbackResult is what a Loopback run saw.
type LoopbackResult struct {
	Sent, Back int64         // frames written, and frames that came back
	Check      CounterCheck  // the check of the frames that came back
	Elapsed    time.Duration // from the first write to the last read
	Trailing   int           // bytes at the end that do not fill a frame
	latencies  latencySample
}

// String says how many frames came back, how fast, their round trips
// and what the check found.
func (r *LoopbackResult) String() string {
	s := fmt.Sprintf("%d of %s came back", r.Back, count(r.Sent, "frame", "frames"))
	if r.Back > 0 && r.Elapsed > 0 {
		s += fmt.Sprintf(" in %.3f s (%.0f frames/s)", r.Elapsed.Seconds(), float64(r.Back)/r.Elapsed.Seconds())
	}
	if med, p99, ok := r.latencies.quantiles(); ok {
		s += fmt.Sprintf(", round trip median %v, p99 %v", med.Round(time.Microsecond), p99.Round(time.Microsecond))
	}
	switch {
	case r.Back == 0:
		return s + "; nothing came back to verify"
	case !r.Check.OK() || r.Back == r.Sent:
		return s + "; " + r.Check.String()
	}
	return s + fmt.Sprintf("; the %d that came back are in order", r.Back)
}

// latencySample keeps the round trips of a loopback run in fixed memory:
// every one up to its capacity, then a uniform random sample of them
// (reservoir sampling), so a run of 100 million frames needs no more than
// one of 100 thousand.
type latencySample struct {
	seen int64
	kept []time.Duration
}

const latencySampleSize = 1 << 16

func (l *latencySample) add(d time.Duration) {
	l.seen++
	if len(l.kept) < latencySampleSize {
		l.kept = append(l.kept, d)
		return
	}
	if i := rand.Int64N(l.seen); i < latencySampleSize {
		l.kept[i] = d
	}
}

// quantiles returns the median and the 99th percentile.
func (l *latencySample) quantiles() (median, p99 time.Duration, ok bool) {
	if len(l.kept) == 0 {
		return 0, 0, false
	}
	lat := slices.Clone(l.kept)
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], true
}

// Loopback writes total counter frames of fs bytes to rw, at most window
// ahead of what has come back, and reads them back from rw, as over a
// TX-RX jumper. It blocks until every frame is back, nothing has come for
// timeout, or ctx is done; its writer goroutine has exited when it returns.
// rw's Read must return now and then even when nothing comes (a serial
// port with a read timeout), so that the timeout and ctx are seen.
func Loopback(parent context.Context, rw io.ReadWriter, fs int, total int64, window int, timeout time.Duration) (*LoopbackResult, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	res := &LoopbackResult{}
	// When each frame in flight was written, by frame number modulo the
	// window: no more than window frames are ever in flight, so the memory
	// stays the same however long the run.
	sentAt := make([]atomic.Int64, window)
	credits := make(chan struct{}, window)
	for range window {
		credits <- struct{}{}
	}
	var sent atomic.Int64
	var werr error
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		frame := make([]byte, fs)
		for k := range total {
			select {
			case <-credits:
			case <-ctx.Done():
				return
			}
			frame = AppendCounter(frame[:0], k*int64(fs), fs)
			sentAt[k%int64(window)].Store(int64(time.Since(start)))
			if _, _, err := WriteFull(rw, frame); err != nil {
				werr = err
				cancel()
				return
			}
			sent.Add(1)
		}
	})

	framer := NewFramer(fs)
	buf := make([]byte, 64<<10)
	last := time.Now()
	var rerr error
	for res.Back < total && ctx.Err() == nil {
		n, err := rw.Read(buf)
		now := time.Now()
		if n > 0 {
			last = now
			framer.Feed(buf[:n], func(f []byte) {
				if res.Back >= total {
					return
				}
				res.Check.Check(f)
				res.latencies.add(now.Sub(start) - time.Duration(sentAt[res.Back%int64(window)].Load()))
				res.Back++
				credits <- struct{}{}
			})
		}
		if err != nil {
			rerr = err
			break
		}
		if now.Sub(last) >= timeout {
			break
		}
	}
	res.Elapsed = time.Since(start)
	res.Trailing = framer.Pending()
	cancel()
	wg.Wait()
	res.Sent = sent.Load()

	switch {
	case werr != nil:
		return res, werr
	case rerr != nil:
		return res, rerr
	}
	var problems []string
	if !res.Check.OK() {
		problems = append(problems, res.Check.String())
	}
	// Frames still in flight when the user stopped the test are not lost.
	if res.Back < res.Sent && parent.Err() == nil {
		problems = append(problems, count(res.Sent-res.Back, "frame", "frames")+" never came back (is TX wired to RX?)")
	}
	if res.Trailing > 0 {
		problems = append(problems, fmt.Sprintf("%d stray bytes do not fill a frame", res.Trailing))
	}
	if len(problems) > 0 {
		return res, errors.New("loopback failed: " + strings.Join(problems, "; "))
	}
	return res, nil
}
