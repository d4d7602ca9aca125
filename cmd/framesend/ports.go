package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/framesend/framesend/device"
)

// doctorFlags are doctor's: the port to check, and the character format
// the user means to run it with, checked against what the port's UART can
// do. They show under no category, as the serial flags of other commands
// set things that doctor does not.
func doctorFlags() []cli.Flag {
	port, dataBits, parity, stopBits := portFlag(), dataBitsFlag(), parityFlag(), stopBitsFlag()
	port.Usage, port.Category = "the serial device `PATH` to check", ""
	const check = " you mean to use, checked against what the port's UART can do"
	dataBits.Usage, dataBits.Category = "the data bits"+check, ""
	parity.Usage, parity.Category = "the parity"+check, ""
	stopBits.Usage, stopBits.Category = "the stop bits"+check, ""
	return []cli.Flag{port, jsonFlag("the checks"), dataBits, parity, stopBits, rootFlag}
}

// rootFlag points ports and doctor at a fake system tree; tests use it.
var rootFlag = &cli.StringFlag{Name: "root", Value: "/", Hidden: true, EnvVars: env("root")}

func portsCommand() *cli.Command {
	return &cli.Command{
		Name:      "ports",
		Usage:     "list serial ports, without opening any",
		UsageText: "framesend ports [--json]",
		Description: "Lists the serial ports the kernel knows, from sysfs: the device path, its stable\n" +
			"names under /dev/serial/by-id and by-path, the driver, USB vendor and product IDs,\n" +
			"serial number, maker and product, and whether you can open it (and if not, why).\n" +
			"It opens no device, so it never disturbs a port in use.\n\n" +
			"Examples:\n" +
			"   framesend ports\n" +
			"   framesend ports --json | jq -r '.[] | select(.vid == \"0403\") | .by_id[0]'",
		Flags: []cli.Flag{
			jsonFlag("the ports"),
			rootFlag,
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			ports, err := device.List(c.String("root"), device.Self())
			if err != nil {
				return failure{err}
			}
			if c.Bool("json") {
				if ports == nil {
					ports = []device.Info{}
				}
				b, _ := json.MarshalIndent(ports, "", "  ")
				fmt.Fprintln(c.App.Writer, string(b))
				return nil
			}
			printPorts(c.App.Writer, ports)
			return nil
		},
	}
}

func printPorts(w io.Writer, ports []device.Info) {
	if len(ports) == 0 {
		fmt.Fprintln(w, "no serial ports found (plug in the adapter; dmesg shows whether the kernel saw it)")
		return
	}
	for _, p := range ports {
		var desc []string
		if s := strings.TrimSpace(p.Manufacturer + " " + p.Product); s != "" {
			desc = append(desc, s)
		}
		if p.VID != "" {
			desc = append(desc, "USB "+p.VID+":"+p.PID)
		}
		if p.Serial != "" {
			desc = append(desc, "serial "+p.Serial)
		}
		if p.Driver != "" {
			desc = append(desc, "driver "+p.Driver)
		}
		fmt.Fprintf(w, "%s  %s\n", p.Path, strings.Join(desc, ", "))
		for _, l := range p.Aliases {
			fmt.Fprintf(w, "    alias:   %s\n", l)
		}
		for _, l := range p.ByID {
			fmt.Fprintf(w, "    by-id:   %s\n", l)
		}
		for _, l := range p.ByPath {
			fmt.Fprintf(w, "    by-path: %s\n", l)
		}
		if p.CanOpen {
			fmt.Fprintf(w, "    access:  you can open it\n")
		} else {
			fmt.Fprintf(w, "    access:  you cannot open it: %s\n", p.Why)
		}
		if p.Note != "" {
			fmt.Fprintf(w, "    note:    %s\n", p.Note)
		}
	}
}

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:      "doctor",
		Usage:     "check a port and the system around it, and say how to fix what is wrong",
		UsageText: "framesend doctor [--port PATH] [--json]",
		Description: "Checks that the port exists and is a serial device, that you can open it (the\n" +
			"dialout group, and that a new group needs a new login), that no other process\n" +
			"holds it, that brltty will not take it, that no console or login prompt runs on\n" +
			"it, on a Raspberry Pi which UART /dev/serial0 is, and that framesend's udev rules\n" +
			"are installed. Each check says ok, warn or fail, with the fix. Exit 1 if any fails.\n" +
			"With --port it also shows the settings the port runs with now (reading them opens\n" +
			"the port, as stty does), warns about an FTDI latency timer of 16 ms, and about a Pi\n" +
			"mini-UART when --parity, --stop-bits 2 or fewer than 7 --data-bits are asked.\n\n" +
			"Examples:\n" +
			"   framesend doctor --port /dev/ttyUSB0\n" +
			"   framesend doctor --port /dev/serial0 --json\n" +
			"   framesend doctor --port /dev/serial0 --parity even --stop-bits 2",
		Flags: doctorFlags(),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			// The flags are checked before any check runs, port or not.
			parity, err := device.ParseParity(c.String("parity"))
			if err != nil {
				return usageError{err}
			}
			want := device.Config{Baud: 9600, DataBits: c.Int("data-bits"), Parity: parity, StopBits: c.Int("stop-bits")}
			if err := want.Validate(); err != nil {
				return usageError{err}
			}
			sys := device.ThisSystem()
			sys.Root = c.String("root")
			checks := device.Doctor(sys, c.String("port"))
			// The line is looked at only on a port that is one.
			portOK := len(checks) > 0 && checks[0].Name == "port" && checks[0].Status != device.Fail
			if port := c.String("port"); port != "" && portOK {
				checks = append(checks, device.LineChecks(sys, port, &want)...)
			}
			failed := 0
			for _, ch := range checks {
				if ch.Status == device.Fail {
					failed++
				}
			}
			if c.Bool("json") {
				b, _ := json.MarshalIndent(checks, "", "  ")
				fmt.Fprintln(c.App.Writer, string(b))
			} else {
				for _, ch := range checks {
					fmt.Fprintf(c.App.Writer, "%-5s %-11s %s\n", ch.Status, ch.Name, ch.Detail)
					if ch.Fix != "" && ch.Status != device.OK {
						fmt.Fprintf(c.App.Writer, "%17s %s\n", "fix:", ch.Fix)
					}
				}
			}
			if failed > 0 {
				return failure{fmt.Errorf("doctor: %d of %d checks failed", failed, len(checks))}
			}
			return nil
		},
	}
}
