//go:build linux

package device_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/framesend/framesend/device"
	"github.com/framesend/framesend/device/devicetest"
)

// pluggedLink is a udev-like link to a pty fake, that a test can unplug and
// plug again with a new fake behind the same path.
type pluggedLink struct {
	t    *testing.T
	path string
	fake *devicetest.PTY
}

func newPluggedLink(t *testing.T) *pluggedLink {
	t.Helper()
	l := &pluggedLink{t: t, path: filepath.Join(t.TempDir(), "ttyLINK")}
	l.plug()
	return l
}

// plug puts a new fake behind the link.
func (l *pluggedLink) plug() {
	l.t.Helper()
	l.fake = newFake(l.t, devicetest.Options{})
	os.Remove(l.path)
	if err := os.Symlink(l.fake.Path(), l.path); err != nil {
		l.t.Fatal(err)
	}
}

// unplug takes the device away, link and all, as udev does.
func (l *pluggedLink) unplug() {
	l.t.Helper()
	l.fake.Unplug()
	if err := os.Remove(l.path); err != nil {
		l.t.Fatal(err)
	}
}

// openReconnecting opens the link as a Reconnecting port that waits up to
// timeout for the device (0: for ever), closed when the test ends.
func openReconnecting(t *testing.T, l *pluggedLink, timeout time.Duration) *device.Reconnecting {
	t.Helper()
	r, err := device.OpenReconnecting(l.path, device.DefaultConfig(), true, timeout, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// unplugDuringWrite unplugs the device, checks that a write then fails
// with ErrGone, and starts Reconnect with that error; it returns once
// Reconnect says the device is gone, with a channel that gets Reconnect's
// result.
func unplugDuringWrite(ctx context.Context, t *testing.T, l *pluggedLink, r *device.Reconnecting) <-chan error {
	t.Helper()
	l.unplug()
	_, werr := r.Write([]byte("lost"))
	if !errors.Is(werr, device.ErrGone) {
		t.Fatalf("Write after unplug = %v, want ErrGone", werr)
	}
	if r.Gone() {
		t.Error("Gone() = true before Reconnect was told")
	}
	back := make(chan error, 1)
	go func() { back <- r.Reconnect(ctx, werr) }()
	waitGone(t, r)
	return back
}

// waitGone waits until r says the device is away.
func waitGone(t *testing.T, r *device.Reconnecting) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !r.Gone(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Gone() still false 5s into Reconnect")
		}
	}
}

// Unplugged and plugged in again: the write in progress fails with
// ErrGone, Gone is true while Reconnect waits (and the port's drains and
// deadlines do nothing then), and once the device is back writes go on to
// the new device, byte for byte.
func TestReconnectingFollowsTheDeviceBack(t *testing.T) {
	link := newPluggedLink(t)
	r := openReconnecting(t, link, 10*time.Second)
	if _, err := r.Write([]byte("before")); err != nil {
		t.Fatalf("Write = %v", err)
	}
	if got := readN(t, link.fake, 6); string(got) != "before" {
		t.Fatalf("first device got %q, want %q", got, "before")
	}
	if r.Gone() {
		t.Fatal("Gone() = true with the device plugged in")
	}

	back := unplugDuringWrite(context.Background(), t, link, r)
	// While it is away there is nothing to drain or bound.
	if err := r.Drain(); err != nil {
		t.Errorf("Drain while gone = %v, want nil", err)
	}
	if err := r.DrainBy(time.Now().Add(time.Second)); err != nil {
		t.Errorf("DrainBy while gone = %v, want nil", err)
	}
	if err := r.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		t.Errorf("SetWriteDeadline while gone = %v, want nil", err)
	}
	select {
	case err := <-back:
		t.Fatalf("Reconnect returned %v with the device still away", err)
	default:
	}

	link.plug()
	select {
	case err := <-back:
		if err != nil {
			t.Fatalf("Reconnect = %v, want nil once the device is back", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Reconnect still waiting 5s after the device came back")
	}
	if r.Gone() {
		t.Error("Gone() = true after Reconnect returned")
	}
	after := bytes.Repeat([]byte("after"), 1000)
	if n, err := r.Write(after); err != nil || n != len(after) {
		t.Fatalf("Write after reconnect = %d, %v; want %d, nil", n, err, len(after))
	}
	if got := readN(t, link.fake, len(after)); !bytes.Equal(got, after) {
		t.Errorf("second device got %d bytes that differ from the %d written", len(got), len(after))
	}
	if err := r.Drain(); err != nil {
		t.Errorf("Drain after reconnect = %v", err)
	}
	if r.Port().Path() != link.path {
		t.Errorf("port path %q, want the link %q", r.Port().Path(), link.path)
	}
}

// The device is unplugged twice: Reconnect follows it each time.
func TestReconnectingTwice(t *testing.T) {
	link := newPluggedLink(t)
	r := openReconnecting(t, link, 10*time.Second)
	for round := range 2 {
		back := unplugDuringWrite(context.Background(), t, link, r)
		link.plug()
		if err := <-back; err != nil {
			t.Fatalf("round %d: Reconnect = %v", round, err)
		}
		if _, err := r.Write([]byte{0xa0 + byte(round)}); err != nil {
			t.Fatalf("round %d: Write = %v", round, err)
		}
		if got := readN(t, link.fake, 1); got[0] != 0xa0+byte(round) {
			t.Errorf("round %d: device got % x", round, got)
		}
	}
}

// An error that is not an unplug is returned as it is, with no wait and
// the device not marked gone.
func TestReconnectingPassesOtherErrors(t *testing.T) {
	link := newPluggedLink(t)
	r := openReconnecting(t, link, 10*time.Second)
	other := errors.New("some other failure")
	if err := r.Reconnect(context.Background(), other); err != other {
		t.Errorf("Reconnect(other) = %v, want it unchanged", err)
	}
	if r.Gone() {
		t.Error("Gone() = true after an error that is not an unplug")
	}
	if _, err := r.Write([]byte("x")); err != nil {
		t.Errorf("Write after Reconnect(other) = %v: the port was closed", err)
	}
}

// A device that does not come back within the timeout ends the wait with
// an error that says both what took it away and that it did not return;
// a stop while waiting ends it with the context's error.
func TestReconnectingGivesUp(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		link := newPluggedLink(t)
		r := openReconnecting(t, link, 300*time.Millisecond)
		link.unplug()
		_, werr := r.Write([]byte("x"))
		start := time.Now()
		err := r.Reconnect(context.Background(), werr)
		if !errors.Is(err, device.ErrGone) || !errors.Is(err, device.ErrNotBack) {
			t.Fatalf("Reconnect = %v, want ErrGone and ErrNotBack", err)
		}
		if took := time.Since(start); took < 300*time.Millisecond {
			t.Errorf("gave up after %v, before the 300ms timeout", took)
		}
		if !r.Gone() {
			t.Error("Gone() = false for a device that did not come back")
		}
	})
	t.Run("stop", func(t *testing.T) {
		link := newPluggedLink(t)
		r := openReconnecting(t, link, 0)
		ctx, cancel := context.WithCancel(context.Background())
		back := unplugDuringWrite(ctx, t, link, r)
		cancel()
		select {
		case err := <-back:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Reconnect after a stop = %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Reconnect (no timeout) still waiting 5s after the stop")
		}
	})
}
