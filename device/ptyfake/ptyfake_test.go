package ptyfake_test

import (
	"bytes"
	"io"
	"os"
	"testing"
	"time"

	"github.com/framesend/framesend/device/ptyfake"
)

func open(t *testing.T, opts ptyfake.Options) (*ptyfake.PTY, *os.File) {
	t.Helper()
	f, err := ptyfake.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	dev, err := os.OpenFile(f.Path(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	return f, dev
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func TestBytesPassUnchanged(t *testing.T) {
	f, dev := open(t, ptyfake.Options{})
	data := pattern(256 * 40)
	go dev.Write(data)
	got := make([]byte, len(data))
	f.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(f, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("far end got %d bytes (err %v), want every byte value unchanged", len(got), err)
	}
}

func TestDropAndCorrupt(t *testing.T) {
	f, dev := open(t, ptyfake.Options{DropAt: []int64{10, 11, 500}, CorruptAt: []int64{3, 499}})
	data := pattern(1000)
	go dev.Write(data)
	want := append([]byte(nil), data...)
	want[3] ^= 0xff
	want[499] ^= 0xff
	want = append(append(append([]byte(nil), want[:10]...), want[12:500]...), want[501:]...)
	got := make([]byte, len(want))
	f.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(f, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("far end stream is not the input with bytes 10, 11, 500 dropped and 3, 499 inverted")
	}
}

func TestEcho(t *testing.T) {
	_, dev := open(t, ptyfake.Options{Echo: true})
	data := pattern(5000)
	go dev.Write(data)
	got := make([]byte, len(data))
	dev.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(dev, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("echo returned %d bytes (err %v), want what was written", len(got), err)
	}
}

// The far end reads no faster than the line: 115200 baud carries 11,520
// bytes a second. (A lower bound on time, which a busy machine can only
// make longer.)
func TestBaudLimitsTheWire(t *testing.T) {
	f, dev := open(t, ptyfake.Options{Baud: 115200})
	data := pattern(11520) // one second of line time
	go dev.Write(data)
	start := time.Now()
	got := make([]byte, len(data))
	f.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(f, got); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < 950*time.Millisecond {
		t.Errorf("11,520 bytes crossed a 115200-baud line in %v, want at least about 1 s", elapsed)
	}
	if !bytes.Equal(got, data) {
		t.Error("bytes changed on the paced line")
	}
}

func TestUnplugRemovesThePath(t *testing.T) {
	f, dev := open(t, ptyfake.Options{})
	if err := f.Unplug(); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Write([]byte{1}); err == nil {
		t.Error("write after unplug succeeded")
	}
	if _, err := os.Stat(f.Path()); !os.IsNotExist(err) {
		t.Errorf("stat %s after unplug: %v, want not exist", f.Path(), err)
	}
}
