//go:build linux

package device_test

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framesend/framesend/device"
	"github.com/framesend/framesend/device/devicetest"
)

// TestWriteFindsRoomNobodySignals fills a pseudo-terminal nobody reads.
// Its kernel makes room after a write is refused (EAGAIN) without waking
// the writer: the bytes move on to the far end's line discipline. A write
// waiting for room must take that room while it waits, not only when its
// deadline ends (a stop's last write would then go through, and the stop
// would not see the stall). Once the write has waited a while, another
// writer must find the pty full.
func TestWriteFindsRoomNobodySignals(t *testing.T) {
	f := newFake(t, devicetest.Options{}) // nobody reads
	p, err := device.OpenShared(f.Path(), device.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	probe, err := unix.Open(f.Path(), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(probe)

	done := make(chan error, 1)
	p.SetWriteDeadline(time.Now().Add(10 * time.Second))
	go func() {
		_, err := p.Write(make([]byte, 1<<20))
		done <- err
	}()
	// The write has filled what the pty took at once and waits; the
	// kernel moves those bytes on within a few milliseconds.
	time.Sleep(500 * time.Millisecond) // the wait being tested, not a stand-in for an event
	n, perr := unix.Write(probe, []byte{0})
	p.SetWriteDeadline(time.Now()) // end the write
	if err := <-done; !errors.Is(err, device.ErrStalled) {
		t.Fatalf("Write = %v, want ErrStalled at its deadline", err)
	}
	if perr != unix.EAGAIN {
		t.Errorf("another writer's write = %d, %v after the port's write waited 500ms; want EAGAIN: the waiting write left room untaken", n, perr)
	}
}
