package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/framesend/framesend/device/devicetest"
)

func TestListenVerifiesCounter(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	f.Write(counterBytes(7 * 500))
	code, stdout, stderr := runIn(context.Background(), "listen", "--port", f.Path(), "--expect", "counter", "--count", "500")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if n := strings.Count(stdout, "\n"); n != 500 {
		t.Errorf("printed %d lines, want 500", n)
	}
	if !strings.Contains(stdout, "  #499  05 06 07 08 09 0a 0b\n") {
		t.Errorf("hex output lacks frame 499: ...%s", stdout[len(stdout)-200:])
	}
	if !strings.Contains(stderr, "counter stream verified (500 frames in order)") {
		t.Errorf("summary: %s", stderr)
	}
}

func TestListenCatchesCorruptionAndLoss(t *testing.T) {
	cases := []struct {
		name string
		opts devicetest.Options
		want string
	}{
		{"corrupt byte", devicetest.Options{CorruptAt: []int64{7*100 + 2}}, "first at frame #100 byte 2"},
		{"lost byte", devicetest.Options{DropAt: []int64{7 * 300}}, "first at frame #300 byte 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The wire faults apply to what the far end reads, so the
			// stream goes device → wire → listener through an echoing fake:
			// the test writes to the device side, the fake's faulty wire
			// echoes it back, and listen reads it on the device side.
			c.opts.Echo = true
			f := newFake(t, c.opts)
			// Opened before listen takes the port for itself (TIOCEXCL).
			dev, err := openDevice(f.Path())
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			done := make(chan struct{})
			var code int
			var stderr string
			had := openCount(t, os.Getpid(), f.Path())
			go func() {
				defer close(done)
				code, _, stderr = runIn(context.Background(), "listen", "--port", f.Path(), "--expect", "counter", "--timeout", "1s", "--quiet")
			}()
			// The stream starts once listen has the port open: its
			// --timeout counts from there, and it reads from then on.
			waitOpenMore(t, os.Getpid(), f.Path(), had)
			if _, err := dev.Write(counterBytes(7 * 1000)); err != nil {
				t.Fatal(err)
			}
			<-done
			if code != 1 {
				t.Fatalf("exit %d, want 1: %s", code, stderr)
			}
			for _, want := range []string{"verification failed", c.want} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr %q lacks %q", stderr, want)
				}
			}
		})
	}
}

