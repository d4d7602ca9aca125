package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/framesend/framesend/device/devicetest"
	"github.com/framesend/framesend/internal/testenv"
)

// binary is framesend built once for the tests that run it as a process,
// with -race when the tests run under -race: the race detector then also
// watches the goroutines of the process the tests exec.
var binary string

// raceLog holds the race reports of the processes the tests start; see
// command.
var raceLog *testenv.RaceLog

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "framesend-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "framesend")
	if err := testenv.GoBuild(binary, ".", true); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if raceLog, err = testenv.NewRaceLog(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if rest := raceLog.Rest(); rest != "" {
		fmt.Fprintf(os.Stderr, "a framesend process found a data race:\n%s", rest)
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// command returns the command that runs the binary with args. A race the
// process reports fails t when the test ends.
func command(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary, args...)
	t.Cleanup(func() {
		if cmd.Process != nil {
			raceLog.Check(t, cmd.Process.Pid)
		}
	})
	return cmd
}

// plainBinary is framesend built without -race; see withoutRace.
var plainBinary = sync.OnceValues(func() (string, error) {
	if !testenv.Race {
		return binary, nil
	}
	out := filepath.Join(filepath.Dir(binary), "framesend-norace")
	return out, testenv.GoBuild(out, ".", false)
})

// withoutRace makes test t run framesend built without -race, for the few
// tests that measure the process itself (its memory, or whether it keeps
// up with a burst) where the race detector would change what is measured:
// it multiplies memory several times and slows every step. why says which.
func withoutRace(t *testing.T, why string) {
	t.Helper()
	plain, err := plainBinary()
	if err != nil {
		t.Fatal(err)
	}
	if plain != binary {
		t.Logf("framesend built without -race: %s", why)
	}
	was := binary
	binary = plain
	t.Cleanup(func() { binary = was })
}

func counterBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 16)
	}
	return b
}

func newFake(t *testing.T, opts devicetest.Options) *devicetest.PTY {
	t.Helper()
	return devicetest.Start(t, opts)
}

// drain reads the fake's far end into a buffer until stop is closed and no
// byte has come for quiet since then, and returns what it read.
func drain(f *devicetest.PTY, stop <-chan struct{}, quiet time.Duration) <-chan []byte {
	return drainInto(f, stop, quiet, &lockedBuffer{})
}

// drainInto is drain writing what it reads to seen as it comes, so that
// the test can wait for bytes to arrive (seen.Len).
func drainInto(f *devicetest.PTY, stop <-chan struct{}, quiet time.Duration, seen *lockedBuffer) <-chan []byte {
	out := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 64<<10)
		stopped := false
		last := time.Now()
		for {
			f.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			n, err := f.Read(buf)
			seen.Write(buf[:n])
			if n > 0 {
				last = time.Now()
			}
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			select {
			case <-stop:
				if !stopped {
					// Quiet counts from the stop too: what the writer
					// wrote just before it may not be read yet.
					stopped, last = true, time.Now()
				}
			default:
			}
			if stopped && time.Since(last) > quiet {
				break
			}
		}
		out <- seen.Bytes()
	}()
	return out
}

