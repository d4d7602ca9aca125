package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
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