func TestListenFormats(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	f.Write(counterBytes(7 * 3))
	code, stdout, stderr := runIn(context.Background(), "listen", "--port", f.Path(), "--count", "3", "--format", "jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d JSON lines, want 3", len(lines))
	}
	for i, l := range lines {
		var v struct {
			Time  time.Time `json:"time"`
			Frame int       `json:"frame"`
			Hex   string    `json:"hex"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
		want := fmt.Sprintf("%x", counterBytes(21)[7*i:7*i+7])
		if v.Frame != i || v.Hex != want || v.Time.IsZero() {
			t.Errorf("line %d = %+v, want frame %d hex %s", i, v, i, want)
		}
	}

	f.Write(counterBytes(7 * 2))
	code, stdout, _ = runIn(context.Background(), "listen", "--port", f.Path(), "--count", "2", "--format", "raw")
	if code != 0 || stdout != string(counterBytes(14)) {
		t.Errorf("raw: exit %d, got % x", code, stdout)
	}
}

func TestListenTimeout(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	f.Write(counterBytes(7*5 + 3))
	start := time.Now()
	code, _, stderr := runIn(context.Background(), "listen", "--port", f.Path(), "--count", "10", "--timeout", "300ms", "--expect", "counter", "--quiet")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (5 of 10 frames): %s", code, stderr)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Errorf("gave up before the timeout")
	}
	for _, want := range []string{"5 frames, 38 bytes, 3 trailing bytes", "3 trailing bytes do not fill a frame"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q lacks %q", stderr, want)
		}
	}
}

func TestListenStopsOnCancel(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	f.Write(counterBytes(70))
	code, _, stderr := runIn(ctx, "listen", "--port", f.Path(), "--expect", "counter", "--quiet")
	if code != 0 || !strings.Contains(stderr, "10 frames, 70 bytes") {
		t.Errorf("exit %d, stderr %q: want a clean stop with the summary", code, stderr)
	}
}

func TestLoopbackOnEchoingFake(t *testing.T) {
	f := newFake(t, devicetest.Options{Echo: true})
	code, _, stderr := runIn(context.Background(), "loopback", "--port", f.Path(), "--count", "2000", "--window", "8")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"2000 of 2000 frames came back", "round trip median", "p99", "verified"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q lacks %q", stderr, want)
		}
	}
}

func TestLoopbackFailures(t *testing.T) {
	cases := []struct {
		name string
		opts devicetest.Options
		want string
	}{
		{"no echo", devicetest.Options{}, "1 frame never came back"},
		{"corrupt", devicetest.Options{Echo: true, CorruptAt: []int64{7*20 + 6}}, "1 corrupt frame,"},
		{"lost byte", devicetest.Options{Echo: true, DropAt: []int64{7 * 50}}, "stray bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t, c.opts)
			code, _, stderr := runIn(context.Background(), "loopback", "--port", f.Path(), "--count", "100", "--timeout", "300ms")
			if code != 1 {
				t.Fatalf("exit %d, want 1: %s", code, stderr)
			}
			if !strings.Contains(stderr, "loopback failed") || !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q lacks %q", stderr, c.want)
			}
		})
	}
}

// The slow fake drains at 115200 baud: send meets backpressure at the line
// rate and still loses nothing.
func TestSendMeetsBackpressureAtLineRate(t *testing.T) {
	f := newFake(t, devicetest.Options{Baud: 115200})
	stop := make(chan struct{})
	got := drain(f, stop, 300*time.Millisecond)
	const frames = 8000 // 56,000 bytes: about 4.9 s of line time
	start := time.Now()
	code, _, stderr := framesend(t, nil, "send", "--port", f.Path(), "--count", fmt.Sprint(frames))
	elapsed := time.Since(start)
	close(stop)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	data := <-got
	if !bytes.Equal(data, counterBytes(7*frames)) {
		t.Fatalf("far end got %d bytes, want %d counter bytes in order", len(data), 7*frames)
	}
	// The kernel's pty buffer takes some tens of KB at once; the rest can
	// only go at 11,520 bytes/s. Faster means the line did not hold it back.
	lineBytes := float64(7*frames - 32<<10)
	if min := time.Duration(lineBytes / 11520 * float64(time.Second)); elapsed < min {
		t.Errorf("send took %v, want at least %v at 115200 baud", elapsed, min)
	}
}

// TestLoopbackMemoryIsFlat runs loopback on the echoing fake for 60,000 and
// for 600,000 frames and compares the peak resident memory of the two
// processes: a long self-test must not need more memory than a short one.
func TestLoopbackMemoryIsFlat(t *testing.T) {
	peak := func(count int) int64 {
		t.Helper()
		f := newFake(t, devicetest.Options{Echo: true})
		code, _, stderr := framesend(t, nil, "loopback", "--port", f.Path(), "--count", fmt.Sprint(count), "--window", "64")
		if code != 0 {
			t.Fatalf("loopback of %d: exit %d: %s", count, code, stderr)
		}
		return lastMaxRSS
	}
	small, large := peak(60_000), peak(600_000)
	t.Logf("peak RSS %d KiB for 60,000 frames, %d KiB for 600,000", small, large)
	if large-small > 3<<10 {
		t.Errorf("peak RSS grew by %d KiB from 60,000 to 600,000 frames: loopback's memory grows with the run", large-small)
	}
}

func TestLoopbackSaysWhatCameBack(t *testing.T) {
	f := newFake(t, devicetest.Options{}) // nothing echoes
	code, _, stderr := runIn(context.Background(), "loopback", "--port", f.Path(), "--count", "3", "--timeout", "200ms")
	if code != 1 || strings.Contains(stderr, "verified") || !strings.Contains(stderr, "0 of 1 frame came back; nothing came back to verify") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
