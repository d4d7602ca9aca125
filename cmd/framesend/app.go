package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/framesend/framesend/device"
	"github.com/framesend/framesend/pipeline"
	"github.com/framesend/framesend/source"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes, as in the README.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// run is the whole command: it parses args, runs the command they name and
// returns the process's exit code. It writes only to the given streams, so
// tests can call it with buffers.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	out := &checkedWriter{w: stdout}
	app := newApp(stdin, out, stderr)
	app.Metadata = map[string]any{"args": args}
	err := checkEnv(app, args)
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	// Output that could not be written is the failure to report, unless
	// the command line itself was wrong.
	if oerr := outputError(out); oerr != nil && exitCode(err) != exitUsage {
		err = oerr
	}
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "framesend: %s\n", message(err))
	return exitCode(err)
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:    "framesend",
		Usage:   "send fixed-size binary frames to a serial device",
		Version: version,
		Description: "framesend cuts a source (a counter, a file, stdin, hex text, UDP datagrams or\n" +
			"MQTT messages) into frames of --frame-size bytes and writes them, whole and in order,\n" +
			"to a serial port: a USB-serial adapter, a Raspberry Pi UART or a socat virtual port.\n" +
			"Every flag can also be set from the environment as FRAMESEND_ and the flag's name in\n" +
			"capitals, with - as _: FRAMESEND_PORT=/dev/ttyUSB0, FRAMESEND_FRAME_SIZE=16. Flags that\n" +
			"mean something else in another command have the command in the name too:\n" +
			"FRAMESEND_LISTEN_COUNT, FRAMESEND_LOOPBACK_TIMEOUT, FRAMESEND_DEMO_COUNT.\n\n" +
			"Exit codes: 0 success (a stop by SIGINT or SIGTERM included), 1 a failure at run\n" +
			"time (the port, the device, a failed verification), 2 bad usage.",
		Reader:               stdin,
		Writer:               stdout,
		ErrWriter:            stderr,
		HideHelpCommand:      true,
		EnableBashCompletion: true,
		// Errors are reported by run, once; never os.Exit inside the app.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		Action: func(c *cli.Context) error {
			if c.Args().First() == "help" {
				return helpAction(c, c.Args().Tail())
			}
			if c.NArg() > 0 {
				return usagef("no command %q: run framesend --help for the list", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		Commands: []*cli.Command{
			sendCommand(),
			listenCommand(),
			loopbackCommand(),
			portsCommand(),
			doctorCommand(),
			completionCommand(),
			manCommand(),
			demoCommand(),
		},
	}
	for _, c := range app.Commands {
		c.OnUsageError = onUsageError
		c.HideHelpCommand = true
	}
	setupHelp(app)
	return app
}

// usageError is a mistake in the command line: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }
func (e usageError) ExitCode() int { return exitUsage }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func onUsageError(c *cli.Context, err error, _ bool) error {
	help := "framesend --help"
	if c.Command != nil && c.Command.Name != "" && c.Command.Name != c.App.Name {
		help = "framesend " + c.Command.Name + " --help"
	}
	return usageError{fmt.Errorf("%s (see %s)", usageMessage(c, err.Error()), help)}
}

// failure is a run-time failure: exit 1.
type failure struct{ err error }

func (e failure) Error() string { return e.err.Error() }
func (e failure) Unwrap() error { return e.err }
func (e failure) ExitCode() int { return exitFailure }

func exitCode(err error) int {
	var coder interface{ ExitCode() int }
	if errors.As(err, &coder) {
		return coder.ExitCode()
	}
	return exitFailure
}

