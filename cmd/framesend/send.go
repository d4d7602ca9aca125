package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/framesend/framesend/device"
	"github.com/framesend/framesend/pipeline"
)

func sendCommand() *cli.Command {
	flags := append(serialFlags(),
		&cli.StringFlag{Name: "source", Value: "counter", Usage: "where the data comes from: " + sourceHelp + "; counter is byte k = k mod 16", EnvVars: env("source"), Category: catSource},
		&cli.StringFlag{Name: "align", Usage: "stream (cut frames from the bytes of all datagrams) or datagram (each datagram starts a new frame); default datagram for udp, stream otherwise", EnvVars: env("align"), Category: catSource},
		&cli.StringFlag{Name: "partial", Value: "pad", Usage: "a short last frame (end of the source, or of a datagram when aligned): pad, drop or error", EnvVars: env("partial"), Category: catSource},
		&cli.StringFlag{Name: "pad", Value: "0x00", Usage: "the `BYTE` that pads a short frame", EnvVars: env("pad"), Category: catSource},
		&cli.StringFlag{Name: "overflow", Usage: "when the queue is full: block (hold the source back), drop-newest or drop-oldest; default drop-newest for udp, block otherwise", EnvVars: env("overflow"), Category: catSource},
		&cli.StringFlag{Name: "allow-from", Usage: "udp: accept datagrams only from these `CIDRs` (comma-separated); others are dropped and counted", EnvVars: env("allow-from"), Category: catSource},
		&cli.IntFlag{Name: "frame-size", Aliases: []string{"s"}, Value: 7, Usage: "bytes per frame, 1 to 4096", EnvVars: env("frame-size"), Category: catFrames},
		&cli.Int64Flag{Name: "count", Aliases: []string{"n"}, Usage: "frames to send; 0 = until stopped or the source ends", EnvVars: env("count"), Category: catFrames},
		&cli.Float64Flag{Name: "rate", Aliases: []string{"r"}, Usage: "frames per second; 0 = as fast as the device takes them", EnvVars: env("rate"), Category: catFrames},
		&cli.IntFlag{Name: "batch", Usage: "whole frames per write call at most; 0 = automatic (coalesce ready frames up to 4 KiB unpaced, one frame paced)", EnvVars: env("batch"), Category: catFrames},
		&cli.IntFlag{Name: "queue", Value: 16, Usage: "queue capacity between source and sender, in blocks (a block is up to 64 KiB of frames, or about 10 ms of frames when paced)", EnvVars: env("queue"), Category: catFrames},
		&cli.DurationFlag{Name: "drain-timeout", Value: 5 * time.Second, Usage: "on a stop, how long queued frames are still sent", EnvVars: env("drain-timeout"), Category: catFrames},
		&cli.StringFlag{Name: "summary", Value: "text", Usage: "final summary on stderr: text or json", EnvVars: env("summary"), Category: catOutput},
		&cli.DurationFlag{Name: "stats-interval", Usage: "log frames, frames/s, queue depth and drops every `D`; 0 = never", EnvVars: env("stats-interval"), Category: catOutput},
		&cli.BoolFlag{Name: "no-progress", Usage: "no progress bar (it shows only when stderr is a terminal and the total is known)", EnvVars: env("no-progress"), Category: catOutput},
	)
	flags = append(flags, logFlags()...)
	return &cli.Command{
		Name:      "send",
		Usage:     "send frames to a serial port",
		UsageText: "framesend send --port PATH [flags]",
		Description: "Cuts the source into frames of --frame-size bytes and writes them to the port,\n" +
			"whole and in order. Ctrl-C (or SIGTERM) stops the source, sends what is queued\n" +
			"(up to --drain-timeout), prints the summary and exits 0; a second Ctrl-C quits at once.\n\n" +
			"Examples:\n" +
			"   framesend send --port /dev/ttyUSB0 --count 1000\n" +
			"   framesend send --port /dev/ttyAMA0 --baud 9600 --rate 100\n" +
			"   framesend send --port /dev/ttyUSB0 --source file:capture.bin --partial drop\n" +
			"   producer | framesend send --port /dev/ttyUSB0 --source hex:-\n" +
			"   framesend send --port /dev/ttyUSB0 --source udp:9000 --stats-interval 10s\n" +
			"   FRAMESEND_PORT=/tmp/ttyA framesend send --frame-size 16 --batch 1",
		Flags:  flags,
		Action: sendAction,
	}
}

func sendAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("send takes no arguments, got %q (flags start with --)", c.Args().First())
	}
	path, dcfg, err := portConfig(c)
	if err != nil {
		return err
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	summary := c.String("summary")
	if summary != "text" && summary != "json" {
		return usagef("--summary %q is not a format: use text or json", summary)
	}
	cfg := pipeline.DefaultConfig()
	cfg.FrameSize = c.Int("frame-size")
	cfg.Count = c.Int64("count")
	cfg.Rate = c.Float64("rate")
	cfg.Batch = c.Int("batch")
	cfg.Queue = c.Int("queue")
	cfg.DrainTimeout = c.Duration("drain-timeout")
	cfg.Logger = log
	cfg.Live = &pipeline.Live{}
	cfg.Partial = pipeline.Partial(c.String("partial"))
	pad, err := strconv.ParseUint(c.String("pad"), 0, 8)
	if err != nil {
		return usagef("--pad %q is not a byte: use 0 to 255, as 0x00, 0xff or 32", c.String("pad"))
	}
	cfg.Pad = byte(pad)
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	interval := c.Duration("stats-interval")
	if interval < 0 {
		return usagef("--stats-interval %v is negative: use 0 (never) or a duration such as 10s", interval)
	}
	allow, err := parseAllow(c.String("allow-from"))
	if err != nil {
		return err
	}
	spec := c.String("source")
	isUDP := strings.HasPrefix(spec, "udp:")
	if len(allow) > 0 && !isUDP {
		return usagef("--allow-from applies to udp sources only, not --source %s", spec)
	}
	cfg.Align = pipeline.Align(c.String("align"))
	if cfg.Align == "" {
		cfg.Align = pipeline.AlignStream
		if isUDP {
			cfg.Align = pipeline.AlignDatagram
		}
	}
	cfg.Overflow = pipeline.Overflow(c.String("overflow"))
	if cfg.Overflow == "" {
		cfg.Overflow = pipeline.OverflowBlock
		if isUDP {
			cfg.Overflow = pipeline.OverflowDropNewest
		}
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}

	src, err := openSource(spec, c.App.Reader, cfg.FrameSize, cfg.Align, cfg.Partial, allow, log)
	if err != nil {
		return err
	}
	defer src.close()
	cfg.Source = src.src
	if !src.datagram && cfg.Align == pipeline.AlignDatagram {
		return usagef("--align datagram needs a source with datagrams (hex or udp); %s is a byte stream", spec)
	}
	if !src.datagram && cfg.Overflow != pipeline.OverflowBlock {
		return usagef("--overflow %s needs a source with datagrams (hex or udp): a byte stream cannot lose a block without shifting every later frame", cfg.Overflow)
	}
	total := src.frames
	if cfg.Count > 0 && (total == 0 || cfg.Count < total) {
		total = cfg.Count
	}

	port, err := device.Open(path, dcfg)
	if err != nil {
		return err
	}
	defer port.Close()
	log.Debug("port open", "port", path, "line", dcfg.String())

	stopReports := report(c, cfg.Live, total, interval, cfg.Queue, log, c.Bool("no-progress"))
	st, err := runBounded(c.Context, port, cfg)
	stopReports()
	printSummary(c, summary, path, st, err)
	if err != nil {
		if errors.Is(err, device.ErrGone) {
			return failure{fmt.Errorf("%w (after %d frames)", err, st.Frames)}
		}
		var herr *pipeline.HexError
		if errors.As(err, &herr) {
			return usageError{err} // bad input on stdin, found as it came
		}
		return failure{err}
	}
	return nil
}

// stopGrace is how long after the drain timeout a stop waits for a write
// that the device does not take before giving up on it.
const stopGrace = 2 * time.Second

// errStuck ends a stop whose last write never completed.
var errStuck = errors.New("the device stopped accepting data during the stop; quitting with a write still pending")

// runBounded runs the pipeline and bounds a stop: a write in progress cannot
// be interrupted, so once ctx is done Run gets the drain timeout and a grace
// period, and after that the command gives up (the process then exits, which
// ends the pending write).
func runBounded(ctx context.Context, port *device.Port, cfg pipeline.Config) (pipeline.Stats, error) {
	type result struct {
		st  pipeline.Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := pipeline.Run(ctx, port, cfg)
		done <- result{st, err}
	}()
	select {
	case r := <-done:
		return r.st, r.err
	case <-ctx.Done():
	}
	t := time.NewTimer(cfg.DrainTimeout + stopGrace)
	defer t.Stop()
	select {
	case r := <-done:
		return r.st, r.err
	case <-t.C:
		return pipeline.Stats{Frames: cfg.Live.Frames(), Bytes: cfg.Live.Bytes()}, failure{errStuck}
	}
}

func printSummary(c *cli.Context, format, path string, st pipeline.Stats, err error) {
	w := c.App.ErrWriter
	if format == "json" {
		out := struct {
			Port string `json:"port"`
			pipeline.Stats
			Seconds float64 `json:"seconds"`
			Rate    float64 `json:"frames_per_second"`
			Error   string  `json:"error,omitempty"`
		}{Port: path, Stats: st, Seconds: st.Elapsed.Seconds(), Rate: st.Rate()}
		if err != nil {
			out.Error = message(err)
		}
		b, _ := json.Marshal(out)
		fmt.Fprintln(w, string(b))
		return
	}
	fmt.Fprintf(w, "framesend: sent %v to %s\n", st, path)
}
