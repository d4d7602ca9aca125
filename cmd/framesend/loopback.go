package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/framesend/framesend/pipeline"
)

func loopbackCommand() *cli.Command {
	flags := append(serialFlags(),
		frameSizeFlag(catFrames),
		&cli.Int64Flag{Name: "count", Aliases: []string{"n"}, Value: 1000, Usage: "counter frames to send and read back", EnvVars: envFor("loopback", "count"), Category: catFrames},
		&cli.IntFlag{Name: "window", Value: 1, Usage: "frames in flight at once; 1 = each frame waits for the one before to come back, so latency is the bare round trip", EnvVars: env("window"), Category: catFrames},
		timeoutFlag("loopback", 2*time.Second, "give up when nothing comes back for this long"),
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
		res, err := pipeline.Loopback(c.Context, port, fs, count, window, timeout)
		fmt.Fprintf(c.App.ErrWriter, "framesend: loopback on %s%s: %s\n", path, what, res)
		if err != nil {
			return failure{err}
		}
	}
	return nil
}
