package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/framesend/framesend/device"
	"github.com/framesend/framesend/pipeline"
)

func loopbackCommand() *cli.Command {
	flags := append(serialFlags(),
		frameSizeFlag(catFrames),
		&cli.Int64Flag{Name: "count", Aliases: []string{"n"}, Value: 1000, Usage: "counter frames to send and read back", EnvVars: envFor("loopback", "count"), Category: catFrames},
		&cli.IntFlag{Name: "window", Value: 1, Usage: "frames in flight at once; 1 = each frame waits for the one before to come back, so latency is the bare round trip", EnvVars: env("window"), Category: catFrames},
		&cli.DurationFlag{Name: "timeout", Value: 2 * time.Second, Usage: "give up when nothing comes back for this long", EnvVars: envFor("loopback", "timeout"), Category: catFrames},
	)
	return &cli.Command{
		Name:      "loopback",
		Usage:     "self-test a port whose TX is wired to its RX: send, read back, compare, time",
		UsageText: "framesend loopback --port PATH [flags]",
		Description: "For a port with a loopback plug, or a jumper between TX and RX (GPIO14 and\n" +
			"GPIO15 on a Raspberry Pi). Sends --count counter frames, reads each one back,\n" +
			"checks every byte, and reports throughput and round-trip latency (median, p99).\n" +
			"Exits 1 on any mismatch or missing byte. With --low-latency it runs twice, without\n" +
			"and then with the driver's low-latency mode (and an FTDI's 1 ms latency timer),\n" +
			"and reports the round trips of both.\n\n" +
			"Examples:\n" +
			"   framesend loopback --port /dev/serial0\n" +
			"   framesend loopback --port /dev/ttyUSB0 --baud 1000000 --count 10000 --window 32",
		Flags:  flags,
		Action: loopbackAction,
	}
}

func loopbackAction(c *cli.Context) error {
	path, dcfg, fs, err := portAndFrameSize(c)
	if err != nil {
		return err
	}
	count := c.Int64("count")
	if count < 1 || count > 100_000_000 {
		return usagef("--count %d is out of range: use 1 to 100000000 frames", count)
	}
	window := c.Int("window")
	if window < 1 || window > 1<<16 {
		return usagef("--window %d is out of range: use 1 to 65536 frames", window)
	}
	timeout := c.Duration("timeout")
	if timeout <= 0 {
		return usagef("--timeout %v must be positive, such as 2s", timeout)
	}

	// With --low-latency the run is made twice, without it and then with
	// it, so the round trips can be compared.
	compare := dcfg.LowLatency
	dcfg.LowLatency = false
	port, err := openPort(c, path, dcfg)
	if err != nil {
		return err
	}
	defer port.Close()
	if err := port.SetReadTimeout(50 * time.Millisecond); err != nil {
		return failure{err}
	}
	modes := []bool{false}
	if compare {
		modes = []bool{false, true}
	}
	for _, on := range modes {
		what := ""
		if compare {
			note, err := port.SetLowLatency(on)
			if err != nil {
				return failure{err}
			}
			if note != "" {
				fmt.Fprintf(c.App.ErrWriter, "framesend: %s\n", note)
			}
			what = " without --low-latency"
			if on {
				what = " with --low-latency"
			}
		}
		if err := port.DiscardInput(); err != nil {
			return failure{err}
		}
		res, err := loopback(c.Context, port, fs, count, window, timeout)
		fmt.Fprintf(c.App.ErrWriter, "framesend: loopback on %s%s: %s\n", path, what, res)
		if err != nil {
			return failure{err}
		}
	}
	return nil
}

type loopbackResult struct {
	sent, back int64
	check      pipeline.CounterCheck
	elapsed    time.Duration
	latencies  latencySample
	trailing   int
}

func (r *loopbackResult) String() string {
	s := fmt.Sprintf("%d of %s came back", r.back, nOf(r.sent, "frame", "frames"))
	if r.back > 0 && r.elapsed > 0 {
		s += fmt.Sprintf(" in %.3f s (%.0f frames/s)", r.elapsed.Seconds(), float64(r.back)/r.elapsed.Seconds())
	}
	if med, p99, ok := r.latencies.quantiles(); ok {
		s += fmt.Sprintf(", round trip median %v, p99 %v", med.Round(time.Microsecond), p99.Round(time.Microsecond))
	}
	switch {
	case r.back == 0:
		return s + "; nothing came back to verify"
	case !r.check.OK() || r.back == r.sent:
		return s + "; " + r.check.String()
	}
	return s + fmt.Sprintf("; the %d that came back are in order", r.back)
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

// loopback writes count counter frames, at most window ahead of what has
// come back, and reads them back. It returns when every frame is back,
// nothing has come for timeout, or ctx is done.
func loopback(parent context.Context, port *device.Port, fs int, count int64, window int, timeout time.Duration) (*loopbackResult, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	res := &loopbackResult{}
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
		for k := range count {
			select {
			case <-credits:
			case <-ctx.Done():
				return
			}
			for i := range frame {
				frame[i] = byte((k*int64(fs) + int64(i)) % 16)
			}
			sentAt[k%int64(window)].Store(int64(time.Since(start)))
			if _, _, err := pipeline.WriteFull(port, frame); err != nil {
				werr = err
				cancel()
				return
			}
			sent.Add(1)
		}
	})

	framer := pipeline.NewFramer(fs)
	buf := make([]byte, 64<<10)
	last := time.Now()
	var rerr error
	for res.back < count && ctx.Err() == nil {
		n, err := port.Read(buf)
		now := time.Now()
		if n > 0 {
			last = now
			framer.Feed(buf[:n], func(f []byte) {
				if res.back >= count {
					return
				}
				res.check.Check(f)
				res.latencies.add(now.Sub(start) - time.Duration(sentAt[res.back%int64(window)].Load()))
				res.back++
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
	res.elapsed = time.Since(start)
	res.trailing = framer.Pending()
	cancel()
	wg.Wait()
	res.sent = sent.Load()

	switch {
	case werr != nil:
		return res, werr
	case rerr != nil:
		return res, rerr
	}
	var problems []string
	if !res.check.OK() {
		problems = append(problems, res.check.String())
	}
	// Frames still in flight when the user stopped the test are not lost.
	if res.back < res.sent && parent.Err() == nil {
		problems = append(problems, nOf(res.sent-res.back, "frame", "frames")+" never came back (is TX wired to RX?)")
	}
	if res.trailing > 0 {
		problems = append(problems, fmt.Sprintf("%d stray bytes do not fill a frame", res.trailing))
	}
	if len(problems) > 0 {
		return res, errors.New("loopback failed: " + strings.Join(problems, "; "))
	}
	return res, nil
}

// nOf is n and the word for n of a thing: 1 frame, 2 frames, 0 frames.
func nOf(n int64, one, several string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, several)
}
