package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framesend/framesend/device/devicetest"
)

// blockingStdin returns a pipe or a terminal whose descriptor is blocking,
// as a shell's is, to be framesend's stdin; and the writing side.
func blockingStdin(t *testing.T, kind string) (stdin, writer *os.File) {
	t.Helper()
	switch kind {
	case "pipe":
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		stdin, writer = os.NewFile(uintptr(p[0]), "pipe-r"), os.NewFile(uintptr(p[1]), "pipe-w")
	case "tty":
		pt := newFake(t, devicetest.Options{})
		fd, err := unix.Open(pt.Path(), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		stdin, writer = os.NewFile(uintptr(fd), pt.Path()), nil
	}
	t.Cleanup(func() {
		stdin.Close()
		if writer != nil {
			writer.Close()
		}
	})
	return stdin, writer
}

func nonblocking(t *testing.T, f *os.File) bool {
	t.Helper()
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return flags&unix.O_NONBLOCK != 0
}

// TestStdinFlagsAreNeverChanged ends send --source stdin (and hex:-) every
// way it can end, kill -9 and a second Ctrl-C included, and checks that the
// stdin it shared with its parent is still blocking: the next program to
// read that terminal or pipe must not get EOF at once.
func TestStdinFlagsAreNeverChanged(t *testing.T) {
	for _, kind := range []string{"pipe", "tty"} {
		for _, source := range []string{"stdin", "hex:-"} {
			for _, end := range []string{"kill -9", "two SIGINTs", "one SIGINT"} {
				t.Run(kind+" "+source+" "+end, func(t *testing.T) {
					f := newFake(t, devicetest.Options{})
					stdin, _ := blockingStdin(t, kind)
					if nonblocking(t, stdin) {
						t.Fatal("the test's stdin is non-blocking from the start")
					}
					cmd := command(t, "send", "--port", f.Path(), "--source", source, "--drain-timeout", "10s")
					cmd.Stdin = stdin
					var stderr bytes.Buffer
					cmd.Stderr = &stderr
					if err := cmd.Start(); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { cmd.Process.Kill() })
					waitOpen(t, cmd.Process.Pid, f.Path())
					switch end {
					case "kill -9":
						cmd.Process.Kill()
					case "two SIGINTs":
						cmd.Process.Signal(syscall.SIGINT)
						cmd.Process.Signal(syscall.SIGINT)
					case "one SIGINT":
						cmd.Process.Signal(syscall.SIGINT)
					}
					cmd.Wait()
					if nonblocking(t, stdin) {
						t.Errorf("after %s, the parent's stdin is non-blocking (stderr %q)", end, stderr.String())
					}
				})
			}
		}
	}
}

// TestFIFOWithoutWriterStopsOnFirstSignal: file: and hex: sources on a FIFO
// nobody has opened for writing yet; one SIGINT (as systemctl stop sends)
// ends framesend at once with exit 0.
func TestFIFOWithoutWriterStopsOnFirstSignal(t *testing.T) {
	for _, kind := range []string{"file", "hex"} {
		t.Run(kind, func(t *testing.T) {
			f := newFake(t, devicetest.Options{})
			fifo := filepath.Join(t.TempDir(), "fifo")
			if err := unix.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd, stderr := start(t, "send", "--port", f.Path(), "--source", kind+":"+fifo)
			waitFIFOOpen(t, cmd.Process.Pid)
			cmd.Process.Signal(syscall.SIGTERM)
			if code := waitExit(t, cmd, 3*time.Second); code != 0 || !strings.Contains(stderr.String(), "stopped while waiting for --source") {
				t.Errorf("exit %d, stderr %q: want 0 and a line saying it stopped while waiting", code, stderr.String())
			}
		})
	}
	// With a writer, the FIFO is read as before.
	f := newFake(t, devicetest.Options{})
	stop := make(chan struct{})
	got := drain(f, stop, 200*time.Millisecond)
	fifo := filepath.Join(t.TempDir(), "fifo")
	unix.Mkfifo(fifo, 0o600)
	cmd, stderr := start(t, "send", "--port", f.Path(), "--source", "file:"+fifo)
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(counterBytes(70))
	w.Close()
	if code := waitExit(t, cmd, 5*time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	close(stop)
	if data := <-got; !bytes.Equal(data, counterBytes(70)) {
		t.Errorf("far end got %d bytes, want the 70 written", len(data))
	}
}

// waitFIFOOpen waits until a thread of process pid is blocked opening a
// FIFO that has no writer yet.
func waitFIFOOpen(t *testing.T, pid int) {
	t.Helper()
	waitFor(t, func() bool {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/wchan", pid))
		for _, w := range tasks {
			if b, _ := os.ReadFile(w); string(b) == "wait_for_partner" {
				return true
			}
		}
		return false
	}, fmt.Sprintf("PID %d to wait in a FIFO's open", pid))
}
