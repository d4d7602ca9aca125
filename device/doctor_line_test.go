package device

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lineTree builds a sysfs tree with one tty, its driver and, if latency is
// not "", an FTDI latency timer.
func lineTree(t *testing.T, name, driver, latency string) System {
	t.Helper()
	root := t.TempDir()
	dev := filepath.Join(root, "sys/devices/x", name)
	os.MkdirAll(dev, 0o755)
	os.MkdirAll(filepath.Join(root, "sys/bus/drivers", driver), 0o755)
	os.Symlink(filepath.Join(root, "sys/bus/drivers", driver), filepath.Join(dev, "driver"))
	if latency != "" {
		os.WriteFile(filepath.Join(dev, "latency_timer"), []byte(latency+"\n"), 0o644)
	}
	os.MkdirAll(filepath.Join(root, "sys/class/tty", name), 0o755)
	os.Symlink(dev, filepath.Join(root, "sys/class/tty", name, "device"))
	os.MkdirAll(filepath.Join(root, "dev"), 0o755)
	os.WriteFile(filepath.Join(root, "dev", name), nil, 0o644)
	return System{Root: root}
}

func TestLineChecksWarnAboutTheFTDILatencyTimer(t *testing.T) {
	for _, tt := range []struct {
		latency string
		want    Status
	}{{"16", Warn}, {"1", OK}} {
		s := lineTree(t, "ttyUSB0", "ftdi_sio", tt.latency)
		checks := LineChecks(s, "/dev/ttyUSB0", nil)
		if len(checks) != 1 || checks[0].Status != tt.want || !strings.Contains(checks[0].Detail, "latency timer is "+tt.latency+" ms") {
			t.Errorf("latency %s ms: checks = %+v, want one %s naming %s ms", tt.latency, checks, tt.want, tt.latency)
		}
	}
}

func TestLineChecksWarnAboutTheMiniUART(t *testing.T) {
	s := lineTree(t, "ttyS0", "bcm2835-aux-uart", "")
	want := &Config{Baud: 9600, DataBits: 8, Parity: ParityEven, StopBits: 2}
	checks := LineChecks(s, "/dev/ttyS0", want)
	if len(checks) != 1 || checks[0].Status != Warn || !strings.Contains(checks[0].Detail, "ignores even parity and 2 stop bits") {
		t.Fatalf("checks = %+v, want a warning naming even parity and 2 stop bits", checks)
	}
	if got := LineChecks(s, "/dev/ttyS0", &Config{Baud: 9600, DataBits: 8, Parity: ParityNone, StopBits: 1}); len(got) != 0 {
		t.Errorf("8N1 on the mini-UART: checks = %+v, want none", got)
	}
}

func TestSetLowLatencyOnAnFTDI(t *testing.T) {
	s := lineTree(t, "ttyUSB0", "ftdi_sio", "16")
	r := newRecorder(DefaultConfig())
	r.serial.Flags = 0x40
	p := fakePort("/dev/ttyUSB0", DefaultConfig(), r)
	p.sysRoot = s.Root
	timer := filepath.Join(s.Root, "sys/class/tty/ttyUSB0/device/latency_timer")
	for _, tt := range []struct {
		on    bool
		flags int32
		timer string
	}{{true, 0x40 | asyncLowLatency, "1"}, {false, 0x40, "16"}} {
		note, err := p.SetLowLatency(tt.on)
		if err != nil {
			t.Fatalf("SetLowLatency(%v) = %v", tt.on, err)
		}
		if r.serial.Flags != tt.flags {
			t.Errorf("SetLowLatency(%v): flags %#x, want %#x", tt.on, r.serial.Flags, tt.flags)
		}
		b, _ := os.ReadFile(timer)
		if got := strings.TrimSpace(string(b)); got != tt.timer || !strings.Contains(note, "set to "+tt.timer+" ms") {
			t.Errorf("SetLowLatency(%v): latency timer %q, note %q; want %s ms", tt.on, got, note, tt.timer)
		}
	}
}
