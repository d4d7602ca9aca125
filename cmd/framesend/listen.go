package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/framesend/framesend/pipeline"
)

func listenCommand() *cli.Command {
	flags := append(serialFlags(),
		frameSizeFlag(catFrames),
		&cli.StringFlag{Name: "expect", Value: "none", Usage: "verify the stream: none, or counter (byte k is k mod 16, as send's counter source)", EnvVars: env("expect"), Category: catFrames},
		&cli.Int64Flag{Name: "count", Aliases: []string{"n"}, Usage: "stop after this many frames; 0 = until stopped", EnvVars: envFor("listen", "count"), Category: catFrames},
		timeoutFlag("listen", 0, "stop after this long with no data; 0 = wait for ever"),
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "hex", Usage: "how frames are printed: hex (timestamp, number, bytes), jsonl or raw", EnvVars: env("format"), Category: catOutput},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print no frames, only the summary", EnvVars: env("quiet"), Category: catOutput},
	)
	return &cli.Command{
		Name:      "listen",
		Usage:     "read frames from a serial port, print them, and verify them",
		UsageText: "framesend listen --port PATH [flags]",
		Description: "Reads the port, splits the bytes into frames and prints each one. With\n" +
			"--expect counter it checks the stream framesend send's counter source makes and\n" +
			"exits 1 on any corrupt, missing or misplaced frame. A summary goes to stderr.\n\n" +
			"Examples:\n" +
			"   framesend listen --port /dev/ttyUSB1\n" +
			"   framesend listen --port /tmp/ttyB --expect counter --count 1000000 --quiet\n" +
			"   framesend listen --port /dev/ttyAMA0 --format jsonl --timeout 5s",
		Flags:  flags,
		Action: listenAction,
	}
}

// receiver frames, prints and checks what a port delivers.
type receiver struct {
	framer *pipeline.Framer
	check  *pipeline.CounterCheck // nil: no verification
	format string                 // hex, jsonl, raw, or "" for nothing
	out    *bufio.Writer
	frames int64
	bytes  int64
	limit  int64 // stop after this many frames; 0 = no limit
	line   []byte
	now    time.Time
}

func newReceiver(frameSize int, expect, format string, out io.Writer, limit int64) *receiver {
	r := &receiver{framer: pipeline.NewFramer(frameSize), format: format, out: bufio.NewWriterSize(out, 64<<10), limit: limit}
	if expect == "counter" {
		r.check = &pipeline.CounterCheck{}
	}
	return r
}

// feed takes bytes read at now and reports whether the frame limit is
// reached. Bytes past the limit are ignored.
func (r *receiver) feed(p []byte, now time.Time) bool {
	r.now = now
	r.bytes += int64(len(p))
	r.framer.Feed(p, r.frame)
	return r.done()
}

func (r *receiver) done() bool { return r.limit > 0 && r.frames >= r.limit }

func (r *receiver) frame(f []byte) {
	if r.done() {
		return
	}
	n := r.frames
	r.frames++
	if r.check != nil {
		r.check.Check(f)
	}
	switch r.format {
	case "hex":
		r.line = r.now.AppendFormat(r.line[:0], "15:04:05.000000")
		r.line = fmt.Appendf(r.line, "  #%d ", n)
		for _, b := range f {
			r.line = append(r.line, ' ')
			r.line = hex.AppendEncode(r.line, []byte{b})
		}
		r.line = append(r.line, '\n')
		r.out.Write(r.line)
	case "jsonl":
		r.line = append(r.line[:0], `{"time":"`...)
		r.line = r.now.AppendFormat(r.line, time.RFC3339Nano)
		r.line = fmt.Appendf(r.line, `","frame":%d,"hex":"`, n)
		r.line = hex.AppendEncode(r.line, f)
		r.line = append(r.line, "\"}\n"...)
		r.out.Write(r.line)
	case "raw":
		r.out.Write(f)
	}
}

// verdict returns nil if what arrived is what was expected.
func (r *receiver) verdict() error {
	if r.check == nil {
		return nil
	}
	trailing := r.framer.Pending()
	if r.done() {
		trailing = 0 // bytes past the frame limit are not looked at
	}
	return r.check.Verdict(trailing)
}

func (r *receiver) summary() string {
	s := fmt.Sprintf("%d frames, %d bytes", r.frames, r.bytes)
	if p := r.framer.Pending(); p > 0 {
		s += fmt.Sprintf(", %d trailing bytes", p)
	}
	if r.check != nil {
		s += "; " + r.check.String()
	}
	return s
}

func listenAction(c *cli.Context) error {
	path, dcfg, fs, err := portAndFrameSize(c)
	if err != nil {
		return err
	}
	expect := c.String("expect")
	if expect != "none" && expect != "counter" {
		return usagef("--expect %q is not a check: use none or counter", expect)
	}
	count := c.Int64("count")
	if count < 0 {
		return usagef("--count %d is negative: use 0 (until stopped) or a number of frames", count)
	}
	timeout := c.Duration("timeout")
	if timeout < 0 {
		return usagef("--timeout %v is negative: use 0 (wait for ever) or a duration such as 5s", timeout)
	}
	format := c.String("format")
	if format != "hex" && format != "jsonl" && format != "raw" {
		return usagef("--format %q is not a format: use hex, jsonl or raw", format)
	}
	warn := slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))
	if err := refuseUnused(c, warn, []unusedFlag{
		{"format", !c.Bool("quiet"), "has no effect with --quiet, which prints no frames"},
	}); err != nil {
		return err
	}
	if c.Bool("quiet") {
		format = ""
	}

	port, err := openPort(c, path, dcfg)
	if err != nil {
		return err
	}
	defer port.Close()
	// Read wakes at least this often, to notice a stop or the timeout.
	if err := port.SetReadTimeout(100 * time.Millisecond); err != nil {
		return failure{err}
	}

	r := newReceiver(fs, expect, format, c.App.Writer, count)
	start := time.Now()
	lastData := start
	buf := make([]byte, 64<<10)
	var rerr, outErr error
	timedOut := false
	for c.Context.Err() == nil && !r.done() {
		n, err := port.Read(buf)
		now := time.Now()
		if n > 0 {
			lastData = now
			r.feed(buf[:n], now)
			// Each read's frames go out at once: a line waits in the
			// buffer only while more of the same read is being printed.
			if werr := r.out.Flush(); werr != nil {
				outErr = werr
				break
			}
		}
		if err != nil {
			rerr = err
			break
		}
		if timeout > 0 && now.Sub(lastData) >= timeout {
			timedOut = true
			break
		}
	}
	if outErr == nil {
		outErr = r.out.Flush()
	}
	summary := r.summary()
	if outErr != nil {
		why := "stdout closed"
		if !stdoutClosed(outErr) {
			why = "stdout could not be written"
		}
		summary += "; stopped: " + why
	}
	fmt.Fprintf(c.App.ErrWriter, "framesend: listened on %s for %.3f s: %s\n", path, time.Since(start).Seconds(), summary)
	if outErr != nil && !stdoutClosed(outErr) {
		return outputError(c.App.Writer)
	}

	if rerr != nil {
		return failure{rerr}
	}
	if err := r.verdict(); err != nil {
		return failure{fmt.Errorf("verification failed: %w", err)}
	}
	if timedOut && count > 0 && r.frames < count {
		return failure{fmt.Errorf("timed out: %d of %d frames arrived, then nothing for %v", r.frames, count, timeout)}
	}
	return nil
}