// waitGrowth waits until seen holds n bytes, or until it has not grown for
// idle: bytes that are missing then are for the caller's checks to show,
// not a time-out. It waits for the event, a delivery; idle only bounds
// the wait when the event never comes.
func waitGrowth(seen *lockedBuffer, n int, idle time.Duration) {
	last, since := -1, time.Now()
	for {
		l := seen.Len()
		if l >= n {
			return
		}
		if l != last {
			last, since = l, time.Now()
		} else if time.Since(since) > idle {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runIn runs framesend in-process with args and returns the exit code,
// stdout and stderr.
func runIn(ctx context.Context, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(ctx, append([]string{"framesend"}, args...), strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// start starts the binary with args, its stderr kept in a buffer to read
// once it has exited. The process is killed when the test ends.
func start(t *testing.T, args ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := command(t, args...)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, stderr
}

// waitLog waits until the log on stderr has a line containing s.
func waitLog(t *testing.T, stderr *lockedBuffer, s string) {
	t.Helper()
	waitFor(t, func() bool { return strings.Contains(stderr.String(), s) }, fmt.Sprintf("%q in the log", s))
}

// waitSignalTaken waits until the signal sig sent to process pid is no
// longer pending, that is until the process has received it.
func waitSignalTaken(t *testing.T, pid int, sig syscall.Signal) {
	t.Helper()
	waitFor(t, func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return false
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "ShdPnd:"); ok {
				mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				return err == nil && mask&(1<<(uint(sig)-1)) == 0
			}
		}
		return false
	}, fmt.Sprintf("PID %d to take %v", pid, sig))
}

// lastMaxRSS is the peak resident memory, in KiB, of the last process
// framesend ran.
var lastMaxRSS int64

// framesend runs the binary with args and returns its exit code and stderr.
func framesend(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := command(t, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run framesend: %v", err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		lastMaxRSS = ru.Maxrss
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

func TestSendHundredThousandFrames(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	stop := make(chan struct{})
	got := drain(f, stop, 200*time.Millisecond)
	code, _, stderr := framesend(t, nil, "send", "--port", f.Path(), "--count", "100000")
	close(stop)
	if code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, stderr)
	}
	data := <-got
	if want := counterBytes(700_000); !bytes.Equal(data, want) {
		t.Fatalf("far end got %d bytes, want the 700000-byte counter stream (first difference at %d)", len(data), firstDiff(data, want))
	}
	if !strings.Contains(stderr, "100000 frames, 700000 bytes") {
		t.Errorf("summary missing or wrong: %q", stderr)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestSendFromEnvironment(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	stop := make(chan struct{})
	got := drain(f, stop, 200*time.Millisecond)
	code, _, stderr := framesend(t, []string{"FRAMESEND_PORT=" + f.Path(), "FRAMESEND_COUNT=500", "FRAMESEND_FRAME_SIZE=16", "FRAMESEND_BATCH=1"}, "send")
	close(stop)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if data := <-got; !bytes.Equal(data, counterBytes(500*16)) {
		t.Errorf("far end got %d bytes, want 8000 counter bytes", len(data))
	}
	if !strings.Contains(stderr, "500 writes") {
		t.Errorf("FRAMESEND_BATCH=1 not honoured: %s", stderr)
	}
}

func TestSendStopsCleanlyOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			f := newFake(t, devicetest.Options{})
			cmd, stderr := start(t, "send", "--port", f.Path(), "--rate", "5000", "--batch", "3")
			head := readUntil(t, f, 7*100) // it is sending
			stop := make(chan struct{})
			got := drain(f, stop, 300*time.Millisecond)
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			close(stop)
			if err != nil {
				t.Fatalf("after %v: %v, stderr: %s", sig, err, stderr.String())
			}
			data := append(head, <-got...)
			if len(data) == 0 || len(data)%7 != 0 {
				t.Fatalf("far end got %d bytes: want a whole, non-zero number of 7-byte frames", len(data))
			}
			if !bytes.Equal(data, counterBytes(len(data))) {
				t.Fatalf("stream differs at byte %d", firstDiff(data, counterBytes(len(data))))
			}
			if want := fmt.Sprintf("%d frames, %d bytes", len(data)/7, len(data)); !strings.Contains(stderr.String(), want) {
				t.Errorf("summary %q does not say %q", stderr.String(), want)
			}
		})
	}
}

func TestSendReportsUnplug(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	cmd, stderr := start(t, "send", "--port", f.Path())
	buf := make([]byte, 7000)
	f.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(f, buf); err != nil {
		t.Fatalf("far end: %v", err)
	}
	f.Unplug()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatal("send did not stop within 5 s of the device going away")
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	msg := stderr.String()
	for _, want := range []string{f.Path(), "device disappeared", "after ", "frames"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr %q does not mention %q", msg, want)
		}
	}
}

