package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/framesend/framesend/device"
)

const catLine = "Line control"

// lineFlags are the line controls of every command that opens a port.
func lineFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "flow", Value: "none", Usage: "flow control: none, rtscts (the device holds CTS low to pause framesend) or xonxoff (the device sends XOFF 0x13 and XON 0x11 in its data: with binary frames a frame byte equal to 0x11 or 0x13 coming back would pause or resume the sender, so use it only when the device sends text)", EnvVars: env("flow"), Category: catLine},
		&cli.StringFlag{Name: "dtr", Usage: "set DTR to `LEVEL`, on or off, right after the port opens; default: as the open leaves it (on)", EnvVars: env("dtr"), Category: catLine},
		&cli.StringFlag{Name: "rts", Usage: "set RTS to `LEVEL`, on or off, right after the port opens; default: as the open leaves it (on)", EnvVars: env("rts"), Category: catLine},
		&cli.BoolFlag{Name: "hupcl", Value: true, Usage: "drop DTR and RTS when the port closes; --hupcl=false leaves them as they are (a board held in reset or run by DTR/RTS stays so)", EnvVars: env("hupcl"), Category: catLine},
		&cli.BoolFlag{Name: "rs485", Usage: "turn on the kernel's RS-485 mode: the UART driver drives RTS as the transceiver's driver enable around each transmission (UARTs with RS-485 support, such as a Pi HAT's; USB-RS-485 adapters do this themselves and refuse it)", EnvVars: env("rs485"), Category: catLine},
		&cli.BoolFlag{Name: "rs485-rts-on-send", Usage: "with --rs485: RTS high while sending (the default when neither this nor --rs485-rts-after-send is given)", EnvVars: env("rs485-rts-on-send"), Category: catLine},
		&cli.BoolFlag{Name: "rs485-rts-after-send", Usage: "with --rs485: RTS high after sending (for transceivers whose enable is active low)", EnvVars: env("rs485-rts-after-send"), Category: catLine},
		&cli.DurationFlag{Name: "rs485-delay-before", Usage: "with --rs485: raise RTS this long (whole ms, up to 100ms) before the first bit", EnvVars: env("rs485-delay-before"), Category: catLine},
		&cli.DurationFlag{Name: "rs485-delay-after", Usage: "with --rs485: hold RTS this long (whole ms, up to 100ms) after the last bit", EnvVars: env("rs485-delay-after"), Category: catLine},
		&cli.BoolFlag{Name: "rs485-rx-during-tx", Usage: "with --rs485: keep receiving while sending (a half-duplex bus then echoes what is sent)", EnvVars: env("rs485-rx-during-tx"), Category: catLine},
		&cli.BoolFlag{Name: "low-latency", Usage: "ask the driver to pass received bytes on at once (ASYNC_LOW_LATENCY) and, on an FTDI adapter, set its latency timer from 16 ms to 1 ms (needs write access to sysfs, usually root)", EnvVars: env("low-latency"), Category: catLine},
	}
}

// lineConfig reads the line control flags into cfg. Mistakes are usage
// errors.
func lineConfig(c *cli.Context, cfg *device.Config) error {
	flow, err := device.ParseFlow(c.String("flow"))
	if err != nil {
		return usageError{err}
	}
	cfg.Flow = flow
	if cfg.DTR, err = device.ParseLevel(c.String("dtr")); err != nil {
		return usagef("--dtr %v", err)
	}
	if cfg.RTS, err = device.ParseLevel(c.String("rts")); err != nil {
		return usagef("--rts %v", err)
	}
	cfg.KeepLines = !c.Bool("hupcl")
	cfg.LowLatency = c.Bool("low-latency")
	cfg.RS485 = device.RS485{
		Enabled:      c.Bool("rs485"),
		RTSOnSend:    c.Bool("rs485-rts-on-send"),
		RTSAfterSend: c.Bool("rs485-rts-after-send"),
		DelayBefore:  c.Duration("rs485-delay-before"),
		DelayAfter:   c.Duration("rs485-delay-after"),
		RXDuringTX:   c.Bool("rs485-rx-during-tx"),
	}
	if cfg.RS485.Enabled && !cfg.RS485.RTSOnSend && !cfg.RS485.RTSAfterSend {
		cfg.RS485.RTSOnSend = true
	}
	return nil
}

// shapeFlags are send's controls of the line around the frames.
func shapeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "reset-seq", Usage: "after opening, before the first frame, run this DTR/RTS `SEQ`uence in esptool's syntax: D1/D0 set DTR on/off, R1/R0 RTS, U1,0 both at once (DTR,RTS), W0.1 waits 0.1 s; steps separated by |, such as D0|R1|W0.1|D1|R0|W0.05|D0 (an ESP32's bootloader entry)", EnvVars: env("reset-seq"), Category: catLine},
		&cli.DurationFlag{Name: "break", Usage: "send a BREAK this long once, before the first frame (after --reset-seq)", EnvVars: env("break"), Category: catLine},
		&cli.DurationFlag{Name: "frame-break", Usage: "send a BREAK this long before every frame, such as 100us for DMX512 (one frame per write; with --rate, the break, the mark and the frame must fit in one frame period)", EnvVars: env("frame-break"), Category: catLine},
		&cli.DurationFlag{Name: "mark-after-break", Usage: "with --frame-break: keep the line idle (mark) this long after each break, such as 12us for DMX512", EnvVars: env("mark-after-break"), Category: catLine},
		&cli.StringFlag{Name: "gap", Usage: "keep the line idle at least this long after every frame: a duration such as 2ms, or character times at the port's settings such as 3.5c (Modbus RTU). Costs one drain per frame and one frame per write, so the line is never kept full", EnvVars: env("gap"), Category: catLine},
	}
}