// message turns an error into the one line the user sees, with the fix
// where there is one. Port errors are classified in package device; the
// hints for each class live here, in one place.
func message(err error) string {
	msg := err.Error()
	var cerr *pipeline.ConfigError
	if errors.As(err, &cerr) {
		if f, ok := configFlags[cerr.Field]; ok {
			return fmt.Sprintf(f.format, cerr.Value) + " " + cerr.Reason + f.hint
		}
	}
	if m, ok := deviceConfigMessage(err); ok {
		return m
	}
	var perr *pipeline.PartialFrameError
	if errors.As(err, &perr) {
		return fmt.Sprintf("short frame: the data ended %d bytes into a %d-byte frame (use --partial pad or drop to send it anyway)", perr.Bytes, perr.FrameSize)
	}
	var spec *source.SpecError
	if errors.As(err, &spec) {
		msg = "--source " + spec.Detail
		if errors.Is(err, source.ErrPasswordInURL) {
			msg += ": set FRAMESEND_MQTT_PASSWORD or use --mqtt-password-file"
		}
		return msg
	}
	switch {
	case errors.Is(err, source.ErrMQTTRefused):
		return msg + ": check the user name and FRAMESEND_MQTT_PASSWORD or --mqtt-password-file"
	case errors.Is(err, source.ErrMQTTUnreachable):
		return msg + ": wait longer with --connect-timeout, or check the broker's address"
	case errors.Is(err, device.ErrNotBack):
		msg += " (--reconnect-timeout)"
	}
	var derr *device.Error
	if !errors.As(err, &derr) {
		return msg
	}
	switch {
	case errors.Is(err, device.ErrNotFound):
		return msg + ": check the path; USB adapters appear as /dev/ttyUSB* or /dev/ttyACM*, with stable names in /dev/serial/by-id/"
	case errors.Is(err, device.ErrPermission):
		return msg + ": add your user to the dialout group (sudo usermod -aG dialout $USER) and log in again"
	case errors.Is(err, device.ErrBusy):
		return msg + ": stop it first (framesend doctor --port " + derr.Path + " shows what holds the port), or use --no-lock if sharing it is intended"
	case errors.Is(err, device.ErrNotSerial):
		return msg + ": --port must be a serial device such as /dev/ttyUSB0, /dev/ttyAMA0 or a socat pty"
	case errors.Is(err, device.ErrGone):
		return msg + ": the device went away (unplugged, or its far end closed); check the cable and the adapter"
	}
	var uerr *device.UnsupportedError
	if errors.As(err, &uerr) {
		return msg + unsupportedHints[uerr.Control]
	}
	var serr *device.SettingError
	if errors.As(err, &serr) {
		switch serr.What {
		case "baud":
			return msg + " (framesend doctor --port " + serr.Path + " shows the port's settings)"
		case "flow control":
			return msg + " (--flow none|rtscts|xonxoff)"
		}
	}
	return msg
}

// deviceConfigMessage words a device.ConfigError with the flags behind its
// fields (deviceFlags).
func deviceConfigMessage(err error) (string, bool) {
	var cerr *device.ConfigError
	if !errors.As(err, &cerr) {
		return "", false
	}
	f, ok := deviceFlags[cerr.Field]
	if !ok {
		return "", false
	}
	if cerr.Needs != "" {
		// What is wrong is the other setting missing, not this value.
		if needs, ok := deviceFlags[cerr.Needs]; ok {
			return fmt.Sprintf("%s needs %s: %s", f.flag, needs.flag, cerr.Reason), true
		}
		return "", false
	}
	return fmt.Sprintf("%s %s %s%s", f.flag, cerr.Value, cerr.Reason, f.hint), true
}

// deviceFlags names the flag behind each device.Config field, for the
// messages of device.ConfigError; hint follows the library's reason.
var deviceFlags = map[string]struct{ flag, hint string }{
	"Baud":               {"--baud", ""},
	"DataBits":           {"--data-bits", ""},
	"Parity":             {"--parity", ""},
	"StopBits":           {"--stop-bits", ""},
	"Flow":               {"--flow", ""},
	"FrameBreak":         {"--frame-break", ""},
	"MarkAfterBreak":     {"--mark-after-break", ""},
	"Gap":                {"--gap", ", or character times such as 3.5c"},
	"RS485.Enabled":      {"--rs485", ""},
	"RS485.RTSOnSend":    {"--rs485-rts-on-send", ""},
	"RS485.RTSAfterSend": {"--rs485-rts-after-send", ""},
	"RS485.DelayBefore":  {"--rs485-delay-before", ""},
	"RS485.DelayAfter":   {"--rs485-delay-after", ""},
	"RS485.RXDuringTX":   {"--rs485-rx-during-tx", ""},
}

// unsupportedHints names the flags that asked for each line control a
// driver may refuse (device.UnsupportedError).
var unsupportedHints = map[device.Control]string{
	device.ControlModemLines: "; leave --dtr, --rts and --reset-seq out there",
	device.ControlRS485:      ": leave --rs485 out for a USB-RS-485 adapter",
	device.ControlLowLatency: "; leave --low-latency out",
	device.ControlBreak:      ": leave --break and --frame-break out for this port",
}

// configFlags names the flag behind each pipeline.Config field, for the
// messages of pipeline.ConfigError: format takes the value, hint follows
// the library's reason.
var configFlags = map[string]struct{ format, hint string }{
	"FrameSize":    {"--frame-size %s", ""},
	"Count":        {"--count %s", ""},
	"Rate":         {"--rate %s", ""},
	"Batch":        {"--batch %s", ""},
	"QueueBytes":   {"--queue of %s bytes", ", as a size (4MiB) or in frames (10000)"},
	"DrainTimeout": {"--drain-timeout %s", ""},
	"WriteTimeout": {"--write-timeout %s", ""},
	"Overflow":     {"--overflow %s", ""},
	"Align":        {"--align %s", ""},
	"Partial":      {"--partial %s", ""},
}

// newLogger builds the slog logger for --log-level and --log-format.
func newLogger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, usagef("--log-level %q is not a level: use debug, info, warn or error", c.String("log-level"))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.String("log-format") {
	case "text":
		return slog.New(slog.NewTextHandler(c.App.ErrWriter, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(c.App.ErrWriter, opts)), nil
	}
	return nil, usagef("--log-format %q is not a format: use text or json", c.String("log-format"))
}