func TestPermissionDeniedAsUnprivilegedUser(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	cmd := command(t, "send", "--port", f.Path(), "--count", "1")
	if os.Geteuid() == 0 {
		if err := os.Chmod(f.Path(), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		// The binary must be reachable by that user.
		os.Chmod(filepath.Dir(binary), 0o755)
	} else {
		os.Chmod(f.Path(), 0)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("err = %v, want exit 1; stderr: %s", err, stderr.String())
	}
	for _, want := range []string{"permission denied", f.Path(), "dialout"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q does not mention %q", stderr.String(), want)
		}
	}
}

// badInput is a command line run in-process, the exit code it must end
// with, and the strings its one-line message must hold.
type badInput struct {
	args []string
	code int
	want []string
}

// checkBadInput runs each case in a subtest and checks its exit code, that
// stderr is one line, and that it mentions everything the case wants.
func checkBadInput(t *testing.T, cases []badInput) {
	t.Helper()
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, msg := runIn(context.Background(), c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, c.code, msg)
			}
			if lines := strings.Count(strings.TrimSpace(msg), "\n") + 1; lines != 1 {
				t.Errorf("stderr has %d lines, want one: %q", lines, msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr %q does not mention %q", msg, w)
				}
			}
		})
	}
}

// TestBadInput runs the command in-process for every mistake a user can
// make on the command line, and checks the exit code and the one-line
// message.
func TestBadInput(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	dir := t.TempDir()
	regular := filepath.Join(dir, "frames.bin")
	os.WriteFile(regular, []byte{1, 2, 3}, 0o644)
	cases := []badInput{
		{[]string{"send"}, 2, []string{"missing --port"}},
		{[]string{"send", "--port", "/dev/ttyNOPE9"}, 1, []string{"/dev/ttyNOPE9", "no such device", "/dev/serial/by-id"}},
		{[]string{"send", "--port", "/dev/null"}, 1, []string{"/dev/null", "not a serial device"}},
		{[]string{"send", "--port", regular}, 1, []string{regular, "not a serial device", "regular file"}},
		{[]string{"send", "--port", dir}, 1, []string{dir, "not a serial device"}},
		{[]string{"send", "--port", f.Path(), "--baud", "fast"}, 2, []string{"--baud", "fast"}},
		{[]string{"send", "--port", f.Path(), "--baud", "-9600"}, 2, []string{"--baud -9600", "positive"}},
		{[]string{"send", "--port", f.Path(), "--baud", "0"}, 2, []string{"--baud 0"}},
		{[]string{"send", "--port", f.Path(), "--data-bits", "9"}, 2, []string{"--data-bits 9", "5, 6, 7 or 8"}},
		{[]string{"send", "--port", f.Path(), "--parity", "purple"}, 2, []string{"--parity", "purple", "none, odd, even"}},
		{[]string{"send", "--port", f.Path(), "--stop-bits", "3"}, 2, []string{"--stop-bits 3", "1 or 2"}},
		{[]string{"send", "--port", f.Path(), "--frame-size", "0"}, 2, []string{"--frame-size 0", "1 to 4096"}},
		{[]string{"send", "--port", f.Path(), "--frame-size", "5000"}, 2, []string{"--frame-size 5000"}},
		{[]string{"send", "--port", f.Path(), "--rate", "-1"}, 2, []string{"--rate -1"}},
		{[]string{"send", "--port", f.Path(), "--count", "-1"}, 2, []string{"--count -1"}},
		{[]string{"send", "--port", f.Path(), "--queue", "0"}, 2, []string{"--queue 0"}},
		{[]string{"send", "--port", f.Path(), "--source", "ftp:x"}, 2, []string{"--source", "ftp:x"}},
		{[]string{"send", "--port", f.Path(), "--log-level", "loud"}, 2, []string{"--log-level", "loud"}},
		{[]string{"send", "--port", f.Path(), "--summary", "xml"}, 2, []string{"--summary", "xml"}},
		{[]string{"send", "--port", f.Path(), "--nope"}, 2, []string{"--nope", "framesend send --help"}},
		{[]string{"send", "--port", f.Path(), "extra"}, 2, []string{"extra"}},
		{[]string{"frob"}, 2, []string{`"frob"`}},
		{[]string{"listen"}, 2, []string{"missing --port"}},
		{[]string{"listen", "--port", "/dev/ttyNOPE9"}, 1, []string{"/dev/ttyNOPE9", "no such device"}},
		{[]string{"listen", "--port", f.Path(), "--count", "-1"}, 2, []string{"--count -1"}},
		{[]string{"listen", "--port", f.Path(), "--timeout", "-1s"}, 2, []string{"--timeout -1s"}},
		{[]string{"listen", "--port", f.Path(), "--format", "xml"}, 2, []string{"--format", "xml"}},
		{[]string{"listen", "--port", f.Path(), "--expect", "sometimes"}, 2, []string{"--expect", "sometimes"}},
		{[]string{"demo", "--count", "0"}, 2, []string{"--count 0"}},
		{[]string{"demo", "--count", "-1"}, 2, []string{"--count -1", "1 or more"}},
		{[]string{"send", "--port", f.Path(), "--drain"}, 2, []string{"--drain applies to mqtt:// and mqtts:// sources only, not --source counter"}},
		{[]string{"send", "--port", f.Path(), "--client-id", "x"}, 2, []string{"--client-id applies to mqtt://"}},
		{[]string{"send", "--port", f.Path(), "--connect-timeout", "1s"}, 2, []string{"--connect-timeout applies to mqtt://"}},
		{[]string{"send", "--port", f.Path(), "--mqtt-key", "k.pem"}, 2, []string{"--mqtt-key applies to mqtts://"}},
		{[]string{"send", "--port", f.Path(), "--reconnect-timeout", "1m"}, 2, []string{"--reconnect-timeout applies with --reconnect only"}},
		{[]string{"send", "--port", f.Path(), "--partial", "drop", "--pad", "0xff"}, 2, []string{"--pad applies with --partial pad only, not --partial drop"}},
		{[]string{"listen", "--port", f.Path(), "--quiet", "--format", "jsonl"}, 2, []string{"--format has no effect with --quiet"}},
		{[]string{"send", "--port", f.Path(), "--allow-from", "10.0.0.0/8"}, 2, []string{"--allow-from applies to udp sources only"}},
		{[]string{"send", "--port", f.Path(), "--rate", "1e-10"}, 2, []string{"--rate 1e-10", "use 1e-06 to 10,000,000"}},
		{[]string{"send", "--port", f.Path(), "--stats-interval", "1ns"}, 2, []string{"--stats-interval 1ns", "10ms or more"}},
	}
	checkBadInput(t, cases)
}

func TestHelpAndVersion(t *testing.T) {
	commands := []string{"send", "listen", "loopback", "ports", "doctor", "demo", "completion"}
	all := [][]string{{"--help"}, {"--version"}}
	for _, c := range commands {
		all = append(all, []string{c, "--help"})
	}
	for _, args := range all {
		code, stdout, _ := runIn(context.Background(), args...)
		if code != 0 || len(stdout) == 0 {
			t.Errorf("framesend %v: exit %d, %d bytes of output", args, code, len(stdout))
		}
		if args[0] != "--version" && args[0] != "--help" && !strings.Contains(stdout, "Examples:") {
			t.Errorf("framesend %v: help has no examples", args)
		}
	}
}

func TestDemo(t *testing.T) {
	code, out, stderr := runIn(context.Background(), "demo", "--rate", "500", "--count", "40")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if n := strings.Count(out, "  #"); n != 40 {
		t.Errorf("demo printed %d frames, want 40:\n%s", n, out)
	}
	for _, want := range []string{"#0  00 01 02 03 04 05 06", "#39  01 02 03 04 05 06 07", "counter stream verified (40 frames in order)", "verdict:"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

func openDevice(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
