package main

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/framesend/framesend/device"
	"github.com/framesend/framesend/device/ptyfake"
	"github.com/framesend/framesend/pipeline"
)

func demoCommand() *cli.Command {
	demoRate := rateFlag()
	demoRate.Value, demoRate.Category = 20, ""
	return &cli.Command{
		Name:      "demo",
		Usage:     "show the whole data path on a built-in fake serial device, no hardware needed",
		UsageText: "framesend demo [--rate FPS] [--count N] [--frame-size N]",
		Description: "Opens a pseudo-terminal as a stand-in serial device, sends counter frames to it\n" +
			"through the same code path as real hardware, reads the far end, prints every\n" +
			"frame received in hex with a timestamp, and verifies the stream.\n\n" +
			"Examples:\n" +
			"   framesend demo\n" +
			"   framesend demo --rate 1000 --count 5000 --frame-size 16",
		Flags: []cli.Flag{
			demoRate,
			&cli.Int64Flag{Name: "count", Aliases: []string{"n"}, Value: 60, Usage: "frames to send", EnvVars: envFor("demo", "count")},
			frameSizeFlag(""),
		},
		Action: demoAction,
	}
}

func demoAction(c *cli.Context) error {
	cfg := pipeline.DefaultConfig()
	cfg.FrameSize = c.Int("frame-size")
	cfg.Count = c.Int64("count")
	cfg.Rate = c.Float64("rate")
	if cfg.Count < 1 {
		return usagef("--count %d: the demo needs a number of frames to send, 1 or more", cfg.Count)
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	fake, err := ptyfake.New(ptyfake.Options{})
	if err != nil {
		return failure{err}
	}
	defer fake.Close()
	port, err := device.Open(fake.Path(), device.DefaultConfig())
	if err != nil {
		return failure{err}
	}
	defer port.Close()

	stdout := c.App.Writer
	fmt.Fprintf(stdout, "framesend demo: %d frames of %d bytes at %v frames/s to %s, a pseudo-terminal standing in for a serial device\n\n",
		cfg.Count, cfg.FrameSize, cfg.Rate, fake.Path())

	// The far end reads until it has every frame the sender wrote.
	r := newReceiver(cfg.FrameSize, "counter", "hex", stdout, 0)
	var want atomic.Int64
	want.Store(cfg.Count)
	var wg sync.WaitGroup
	var rerr error
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for r.frames < want.Load() {
			fake.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			n, err := fake.Read(buf)
			if n > 0 {
				r.feed(buf[:n], time.Now())
				r.out.Flush()
			}
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				rerr = err
				return
			}
		}
	})

	st, err := pipeline.Run(c.Context, port, cfg)
	want.Store(st.Frames)
	wg.Wait()
	r.out.Flush()
	fmt.Fprintf(stdout, "\nsender:   %v\nreceiver: %s\n", st, r.summary())
	if err == nil {
		err = rerr
	}
	if err != nil {
		return failure{err}
	}
	if verr := r.verdict(); verr != nil || r.frames != st.Frames {
		return failure{fmt.Errorf("demo: the far end got %d of %d frames: %v", r.frames, st.Frames, verr)}
	}
	fmt.Fprintf(stdout, "verdict:  every byte arrived, in order, in whole frames\n")
	return nil
}
