package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestPortsCommand(t *testing.T) {
	empty := t.TempDir()
	os.MkdirAll(filepath.Join(empty, "sys/class/tty"), 0o755)
	code, stdout, stderr := runIn(context.Background(), "ports", "--json", "--root", empty)
	if code != 0 || strings.TrimSpace(stdout) != "[]" {
		t.Errorf("empty system: exit %d, stdout %q, stderr %q; want []", code, stdout, stderr)
	}

	code, stdout, _ = runIn(context.Background(), "ports", "--json", "--root", "../../device/testdata/pc")
	var ports []map[string]any
	if err := json.Unmarshal([]byte(stdout), &ports); err != nil || code != 0 {
		t.Fatalf("exit %d, %v: %s", code, err, stdout)
	}
	if len(ports) != 3 || ports[0]["vid"] != "0403" || ports[0]["serial"] != "A50285BI" {
		t.Errorf("ports = %v", ports)
	}
	for _, key := range []string{"path", "by_id", "by_path", "driver", "vid", "pid", "serial", "manufacturer", "product", "can_open"} {
		if _, ok := ports[0][key]; !ok {
			t.Errorf("JSON lacks %q", key)
		}
	}

	code, stdout, _ = runIn(context.Background(), "ports", "--root", "../../device/testdata/pi")
	for _, want := range []string{"/dev/ttyS0  driver bcm2835-aux-uart", "alias:   /dev/serial0", "/dev/ttyAMA0", "alias:   /dev/serial1"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("ports on a Pi lacks %q:\n%s", want, stdout)
		}
	}
}

func TestDoctorCommand(t *testing.T) {
	code, stdout, stderr := runIn(context.Background(), "doctor", "--root", "../../device/testdata/pi", "--port", "/dev/serial0")
	if code != 1 || !strings.Contains(stderr, "checks failed") {
		t.Errorf("exit %d, stderr %q: want 1 with the count of failed checks", code, stderr)
	}
	for _, want := range []string{"fail  console", "fix: remove console=serial0,115200", "warn  pi uart", "ok    udev rules"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = runIn(context.Background(), "doctor", "--root", "../../device/testdata/pi", "--port", "/dev/ttyAMA0", "--json")
	var checks []struct{ Check, Status, Detail, Fix string }
	if err := json.Unmarshal([]byte(stdout), &checks); err != nil || len(checks) < 5 {
		t.Fatalf("json: %v: %s", err, stdout)
	}
	if code != 0 {
		t.Errorf("ttyAMA0 is fine on this Pi: exit %d: %s", code, stdout)
	}
}

// TestDoctorOnCommonNonPorts: /dev/null and /dev/ptmx are no ports; a
// socat pair's pty is, and socat, which makes it, does not hold it.
func TestDoctorOnCommonNonPorts(t *testing.T) {
	for _, port := range []string{"/dev/null", "/dev/ptmx"} {
		code, stdout, _ := runIn(context.Background(), "doctor", "--port", port)
		if code != 1 || !strings.Contains(stdout, "fail  port") || strings.Contains(stdout, "terminal device") || strings.Contains(stdout, "holders") || strings.Contains(stdout, "line ") {
			t.Errorf("doctor --port %s: exit %d:\n%s", port, code, stdout)
		}
	}
	a, _, socat := startSocatPair(t)
	code, stdout, _ := runIn(context.Background(), "doctor", "--port", a)
	want := fmt.Sprintf("ok    holders     no other process has %s open (it is a pseudo-terminal provided by PID %d (socat))", a, socat.Process.Pid)
	if code != 0 || !strings.Contains(stdout, want) || !strings.Contains(stdout, "is a pseudo-terminal") {
		t.Errorf("doctor on a socat pty: exit %d, want 0 and %q:\n%s", code, want, stdout)
	}
	if strings.Contains(stdout, "console") {
		t.Errorf("a console check on a pty:\n%s", stdout)
	}
	// A real holder of the pty is still named.
	dev, err := os.OpenFile(a, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	cmd := exec.Command("sleep", "10")
	cmd.Stdin = dev
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	code, stdout, _ = runIn(context.Background(), "doctor", "--port", a)
	if want := fmt.Sprintf("PID %d (sleep)", cmd.Process.Pid); code != 1 || !strings.Contains(stdout, want) || strings.Contains(stdout, "(socat): stop") {
		t.Errorf("doctor with sleep holding the pty: exit %d, want 1 naming %s only:\n%s", code, want, stdout)
	}
}

// TestPortErrorsInPlainWords: no port error carries the serial library's
// wording, and the common wrong ports are named for what they are.
func TestPortErrorsInPlainWords(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "loopA"), filepath.Join(dir, "loopB")
	os.Symlink(b, a)
	os.Symlink(a, b)
	cases := []struct{ port, want string }{
		{"/dev/null", "not a serial device (it is not a terminal: it has no line settings to set)"},
		{"/dev/ptmx", "it is the pseudo-terminal multiplexer: each open makes a new pseudo-terminal that nobody reads"},
		{a, "its symbolic links loop back on themselves and lead to no device"},
	}
	for _, c := range cases {
		for _, cmd := range []string{"send", "listen"} {
			code, _, stderr := runIn(context.Background(), cmd, "--port", c.port, "--count", "1")
			if code != 1 || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "Invalid serial port") || strings.Contains(stderr, "error getting") {
				t.Errorf("%s --port %s: exit %d, stderr %q: want 1 and %q", cmd, c.port, code, stderr, c.want)
			}
		}
	}
}