// parseGap reads --gap: a duration, or a number of character times ("3.5c")
// at cfg's settings.
func parseGap(s string, cfg device.Config) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if n, ok := strings.CutSuffix(s, "c"); ok {
		chars, err := strconv.ParseFloat(n, 64)
		if err != nil || chars != chars {
			return 0, usagef("--gap %q is not a number of character times: use such as 3.5c, or a duration such as 2ms", s)
		}
		if chars < 0 {
			return 0, usagef("--gap %q is negative: use 0 or more character times, such as 3.5c", s)
		}
		// Past what a time.Duration holds the conversion would wrap to a
		// negative gap.
		d := chars * float64(cfg.ByteTime())
		if d >= math.MaxInt64 {
			return 0, usagef("--gap %q is too long: use such as 3.5c, or a duration such as 2ms", s)
		}
		return time.Duration(d), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, usagef("--gap %q is not a duration: use such as 2ms, or character times such as 3.5c", s)
	}
	if d < 0 {
		return 0, usagef("--gap %v is negative: use 0 or a duration such as 2ms", d)
	}
	return d, nil
}

// shapeConfig reads send's shaping flags into cfg and checks that they hold
// together with the frame size and the rate. It returns the one-off break
// and the reset sequence.
func shapeConfig(c *cli.Context, cfg *device.Config, frameSize int, rate float64) (time.Duration, device.ResetSeq, error) {
	seq, err := device.ParseResetSeq(c.String("reset-seq"))
	if err != nil {
		return 0, nil, usagef("--reset-seq: %v", err)
	}
	brk := c.Duration("break")
	if brk < 0 {
		return 0, nil, usagef("--break %v is negative: use a duration such as 250ms", brk)
	}
	if brk > time.Minute {
		return 0, nil, usagef("--break %v is longer than a minute: use a duration such as 250ms", brk)
	}
	cfg.FrameBreak = c.Duration("frame-break")
	cfg.MarkAfterBreak = c.Duration("mark-after-break")
	if cfg.Gap, err = parseGap(c.String("gap"), *cfg); err != nil {
		return 0, nil, err
	}
	if err := cfg.Validate(); err != nil {
		return 0, nil, usageError{err}
	}
	if rate > 0 {
		period := time.Duration(float64(time.Second) / rate)
		frame := time.Duration(frameSize) * cfg.ByteTime()
		// Added as floats: durations near a time.Duration's limit would
		// wrap to a negative sum and pass.
		sum := float64(cfg.FrameBreak) + float64(cfg.MarkAfterBreak) + float64(frame) + float64(cfg.Gap)
		need := time.Duration(math.MaxInt64)
		if sum < math.MaxInt64 {
			need = time.Duration(sum)
		}
		if (cfg.FrameBreak > 0 || cfg.Gap > 0) && sum > float64(period) {
			return 0, nil, usagef("--frame-break %v, --mark-after-break %v, a %d-byte frame (%v at %s) and --gap %v take %v, longer than the frame period %v at --rate %g: lower the rate, or shorten the break or the gap",
				cfg.FrameBreak, cfg.MarkAfterBreak, frameSize, frame.Round(time.Microsecond), device.Config{Baud: cfg.Baud, DataBits: cfg.DataBits, Parity: cfg.Parity, StopBits: cfg.StopBits}, cfg.Gap.Round(time.Microsecond), need.Round(time.Microsecond), period.Round(time.Microsecond), rate)
		}
	}
	return brk, seq, nil
}

// printNotes tells what the port found worth telling at open (a rounded
// speed, the FTDI latency timer).
func printNotes(c *cli.Context, notes []string) {
	for _, n := range notes {
		fmt.Fprintf(c.App.ErrWriter, "framesend: %s\n", n)
	}
}

// stallHint says what is known about why the device stopped taking data.
func stallHint(cfg device.Config, lines func() (device.Lines, error)) string {
	if cfg.Flow != device.FlowRTSCTS {
		return "flow control held, or a hung far end?"
	}
	l, err := lines()
	if err != nil {
		return fmt.Sprintf("with --flow rtscts; CTS could not be read (%v)", err)
	}
	if !l.CTS {
		return "the device is holding CTS low (--flow rtscts): it is not ready, or CTS is not wired (use --flow none then)"
	}
	return "CTS is high (--flow rtscts), so the device side is not holding framesend back: a hung adapter or driver?"
}
