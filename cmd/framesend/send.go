package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/framesend/framesend/device"
	"github.com/framesend/framesend/pipeline"
	"github.com/framesend/framesend/source"
)

func sendCommand() *cli.Command {
	flags := append(serialFlags(),
		&cli.StringFlag{Name: "source", Value: "counter", Usage: "where the data comes from: " + sourceHelp + "; counter is byte k = k mod 16", EnvVars: env("source"), Category: catSource},
		&cli.StringFlag{Name: "align", Usage: "stream (cut frames from the bytes of all datagrams) or datagram (each datagram starts a new frame); default datagram for udp and mqtt, stream otherwise", EnvVars: env("align"), Category: catSource},
		&cli.StringFlag{Name: "partial", Value: "pad", Usage: "a short last frame (end of the source, or of a datagram when aligned): pad, drop or error", EnvVars: env("partial"), Category: catSource},
		&cli.StringFlag{Name: "pad", Value: "0x00", Usage: "the `BYTE` that pads a short frame", EnvVars: env("pad"), Category: catSource},
		&cli.StringFlag{Name: "overflow", Usage: "when the queue is full: block (hold the source back), drop-newest or drop-oldest; default drop-newest for udp, block otherwise (mqtt and the byte streams take only block)", EnvVars: env("overflow"), Category: catSource},
		&cli.StringFlag{Name: "allow-from", Usage: "udp: accept datagrams only from these `CIDRs` (comma-separated); others are dropped and counted", EnvVars: env("allow-from"), Category: catSource},
		frameSizeFlag(catFrames),
		&cli.Int64Flag{Name: "count", Aliases: []string{"n"}, Usage: "frames to send; 0 = until stopped or the source ends", EnvVars: env("count"), Category: catFrames},
		rateFlag(),
		&cli.IntFlag{Name: "batch", Usage: "whole frames per write call at most; 0 = automatic (coalesce ready frames up to 4 KiB unpaced, one frame paced)", EnvVars: env("batch"), Category: catFrames},
		&cli.StringFlag{Name: "queue", Value: "1MiB", Usage: "room between source and sender: a `SIZE` with its unit (4MiB, 512KiB, 65536B) or a number of frames (10000); when it is full the source is held back, or udp datagrams are dropped (--overflow)", EnvVars: env("queue"), Category: catFrames},
		&cli.DurationFlag{Name: "drain-timeout", Value: 5 * time.Second, Usage: "on a stop, how long queued frames are still sent", EnvVars: env("drain-timeout"), Category: catFrames},
		&cli.BoolFlag{Name: "reconnect", Usage: "when the device goes away, wait for its path to come back, reopen it and resume at the frame whose write failed", EnvVars: env("reconnect"), Category: catSerial},
		&cli.DurationFlag{Name: "reconnect-timeout", Usage: "with --reconnect, how long to wait for the device to come back; 0 = for ever", EnvVars: env("reconnect-timeout"), Category: catSerial},
		&cli.DurationFlag{Name: "write-timeout", Value: 10 * time.Second, Usage: "give up (exit 1) when one write makes no progress for this long; 0 = wait for ever", EnvVars: env("write-timeout"), Category: catSerial},
		&cli.StringFlag{Name: "summary", Value: "text", Usage: "final summary on stderr: text or json", EnvVars: env("summary"), Category: catOutput},
		&cli.DurationFlag{Name: "stats-interval", Usage: "log frames, frames/s, queue depth and drops every `D`; 0 = never", EnvVars: env("stats-interval"), Category: catOutput},
		&cli.BoolFlag{Name: "no-progress", Usage: "no progress bar (it shows only when stderr is a terminal and the total is known)", EnvVars: env("no-progress"), Category: catOutput},
	)
	flags = append(flags, shapeFlags()...)
	flags = append(flags, mqttFlags()...)
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
			"   framesend send --port /dev/ttyUSB0 --source 'mqtt://broker.lan/devices/pi7/#' --client-id pi7\n" +
			"   FRAMESEND_PORT=/tmp/ttyA framesend send --frame-size 16 --batch 1",
		Flags:  flags,
		Action: sendAction,
	}
}

// minStatsInterval is the shortest --stats-interval: the reports' clock
// ticks no finer, and a shorter one would be a flood, not a report.
const minStatsInterval = 10 * time.Millisecond

