//go:build linux

package device

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// LineChecks looks at the line of port (a /dev path): an FTDI adapter's
// latency timer, a Raspberry Pi mini-UART asked (want, if not nil) for
// what it cannot do, and, on the running system (s.Root "/"), the settings
// the port runs with now, read from its driver. That last check opens the
// port read-only, without a lock and without changing a setting; like any
// open of a tty it raises DTR and RTS, and they drop again on close if
// HUPCL is set, as with stty.
func LineChecks(s System, port string, want *Config) []Check {
	var checks []Check
	add := func(name string, st Status, detail, fix string) {
		checks = append(checks, Check{Name: name, Status: st, Detail: detail, Fix: fix})
	}
	real, err := filepath.EvalSymlinks(s.path(port))
	if err != nil {
		return nil
	}
	name := filepath.Base(real)
	dir := s.path("sys/class/tty/" + name)
	if f := filepath.Join(dir, "device/latency_timer"); fileExists(f) {
		switch ms := readLatencyTimer(f); {
		case ms > 2:
			add("latency timer", Warn, fmt.Sprintf("%s is an FTDI adapter whose latency timer is %d ms: it holds received bytes up to that long before passing them on", port, ms),
				"framesend --low-latency sets it to 1 ms (as root, or with a udev rule: ATTR{latency_timer}=\"1\")")
		case ms >= 0:
			add("latency timer", OK, fmt.Sprintf("%s is an FTDI adapter whose latency timer is %d ms", port, ms), "")
		}
	}
	if drv, err := os.Readlink(filepath.Join(dir, "device/driver")); err == nil && filepath.Base(drv) == "bcm2835-aux-uart" && want != nil {
		var asked []string
		if want.Parity != ParityNone && want.Parity != "" {
			asked = append(asked, string(want.Parity)+" parity")
		}
		if want.StopBits == 2 {
			asked = append(asked, "2 stop bits")
		}
		if want.DataBits < 7 {
			asked = append(asked, fmt.Sprintf("%d data bits", want.DataBits))
		}
		if len(asked) > 0 {
			add("mini-uart", Warn, fmt.Sprintf("%s is the Pi's mini-UART, which ignores %s: it has 7 or 8 data bits, no parity and 1 stop bit only", port, strings.Join(asked, " and ")),
				"use the PL011 UART: dtoverlay=disable-bt (or miniuart-bt) in config.txt makes /dev/serial0 ttyAMA0")
		}
	}
	if s.Root == "/" {
		if st, detail, fix := currentLine(port); detail != "" {
			add("line", st, detail, fix)
		}
	}
	return checks
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// currentLine reads the settings port runs with now.
func currentLine(port string) (Status, string, string) {
	fd, err := unix.Open(port, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return Warn, fmt.Sprintf("could not open %s to read its settings: %v", port, err), "run doctor as a user who may open the port"
	}
	f := os.NewFile(uintptr(fd), port)
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return Warn, fmt.Sprintf("could not read the settings of %s: %v", port, err), ""
	}
	l := fdLine{control: rc.Control}
	t, _, err := getTermios(l)
	if err != nil {
		return Fail, fmt.Sprintf("%s does not answer as a serial port: %v", port, err), "--port must be a serial device"
	}
	st := settingsOf(t)
	hup := "on"
	if !st.HangUp {
		hup = "off"
	}
	detail := fmt.Sprintf("%s now runs at %s, HUPCL %s", port, st, hup)
	if bits, err := modemBits(l); err == nil {
		onOff := func(b int) string {
			if bits&b != 0 {
				return "on"
			}
			return "off"
		}
		detail += fmt.Sprintf("; DTR %s, RTS %s, CTS %s, DSR %s", onOff(tiocmDTR), onOff(tiocmRTS), onOff(tiocmCTS), onOff(unix.TIOCM_DSR))
	} else {
		detail += "; no modem lines"
	}
	if ss, err := getSerial(l); err == nil {
		if ss.BaudBase > 0 {
			detail += fmt.Sprintf("; top speed %d", ss.BaudBase)
		}
		if ss.Flags&asyncLowLatency != 0 {
			detail += "; low latency on"
		}
	}
	return OK, detail, ""
}
