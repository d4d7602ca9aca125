package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/framesend/framesend/device"
	"github.com/framesend/framesend/pipeline"
)

// env names the environment variable that also sets flag name.
func env(name string) []string {
	return []string{"FRAMESEND_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
}

// envFor names the variable of a flag whose meaning is the command's own
// (listen's --count stops listening, send's sends), so that one set for
// one command, as in a service's /etc/default file, never changes another:
// FRAMESEND_LISTEN_COUNT.
func envFor(command, name string) []string {
	return env(command + "_" + name)
}

const (
	catSerial = "Serial port"
	catSource = "Source"
	catMQTT   = "MQTT source"
	catFrames = "Frames"
	catOutput = "Output"
)

// serialFlags are the settings of every command that opens a port.
func serialFlags() []cli.Flag {
	return append([]cli.Flag{
		portFlag(),
		&cli.IntFlag{Name: "baud", Aliases: []string{"b"}, Value: 115200, Usage: "line speed in bits per second", EnvVars: env("baud"), Category: catSerial},
		dataBitsFlag(),
		parityFlag(),
		stopBitsFlag(),
		&cli.BoolFlag{Name: "no-lock", Usage: "share the port: take no lock (flock) and leave it open to others (no TIOCEXCL), so other programs may open it and write to it too", EnvVars: env("no-lock"), Category: catSerial},
	}, lineFlags()...)
}

// The flags below mean the same in every command that has them, so each is
// declared once; a command changes only its usage line or its default
// (doctor's --data-bits is the setting to check, not to set).

func portFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "port", Aliases: []string{"p"}, Usage: "serial device `PATH`, such as /dev/ttyUSB0 or /dev/serial/by-id/…", EnvVars: env("port"), Category: catSerial}
}

func dataBitsFlag() *cli.IntFlag {
	return &cli.IntFlag{Name: "data-bits", Value: 8, Usage: "bits per character: 5, 6, 7 or 8", EnvVars: env("data-bits"), Category: catSerial}
}

func parityFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "parity", Value: "none", Usage: "none, odd, even, mark or space", EnvVars: env("parity"), Category: catSerial}
}

func stopBitsFlag() *cli.IntFlag {
	return &cli.IntFlag{Name: "stop-bits", Value: 1, Usage: "1 or 2", EnvVars: env("stop-bits"), Category: catSerial}
}

// rateFlag is --rate, the frames per second of send and demo.
func rateFlag() *cli.Float64Flag {
	return &cli.Float64Flag{Name: "rate", Aliases: []string{"r"}, Usage: "frames per second; 0 = as fast as the device takes them", EnvVars: env("rate"), Category: catFrames}
}

// timeoutFlag is --timeout of a command that reads the port (listen,
// loopback): how long it waits with nothing arriving. Its variable carries
// the command's name (FRAMESEND_LISTEN_TIMEOUT), as its default and what
// happens at the end differ.
func timeoutFlag(command string, value time.Duration, usage string) *cli.DurationFlag {
	return &cli.DurationFlag{Name: "timeout", Value: value, Usage: usage, EnvVars: envFor(command, "timeout"), Category: catFrames}
}

// jsonFlag is --json of a command that prints a report (ports, doctor).
func jsonFlag(what string) *cli.BoolFlag {
	return &cli.BoolFlag{Name: "json", Usage: "print " + what + " as a JSON array", EnvVars: env("json")}
}

// openPort opens the port, locked unless --no-lock.
func openPort(c *cli.Context, path string, cfg device.Config) (*device.Port, error) {
	open := device.Open
	if c.Bool("no-lock") {
		open = device.OpenShared
	}
	p, err := open(path, cfg)
	if err != nil {
		return nil, err
	}
	printNotes(c, p.Notes())
	return p, nil
}

// frameSizeFlag is --frame-size, the same for every command that frames
// bytes (send, listen, loopback, demo), under category (none: "").
func frameSizeFlag(category string) cli.Flag {
	return &cli.IntFlag{Name: "frame-size", Aliases: []string{"s"}, Value: 7, Usage: fmt.Sprintf("bytes per frame, 1 to %d", pipeline.MaxFrameSize), EnvVars: env("frame-size"), Category: category}
}

func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: env("log-level"), Category: catOutput},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", EnvVars: env("log-format"), Category: catOutput},
	}
}

// portAndFrameSize checks that the command got no arguments and reads the
// serial flags and --frame-size, for listen and loopback.
func portAndFrameSize(c *cli.Context) (string, device.Config, int, error) {
	if err := noArgs(c); err != nil {
		return "", device.Config{}, 0, err
	}
	path, cfg, err := portConfig(c)
	if err != nil {
		return "", device.Config{}, 0, err
	}
	fs := c.Int("frame-size")
	if err := pipeline.ValidateFrameSize(fs); err != nil {
		return "", device.Config{}, 0, usageError{err}
	}
	return path, cfg, fs, nil
}

// noArgs refuses arguments where a command takes only flags.
func noArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("%s takes no arguments, got %q (flags start with --)", c.Command.Name, c.Args().First())
	}
	return nil
}

// portConfig reads and checks the serial flags. Mistakes are usage errors.
func portConfig(c *cli.Context) (string, device.Config, error) {
	path := c.String("port")
	if path == "" {
		return "", device.Config{}, usagef("missing --port: name the serial device, for example --port /dev/ttyUSB0 (USB adapters are listed in /dev/serial/by-id/)")
	}
	parity, err := device.ParseParity(c.String("parity"))
	if err != nil {
		return "", device.Config{}, usageError{err}
	}
	cfg := device.Config{Baud: c.Int("baud"), DataBits: c.Int("data-bits"), Parity: parity, StopBits: c.Int("stop-bits")}
	if err := lineConfig(c, &cfg); err != nil {
		return "", device.Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return "", device.Config{}, usageError{err}
	}
	return path, cfg, nil
}