func sendAction(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
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
	if cfg.QueueBytes, err = parseQueue(c.String("queue"), cfg.FrameSize); err != nil {
		return err
	}
	cfg.DrainTimeout = c.Duration("drain-timeout")
	cfg.WriteTimeout = c.Duration("write-timeout")
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
	if interval < 0 || (interval > 0 && interval < minStatsInterval) {
		return usagef("--stats-interval %v is out of range: use 0 (never) or %v or more, such as 10s", interval, minStatsInterval)
	}
	allow, err := parseAllow(c.String("allow-from"))
	if err != nil {
		return err
	}
	spec, err := source.Parse(c.String("source"))
	if err != nil {
		return usageError{err}
	}
	isUDP := spec.Kind == "udp"
	isMQTT := spec.Kind == "mqtt" || spec.Kind == "mqtts"
	isMQTTS := spec.Kind == "mqtts"
	notMQTT := "applies to mqtt:// and mqtts:// sources only, not --source " + spec.String()
	notMQTTS := "applies to mqtts:// sources only (TLS), not --source " + spec.String()
	if err := refuseUnused(c, log, []unusedFlag{
		{"allow-from", isUDP, "applies to udp sources only, not --source " + spec.String()},
		{"client-id", isMQTT, notMQTT},
		{"connect-timeout", isMQTT, notMQTT},
		{"drain", isMQTT, notMQTT},
		{"mqtt-password-file", isMQTT, notMQTT},
		{"mqtt-ca", isMQTTS, notMQTTS},
		{"mqtt-cert", isMQTTS, notMQTTS},
		{"mqtt-key", isMQTTS, notMQTTS},
		{"reconnect-timeout", c.Bool("reconnect"), "applies with --reconnect only"},
		{"pad", cfg.Partial == pipeline.PartialPad, "applies with --partial pad only, not --partial " + string(cfg.Partial)},
	}); err != nil {
		return err
	}
	// The pipeline chooses what is left empty, and refuses what the
	// source cannot take, from what the source is.
	cfg.Align = pipeline.Align(c.String("align"))
	cfg.Overflow = pipeline.Overflow(c.String("overflow"))
	if cfg, err = cfg.ForSource(spec.Traits); err != nil {
		return usageError{err}
	}
	cfg.DrainBeforeAck = c.Bool("drain")
	// Every flag is checked before the source is opened (the broker dialled).
	cfg.ByteTime = dcfg.ByteTime()
	brk, seq, err := shapeConfig(c, &dcfg, cfg.FrameSize, cfg.Rate)
	if err != nil {
		return err
	}
	rtimeout := c.Duration("reconnect-timeout")
	if rtimeout < 0 {
		return usagef("--reconnect-timeout %v is negative: use 0 (wait for ever) or a duration such as 1m", rtimeout)
	}

	opts := source.Options{Stdin: c.App.Reader, Allow: allow, Logger: log}
	if isMQTT {
		if opts.MQTT, err = mqttConfig(c, spec, path, log); err != nil {
			return err
		}
	}
	src, err := spec.Open(c.Context, opts)
	var herr *source.HexError
	var serr *source.SpecError
	switch {
	case errors.Is(err, source.ErrStopped) && isMQTT:
		fmt.Fprintln(c.App.ErrWriter, "framesend: stopped while waiting for the broker")
		return nil
	case errors.Is(err, source.ErrStopped):
		fmt.Fprintf(c.App.ErrWriter, "framesend: stopped while waiting for --source %s to open (a FIFO with no writer yet); nothing sent\n", spec)
		return nil
	case errors.As(err, &herr), errors.As(err, &serr):
		return usageError{err}
	case err != nil:
		return failure{err}
	}
	// Closed on every way out; an mqtt source is closed first with the
	// final status.
	defer src.Close()
	cfg.Source = src.Source
	mqtt, _ := src.Source.(*source.MQTT)
	if u, ok := src.Source.(*source.UDP); ok && u.Addr().(*net.UDPAddr).IP.IsUnspecified() {
		log.Warn("udp: listening on every interface: any host that can reach this machine can write to the serial port; use --allow-from to limit senders", "addr", u.Addr().String())
	}
	total := src.Frames(cfg.FrameSize, cfg.Align, cfg.Partial)
	if cfg.Count > 0 && (total == 0 || cfg.Count < total) {
		total = cfg.Count
	}

	var port interface {
		io.Writer
		Close() error
	}
	var dev func() *device.Port // the port open now
	gone := func() bool { return false }
	if c.Bool("reconnect") {
		var r *device.Reconnecting
		if r, err = device.OpenReconnecting(path, dcfg, !c.Bool("no-lock"), rtimeout, log); err == nil {
			printNotes(c, r.Port().Notes())
			port, dev, gone = r, r.Port, r.Gone
		}
	} else {
		var p *device.Port
		if p, err = openPort(c, path, dcfg); err == nil {
			port, dev = p, func() *device.Port { return p }
		}
	}
	if err != nil {
		return err
	}
	defer port.Close()
	log.Debug("port open", "port", path, "line", dev().Settings().String())
	if len(seq) > 0 {
		log.Debug("reset sequence", "port", path, "seq", seq.String())
		if err := dev().Reset(seq); err != nil {
			return failure{err}
		}
	}
	if brk > 0 {
		if err := dev().Break(brk); err != nil {
			return failure{err}
		}
	}

	stopStatus := func() {}
	if mqtt != nil {
		stopStatus = publishStatus(c.Context, mqtt, path, cfg.Live, gone, interval)
	}

	stopReports := report(c, cfg.Live, total, interval, cfg.QueueBytes, log, c.Bool("no-progress"))
	st, err := pipeline.Run(c.Context, port, cfg)
	stopReports()
	var stall *pipeline.StallError
	if errors.As(err, &stall) {
		err = stallMessage(path, stall, stallHint(dcfg, dev().Lines))
	}
	if mqtt != nil {
		stopStatus()
		wentAway := func() bool { return gone() || errors.Is(err, device.ErrGone) }
		mqtt.Close(statusJSON("offline", path, cfg.Live, wentAway))
	}
	printSummary(c, summary, path, st, err)
	if err != nil {
		if errors.Is(err, device.ErrGone) {
			return failure{fmt.Errorf("%w (after %d frames)", err, st.Frames)}
		}
		var herr *source.HexError
		if errors.As(err, &herr) {
			return usageError{err} // bad input on stdin, found as it came
		}
		return failure{err}
	}
	return nil
}

// stallMessage says which port stopped taking data, for how long, and what
// is known about why.
func stallMessage(path string, se *pipeline.StallError, hint string) error {
	if se.DuringStop {
		return fmt.Errorf("%s %s: %v", se.Op, path, se)
	}
	return fmt.Errorf("%s %s: %v (--write-timeout); %s", se.Op, path, se, hint)
}
