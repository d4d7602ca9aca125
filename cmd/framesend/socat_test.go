package main

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/framesend/framesend/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// requireTool returns the path of an external tool a test needs. Where it
// is missing the test is skipped, so that make test passes on any machine
// with Go, unless FRAMESEND_REQUIRE_TOOLS is set (as .ci/run does): then a
// missing tool fails the test, so CI cannot silently skip it.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	return testenv.Tool(t, name, pkg)
}

// startSocat runs socat between a pty linked at a new path and the address
// other, and returns the link's path. socat is killed at the end of the test.
func startSocat(t *testing.T, other string) (string, *exec.Cmd) {
	t.Helper()
	socat := requireTool(t, "socat", "socat")
	dir := t.TempDir()
	a := filepath.Join(dir, "ttyA")
	cmd := exec.Command(socat, "-d", "-d", "pty,raw,echo=0,link="+a, other)
	log := &lockedBuffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	waitFor(t, func() bool {
		_, err := os.Stat(a)
		return err == nil && (!strings.HasPrefix(other, "pty") || strings.Count(log.String(), "PTY is") >= 2)
	}, "socat's pty links")
	return a, cmd
}

// startSocatPair starts a socat pty pair and returns its two ends.
func startSocatPair(t *testing.T) (a, b string, cmd *exec.Cmd) {
	b = filepath.Join(t.TempDir(), "ttyB")
	a, cmd = startSocat(t, "pty,raw,echo=0,link="+b)
	waitFor(t, func() bool { _, err := os.Stat(b); return err == nil }, "socat's second link")
	return a, b, cmd
}

// lockedBuffer is a bytes.Buffer that a process's output goroutine may
// fill while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Len is how many bytes were written.
func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// Bytes returns a copy of what was written.
func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// waitOpen waits until process pid has path open.
func waitOpen(t *testing.T, pid int, path string) {
	t.Helper()
	waitOpenMore(t, pid, path, 0)
}

// waitOpenMore waits until process pid has path open more than had times.
func waitOpenMore(t *testing.T, pid int, path string, had int) {
	t.Helper()
	waitFor(t, func() bool { return openCount(t, pid, path) > had }, fmt.Sprintf("PID %d to open %s", pid, path))
}

// openCount is how many of process pid's file descriptors are open on path.
func openCount(t *testing.T, pid int, path string) int {
	t.Helper()
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); l == target {
			n++
		}
	}
	return n
}

func waitExit(t *testing.T, cmd *exec.Cmd, limit time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("wait: %v", err)
		}
		return cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		cmd.Process.Kill()
		t.Fatalf("%s did not finish within %v", strings.Join(cmd.Args, " "), limit)
		return -1
	}
}

func TestSocatMillionFrames(t *testing.T) {
	a, b, _ := startSocatPair(t)
	listen, lerr := start(t, "listen", "--port", b, "--expect", "counter", "--count", "1000000", "--timeout", "20s", "--quiet")
	waitOpen(t, listen.Process.Pid, b)
	code, _, serr := framesend(t, nil, "send", "--port", a, "--count", "1000000")
	if code != 0 {
		t.Fatalf("send: exit %d: %s", code, serr)
	}
	if code := waitExit(t, listen, 60*time.Second); code != 0 {
		t.Fatalf("listen: exit %d: %s", code, lerr.String())
	}
	if !strings.Contains(lerr.String(), "counter stream verified (1000000 frames in order)") {
		t.Errorf("listen summary: %s", lerr.String())
	}
	if !strings.Contains(serr, "1000000 frames, 7000000 bytes") {
		t.Errorf("send summary: %s", serr)
	}
	t.Logf("send: %slisten: %s", serr, lerr.String())
}

func TestSocatCorruptStreamFailsListen(t *testing.T) {
	a, b, _ := startSocatPair(t)
	listen, lerr := start(t, "listen", "--port", b, "--expect", "counter", "--count", "1000", "--timeout", "2s", "--quiet")
	waitOpen(t, listen.Process.Pid, b)
	stream := counterBytes(7 * 1000)
	stream[7*123+4] = 0xaa
	dev, err := openDevice(a)
	if err != nil {
		t.Fatal(err)
	}
	dev.Write(stream)
	dev.Close()
	if code := waitExit(t, listen, 30*time.Second); code != 1 {
		t.Fatalf("listen: exit %d, want 1: %s", code, lerr.String())
	}
	for _, want := range []string{"verification failed", "frame #123 byte 4: got aa"} {
		if !strings.Contains(lerr.String(), want) {
			t.Errorf("listen stderr %q lacks %q", lerr.String(), want)
		}
	}
}

func TestSocatLoopbackEcho(t *testing.T) {
	// socat's PIPE address gives back whatever is written to it.
	a, _ := startSocat(t, "PIPE")
	code, _, stderr := framesend(t, nil, "loopback", "--port", a, "--count", "5000", "--window", "16")
	if code != 0 {
		t.Fatalf("loopback: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "5000 of 5000 frames came back") {
		t.Errorf("loopback summary: %s", stderr)
	}
}

func TestSocatKilledMidStream(t *testing.T) {
	a, b, socat := startSocatPair(t)
	far, err := openDevice(b)
	if err != nil {
		t.Fatal(err)
	}
	defer far.Close()
	read := make(chan int, 1)
	go func() {
		buf := make([]byte, 64<<10)
		total := 0
		for {
			n, err := far.Read(buf)
			total += n
			if total >= 70000 {
				select {
				case read <- total:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	send, stderr := start(t, "send", "--port", a)
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		send.Process.Kill()
		t.Fatal("no data through socat")
	}
	socat.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, send, 5*time.Second); code != 1 {
		t.Fatalf("send: exit %d, want 1: %s", code, stderr.String())
	}
	msg := stderr.String()
	for _, want := range []string{"write " + a, "device disappeared", "after ", " frames"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "sent 0 frames") {
		t.Errorf("summary says nothing was sent: %s", msg)
	}
}
