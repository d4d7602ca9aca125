package device_test

import (
	"bytes"
	"errors"
	"github.com/framesend/framesend/internal/testenv"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/framesend/framesend/device"
	"github.com/framesend/framesend/device/devicetest"
)

func newFake(t *testing.T, opts devicetest.Options) *devicetest.PTY {
	t.Helper()
	return devicetest.Start(t, opts)
}

// readN reads n bytes from the fake's far end, or fails after a few seconds.
func readN(t *testing.T, f *devicetest.PTY, n int) []byte {
	t.Helper()
	f.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, n)
	if _, err := io.ReadFull(f, got); err != nil {
		t.Fatalf("far end read: %v", err)
	}
	return got
}

func TestOpenConfigsAndWrite(t *testing.T) {
	configs := []device.Config{
		device.DefaultConfig(),
		{Baud: 9600, DataBits: 8, Parity: device.ParityEven, StopBits: 1},
		{Baud: 57600, DataBits: 7, Parity: device.ParityOdd, StopBits: 2},
		{Baud: 1_000_000, DataBits: 8, Parity: device.ParityNone, StopBits: 2},
		{Baud: 300, DataBits: 5, Parity: device.ParitySpace, StopBits: 1},
	}
	// Every byte value, including the ones a cooked tty would act on.
	frame := []byte{0x0a, 0x0d, 0x03, 0x11, 0x13, 0x04, 0xff, 0x00, 0x7f}
	for _, cfg := range configs {
		t.Run(cfg.String(), func(t *testing.T) {
			f := newFake(t, devicetest.Options{})
			p, err := device.Open(f.Path(), cfg)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer p.Close()
			if p.Path() != f.Path() || p.Config() != cfg {
				t.Errorf("Path, Config = %s %v, want %s %v", p.Path(), p.Config(), f.Path(), cfg)
			}
			for range 3 {
				if n, err := p.Write(frame); err != nil || n != len(frame) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if got, want := readN(t, f, 3*len(frame)), bytes.Repeat(frame, 3); !bytes.Equal(got, want) {
				t.Errorf("far end got % x, want % x", got, want)
			}
			if err := p.Drain(); err != nil {
				t.Errorf("Drain: %v", err)
			}
			// And the other way: what the device sends, the port reads.
			f.Write(frame)
			p.SetReadTimeout(2 * time.Second)
			buf := make([]byte, 64)
			n, err := p.Read(buf)
			if err != nil || !bytes.Equal(buf[:n], frame) {
				t.Errorf("Read = % x, %v; want % x", buf[:n], err, frame)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "capture.bin")
	os.WriteFile(regular, []byte("x"), 0o644)
	cases := []struct {
		name string
		path string
		want error
	}{
		{"missing", filepath.Join(dir, "ttyUSB9"), device.ErrNotFound},
		{"regular file", regular, device.ErrNotSerial},
		{"dev null", "/dev/null", device.ErrNotSerial},
		{"directory", dir, device.ErrNotSerial},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := device.Open(c.path, device.DefaultConfig())
			if err == nil {
				p.Close()
				t.Fatalf("Open(%s) succeeded", c.path)
			}
			if !errors.Is(err, c.want) {
				t.Errorf("Open(%s) = %v, want %v", c.path, err, c.want)
			}
			var derr *device.Error
			if !errors.As(err, &derr) || derr.Path != c.path {
				t.Errorf("error %v does not name the path %s", err, c.path)
			}
		})
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	for _, cfg := range []device.Config{
		{Baud: -1, DataBits: 8, Parity: device.ParityNone, StopBits: 1},
		{Baud: 0, DataBits: 8, Parity: device.ParityNone, StopBits: 1},
		{Baud: 9600, DataBits: 9, Parity: device.ParityNone, StopBits: 1},
		{Baud: 9600, DataBits: 8, Parity: "purple", StopBits: 1},
		{Baud: 9600, DataBits: 8, Parity: device.ParityNone, StopBits: 3},
	} {
		if p, err := device.Open(f.Path(), cfg); err == nil {
			p.Close()
			t.Errorf("Open with %+v succeeded, want a validation error", cfg)
		}
	}
}

func TestPermissionDenied(t *testing.T) {
	if !testenv.Unprivileged(t) {
		return // root opens any device: the test ran again as uid 65534
	}
	f := newFake(t, devicetest.Options{})
	os.Chmod(f.Path(), 0)
	_, err := device.Open(f.Path(), device.DefaultConfig())
	if !errors.Is(err, device.ErrPermission) {
		t.Fatalf("Open = %v, want ErrPermission", err)
	}
}

func TestWriteAfterUnplugIsGone(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	p, err := device.Open(f.Path(), device.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	f.Unplug()
	_, err = p.Write([]byte{1, 2, 3})
	if !errors.Is(err, device.ErrGone) {
		t.Fatalf("Write after unplug = %v, want ErrGone", err)
	}
	if _, err := os.Stat(f.Path()); err == nil {
		t.Errorf("%s still exists after unplug", f.Path())
	}
}

func TestWriteAfterCloseIsRefused(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	p, err := device.Open(f.Path(), device.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := p.Write([]byte{1}); !errors.Is(err, device.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestParseParity(t *testing.T) {
	for in, want := range map[string]device.Parity{"none": device.ParityNone, "ODD": device.ParityOdd, " even ": device.ParityEven, "mark": device.ParityMark, "space": device.ParitySpace} {
		if got, err := device.ParseParity(in); err != nil || got != want {
			t.Errorf("ParseParity(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := device.ParseParity("purple"); err == nil {
		t.Error("ParseParity(purple) succeeded")
	}
}

func devicetestOptions() devicetest.Options { return devicetest.Options{} }

func itoa(n int) string { return strconv.Itoa(n) }

func TestSecondOpenIsBusyAndNamesTheHolder(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	p, err := device.Open(f.Path(), device.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	_, err = device.Open(f.Path(), device.DefaultConfig())
	if !errors.Is(err, device.ErrBusy) {
		t.Fatalf("second Open = %v, want ErrBusy", err)
	}
	comm, _ := os.ReadFile("/proc/self/comm")
	want := "port busy: " + f.Path() + " is held by PID " + strconv.Itoa(os.Getpid()) + " (" + strings.TrimSpace(string(comm)) + ")"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	// Closing the first releases the lock.
	p.Close()
	p2, err := device.Open(f.Path(), device.DefaultConfig())
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	p2.Close()
}
