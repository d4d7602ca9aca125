package device_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framesend/framesend/device"
	"github.com/framesend/framesend/device/devicetest"
)

// A pty keeps flow control flags and any speed, so the settings read back
// on the fake are those asked.
func TestOpenReadsTheSettingsBack(t *testing.T) {
	for _, c := range []device.Config{
		{Baud: 921600, DataBits: 8, Parity: device.ParityNone, StopBits: 2, Flow: device.FlowRTSCTS},
		{Baud: 12345, DataBits: 8, Parity: device.ParityNone, StopBits: 1, Flow: device.FlowXONXOFF},
		{Baud: 9600, DataBits: 8, Parity: device.ParityNone, StopBits: 1},
	} {
		f := newFake(t, devicetest.Options{})
		p, err := device.Open(f.Path(), c)
		if err != nil {
			t.Fatalf("Open(%v) = %v", c, err)
		}
		got := p.Settings()
		if got.Baud != c.Baud || got.StopBits != c.StopBits || got.Flow != c.Flow && !(c.Flow == "" && got.Flow == device.FlowNone) || !got.HangUp {
			t.Errorf("settings read back = %+v, want %v with flow %q and HUPCL", got, c, c.Flow)
		}
		p.Close()
	}
}

func TestOpenWithHupclFalseClearsIt(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	c := device.DefaultConfig()
	c.KeepLines = true
	p, err := device.Open(f.Path(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Settings().HangUp {
		t.Errorf("HUPCL read back set, want it cleared")
	}
}

func TestModemLinesOnTheFakeAreRefusedClearly(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	c := device.DefaultConfig()
	c.DTR = device.LevelOn
	_, err := device.Open(f.Path(), c)
	if !errors.Is(err, device.ErrUnsupported) {
		t.Fatalf("Open with DTR on a pty = %v, want ErrUnsupported", err)
	}
	if want := "configure " + f.Path() + ": it has no modem control lines"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message = %q, want it to start %q", err, want)
	}
	// The failed open released the port.
	p, err := device.Open(f.Path(), device.DefaultConfig())
	if err != nil {
		t.Fatalf("Open after the refusal = %v", err)
	}
	p.Close()
}

func TestWriteHonoursItsDeadline(t *testing.T) {
	f := newFake(t, devicetest.Options{}) // nobody reads: the pty fills
	p, err := device.Open(f.Path(), device.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	start := time.Now()
	n, err := p.Write(make([]byte, 1<<20))
	if !errors.Is(err, device.ErrStalled) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write = %d, %v; want ErrStalled and os.ErrDeadlineExceeded", n, err)
	}
	if n == 0 || n >= 1<<20 {
		t.Errorf("Write took %d bytes, want some of the 1 MiB (a pty holds a few KB)", n)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Write returned after %v, want about 200ms", took)
	}
}

func TestCloseEndsAWriteInProgress(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	p, err := device.Open(f.Path(), device.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() { _, werr = p.Write(make([]byte, 1<<20)) })
	time.Sleep(100 * time.Millisecond) // let the write fill the pty and wait
	p.Close()
	wg.Wait()
	if werr == nil {
		t.Fatal("Write returned nil after Close, want an error")
	}
}

func TestFrameBreakOnThePty(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	c := device.Config{Baud: 250000, DataBits: 8, Parity: device.ParityNone, StopBits: 2, FrameBreak: 100 * time.Microsecond, MarkAfterBreak: 12 * time.Microsecond}
	p, err := device.Open(f.Path(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	start := time.Now()
	if err := p.BeforeFrame(); err != nil {
		t.Fatalf("BeforeFrame = %v", err)
	}
	if _, err := p.Write(make([]byte, 513)); err != nil {
		t.Fatalf("Write = %v", err)
	}
	if took := time.Since(start); took < 112*time.Microsecond {
		t.Errorf("break, mark and write took %v, want at least the 112µs of break and mark", took)
	}
	if b := p.LastBreak(); b.Break < 100*time.Microsecond || b.Mark < 12*time.Microsecond {
		t.Errorf("LastBreak = %+v, want a break of at least 100µs and a mark of at least 12µs", b)
	}
	if err := p.Break(time.Millisecond); err != nil {
		t.Fatalf("Break = %v", err)
	}
}

func TestLineChecksShowTheCurrentSettings(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	c := device.Config{Baud: 57600, DataBits: 8, Parity: device.ParityNone, StopBits: 2, Flow: device.FlowRTSCTS}
	p, err := device.Open(f.Path(), c)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	checks := device.LineChecks(device.System{Root: "/"}, f.Path(), nil)
	if len(checks) != 1 || checks[0].Name != "line" {
		t.Fatalf("checks = %+v, want one line check", checks)
	}
	if want := f.Path() + " now runs at 57600 8N2, flow rtscts, HUPCL on; no modem lines"; checks[0].Detail != want {
		t.Errorf("detail = %q, want %q", checks[0].Detail, want)
	}
}

// After an unplug, Reconnect opens the returning device with every line
// setting again: a fresh pty starts without them, so reading them back
// proves they were applied.
func TestReconnectAppliesTheLineSettingsAgain(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttyLINK")
	first := newFake(t, devicetest.Options{})
	if err := os.Symlink(first.Path(), link); err != nil {
		t.Fatal(err)
	}
	c := device.Config{Baud: 57600, DataBits: 8, Parity: device.ParityNone, StopBits: 2, Flow: device.FlowRTSCTS, KeepLines: true}
	r, err := device.OpenReconnecting(link, c, true, 5*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	first.Unplug()
	_, werr := r.Write([]byte{1, 2, 3})
	if werr == nil {
		t.Fatal("Write after unplug = nil, want an error")
	}
	second := newFake(t, devicetest.Options{})
	os.Remove(link)
	if err := os.Symlink(second.Path(), link); err != nil {
		t.Fatal(err)
	}
	if err := r.Reconnect(context.Background(), werr); err != nil {
		t.Fatalf("Reconnect = %v", err)
	}
	got := r.Port().Settings()
	if got.Baud != 57600 || got.StopBits != 2 || got.Flow != device.FlowRTSCTS || got.HangUp {
		t.Errorf("settings after reconnect = %+v, want 57600 8N2, flow rtscts, HUPCL off", got)
	}
}

func TestSetWriteDeadlineCutsAWaitingWrite(t *testing.T) {
	f := newFake(t, devicetest.Options{}) // nobody reads: the pty fills
	p, err := device.Open(f.Path(), device.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	done := make(chan error, 1)
	go func() {
		_, err := p.Write(make([]byte, 1<<20)) // no deadline: waits for room
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	p.SetWriteDeadline(time.Now()) // as a stop does, from another goroutine
	select {
	case err := <-done:
		if !errors.Is(err, device.ErrStalled) {
			t.Errorf("Write = %v, want ErrStalled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Write still waiting 5s after its deadline was set to now")
	}
}
