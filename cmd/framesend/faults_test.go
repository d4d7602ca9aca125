package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framesend/framesend/device/devicetest"
	"github.com/framesend/framesend/pipeline"
)

// readUntil reads the fake's far end until it has at least n bytes.
func readUntil(t *testing.T, f *devicetest.PTY, n int) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 64<<10)
	f.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(got) < n {
		k, err := f.Read(buf)
		got = append(got, buf[:k]...)
		if err != nil {
			t.Fatalf("far end: %v after %d bytes", err, len(got))
		}
	}
	return got
}

// checkResumed checks what two devices got across an outage: the first a
// prefix of the counter stream, the second whole frames continuing it to
// the end. It returns the frame the second device started at.
func checkResumed(t *testing.T, first, second []byte, count int) int {
	t.Helper()
	all := counterBytes(7 * count)
	if !bytes.Equal(first, all[:len(first)]) {
		t.Fatalf("first device: not a prefix of the counter stream (differs at %d)", firstDiff(first, all))
	}
	if len(second)%7 != 0 {
		t.Fatalf("second device got %d bytes: not whole frames", len(second))
	}
	resumed := count - len(second)/7
	if !bytes.Equal(second, all[7*resumed:]) {
		t.Fatalf("second device: not frames %d to %d of the counter stream", resumed, count-1)
	}
	// Frames the kernel had taken when the device vanished are lost with
	// it; the resend starts at the write that failed, so the gap is at
	// most what the pty buffered.
	if gap := 7*resumed - len(first); gap > 64<<10 {
		t.Errorf("resumed at frame %d, %d bytes after what the first device got: more than a buffer's worth lost", resumed, gap)
	} else {
		t.Logf("first device got %d bytes (%d whole frames); resumed at frame %d", len(first), len(first)/7, resumed)
	}
	return resumed
}

func TestReconnectAfterUnplug(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "ttyUSB-stable")
	f1 := newFake(t, devicetest.Options{})
	os.Symlink(f1.Path(), link)
	const count = 60000
	cmd, stderr := start(t, "send", "--port", link, "--count", strconv.Itoa(count), "--rate", "30000", "--reconnect")
	first := readUntil(t, f1, 70000)
	f1.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	rest := make([]byte, 64<<10)
	n, _ := f1.Read(rest)
	first = append(first, rest[:n]...)
	// The link goes first, as a udev link does: a dangling link could
	// meet the next pty the kernel makes under the old name, another
	// test's on a busy machine.
	os.Remove(link)
	f1.Unplug()
	waitLog(t, stderr, "device went away")
	f2 := newFake(t, devicetest.Options{})
	os.Symlink(f2.Path(), link)
	stop := make(chan struct{})
	got := drain(f2, stop, 300*time.Millisecond)
	if code := waitExit(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	close(stop)
	checkResumed(t, first, <-got, count)
	msg := stderr.String()
	for _, want := range []string{"device went away; waiting for it to come back", "device is back", "outage=", fmt.Sprintf("sent %d frames", count), ", 1 reconnect"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr lacks %q:\n%s", want, msg)
		}
	}
}

// linkedFake returns a pty fake and a link to it in a folder of the test's
// own. A test that unplugs a device framesend will wait for removes the
// link first: the fake's own path can be the next pty the kernel makes,
// another test's, and framesend would take that for the device come back.
func linkedFake(t *testing.T) (*devicetest.PTY, string) {
	t.Helper()
	f := newFake(t, devicetest.Options{})
	link := filepath.Join(t.TempDir(), "ttyUSB-stable")
	if err := os.Symlink(f.Path(), link); err != nil {
		t.Fatal(err)
	}
	return f, link
}

func TestReconnectTimeoutAndStop(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		f, link := linkedFake(t)
		cmd, stderr := start(t, "send", "--port", link, "--reconnect", "--reconnect-timeout", "500ms")
		readUntil(t, f, 7000)
		os.Remove(link)
		f.Unplug()
		if code := waitExit(t, cmd, 10*time.Second); code != 1 {
			t.Fatalf("exit %d, want 1: %s", code, stderr.String())
		}
		if !strings.Contains(stderr.String(), "did not come back within 500ms") {
			t.Errorf("stderr: %s", stderr.String())
		}
	})
	t.Run("SIGINT while waiting", func(t *testing.T) {
		f, link := linkedFake(t)
		cmd, stderr := start(t, "send", "--port", link, "--reconnect")
		readUntil(t, f, 7000)
		os.Remove(link)
		f.Unplug()
		waitLog(t, stderr, "device went away")
		start := time.Now()
		cmd.Process.Signal(syscall.SIGINT)
		if code := waitExit(t, cmd, 5*time.Second); code != 0 {
			t.Fatalf("exit %d, want 0 (a stop): %s", code, stderr.String())
		}
		// It polls every 100 ms; a hang-guard, with room for a busy machine.
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("hang-guard: took %v to stop while waiting for the device, want promptly", d)
		}
		if !strings.Contains(stderr.String(), "frames unsent") {
			t.Errorf("the summary does not count what was left unsent: %s", stderr.String())
		}
	})
}

func TestReconnectThroughRestartedSocat(t *testing.T) {
	socat := requireTool(t, "socat", "socat")
	dir := t.TempDir()
	a, b := filepath.Join(dir, "A"), filepath.Join(dir, "B")
	startPair := func() *exec.Cmd {
		cmd := exec.Command(socat, "pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			_, ea := os.Stat(a)
			_, eb := os.Stat(b)
			return ea == nil && eb == nil
		}, "socat links")
		return cmd
	}
	readB := func(stopAt int, stop <-chan struct{}) <-chan []byte {
		out := make(chan []byte, 1)
		far, err := openDevice(b)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer far.Close()
			var got []byte
			buf := make([]byte, 64<<10)
			for {
				far.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				n, err := far.Read(buf)
				got = append(got, buf[:n]...)
				if (stopAt > 0 && len(got) >= stopAt) || (err != nil && !errors.Is(err, os.ErrDeadlineExceeded)) {
					break
				}
				select {
				case <-stop:
					if n == 0 {
						out <- got
						return
					}
				default:
				}
			}
			out <- got
		}()
		return out
	}
	s1 := startPair()
	firstC := readB(7*10000, nil)
	const count = 100000
	send, stderr := start(t, "send", "--port", a, "--count", strconv.Itoa(count), "--rate", "40000", "--reconnect")
	first := <-firstC // frames flow: the line goes now
	s1.Process.Signal(syscall.SIGTERM)
	s1.Wait()
	waitLog(t, stderr, "device went away")
	s2 := startPair()
	defer func() { s2.Process.Kill(); s2.Wait() }()
	stop := make(chan struct{})
	secondC := readB(0, stop)
	code := waitExit(t, send, 30*time.Second)
	close(stop)
	second := <-secondC
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	first = first[:len(first)/7*7] // socat may have passed on part of a frame
	checkResumed(t, first, second, count)
}

func TestSecondSenderIsRefused(t *testing.T) {
	users := []struct {
		name string
		cred *syscall.Credential
	}{{"as this user", nil}}
	if os.Geteuid() == 0 {
		users = append(users, struct {
			name string
			cred *syscall.Credential
		}{"as an unprivileged user", &syscall.Credential{Uid: 65534, Gid: 65534}})
		os.Chmod(filepath.Dir(binary), 0o755)
	}
	for _, u := range users {
		t.Run(u.name, func(t *testing.T) {
			f := newFake(t, devicetest.Options{})
			if u.cred != nil {
				os.Chmod(f.Path(), 0o666)
			}
			first := command(t, "send", "--port", f.Path(), "--rate", "2000")
			first.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred}
			var ferr bytes.Buffer
			first.Stderr = &ferr
			first.Start()
			// The first holds the port once its frames arrive.
			head := readUntil(t, f, 7*500)
			stop := make(chan struct{})
			got := drain(f, stop, 300*time.Millisecond)
			second := command(t, "send", "--port", f.Path(), "--count", "100")
			second.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred}
			var serr bytes.Buffer
			second.Stderr = &serr
			second.Run()
			if code := second.ProcessState.ExitCode(); code != 1 {
				t.Errorf("second sender: exit %d, want 1: %s", code, serr.String())
			}
			want := fmt.Sprintf("port busy: %s is held by PID %d (framesend)", f.Path(), first.Process.Pid)
			if !strings.Contains(serr.String(), want) {
				t.Errorf("second sender said %q, want %q", serr.String(), want)
			}
			first.Process.Signal(syscall.SIGINT)
			if code := waitExit(t, first, 10*time.Second); code != 0 {
				t.Fatalf("first sender: exit %d: %s", code, ferr.String())
			}
			close(stop)
			// The first sender's stream is whole and unmixed: nothing of
			// the second reached the port.
			data := append(head, <-got...)
			if len(data) < 7*500 || !bytes.Equal(data, counterBytes(len(data))) || len(data)%7 != 0 {
				t.Errorf("first sender's stream: %d bytes, not a whole counter prefix", len(data))
			}
		})
	}
}

// --no-lock shares the port with a second process, also for a user other
// than root, whom go.bug.st/serial's TIOCEXCL alone would refuse.
func TestNoLockLetsASecondProcessIn(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// Root ignores TIOCEXCL: run both as an unprivileged user.
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		os.Chmod(f.Path(), 0o666)
		os.Chmod(filepath.Dir(binary), 0o755)
	}
	first := command(t, "send", "--port", f.Path(), "--rate", "1000", "--no-lock")
	first.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	// The first has the port once its frames arrive.
	readUntil(t, f, 7)
	stop := make(chan struct{})
	got := drain(f, stop, 300*time.Millisecond)
	second := command(t, "send", "--port", f.Path(), "--count", "10", "--no-lock")
	second.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var out bytes.Buffer
	second.Stderr = &out
	second.Start()
	code := waitExit(t, second, 10*time.Second)
	serr := out.String()
	first.Process.Signal(syscall.SIGINT)
	waitExit(t, first, 10*time.Second)
	close(stop)
	<-got
	if code != 0 {
		t.Errorf("--no-lock: second sender exit %d: %s", code, serr)
	}
}

// waitWriteBlocked waits until a thread of process pid waits in ppoll(2),
// which is where framesend's port write waits for the device to take more.
// (The counter source never polls, so for a send from it nothing else does.)
func waitWriteBlocked(t *testing.T, pid int) {
	t.Helper()
	ppoll := fmt.Sprint(unix.SYS_PPOLL)
	waitFor(t, func() bool {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", pid))
		for _, task := range tasks {
			if b, err := os.ReadFile(task); err == nil && strings.HasPrefix(string(b), ppoll+" ") {
				return true
			}
		}
		return false
	}, fmt.Sprintf("PID %d to wait for room on the port", pid))
}

func TestStalledDevice(t *testing.T) {
	t.Run("write timeout", func(t *testing.T) {
		f := newFake(t, devicetest.Options{}) // nobody reads: the buffer fills
		start := time.Now()
		code, _, stderr := framesend(t, nil, "send", "--port", f.Path(), "--write-timeout", "1s")
		if code != 1 {
			t.Fatalf("exit %d, want 1: %s", code, stderr)
		}
		for _, want := range []string{"the device stopped accepting data", "--write-timeout", f.Path(), "frames"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q: %s", want, stderr)
			}
		}
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("hang-guard: took %v to give up on a 1 s write timeout", d)
		}
	})
	t.Run("SIGINT during a stall", func(t *testing.T) {
		f := newFake(t, devicetest.Options{})
		cmd, stderr := start(t, "send", "--port", f.Path(), "--write-timeout", "0", "--drain-timeout", "1s")
		readUntil(t, f, 7) // it writes; nobody reads from now on
		// The stop must find it waiting on a full pty: the room the read
		// above made could otherwise still be filling during the stop.
		waitWriteBlocked(t, cmd.Process.Pid)
		start := time.Now()
		cmd.Process.Signal(syscall.SIGINT)
		code := waitExit(t, cmd, 10*time.Second)
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("hang-guard: stop during a stall took %v, want about the 1 s drain timeout", d)
		}
		if code != 1 || !strings.Contains(stderr.String(), "stopped accepting data during the stop") {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	})
	t.Run("a short stall loses nothing", func(t *testing.T) {
		f := newFake(t, devicetest.Options{})
		const count = 30000
		cmd, stderr := start(t, "send", "--port", f.Path(), "--count", strconv.Itoa(count), "--write-timeout", "5s")
		first := readUntil(t, f, 7000)
		time.Sleep(2 * time.Second) // the device stops reading for 2 s: the fault itself, not a wait
		stop := make(chan struct{})
		got := drain(f, stop, 300*time.Millisecond)
		if code := waitExit(t, cmd, 20*time.Second); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		close(stop)
		if data := append(first, <-got...); !bytes.Equal(data, counterBytes(7*count)) {
			t.Fatalf("got %d bytes, want the %d-byte counter stream unchanged", len(data), 7*count)
		}
	})
}

// TestSoak sends FRAMESEND_SOAK_FRAMES frames (3,000,000 by default; make
// soak sends 10,000,000) and checks every byte, peak memory and that the
// goroutine count stays put.
func TestSoak(t *testing.T) {
	frames := 3_000_000
	if s := os.Getenv("FRAMESEND_SOAK_FRAMES"); s != "" {
		frames, _ = strconv.Atoi(s)
	}
	f := newFake(t, devicetest.Options{})
	check := &pipeline.CounterCheck{}
	framer := pipeline.NewFramer(7)
	done := make(chan int64, 1)
	go func() {
		buf := make([]byte, 64<<10)
		var total int64
		f.SetReadDeadline(time.Now().Add(10 * time.Minute))
		for total < int64(frames)*7 {
			n, err := f.Read(buf)
			total += int64(n)
			framer.Feed(buf[:n], func(fr []byte) { check.Check(fr) })
			if err != nil {
				break
			}
		}
		done <- total
	}()
	withoutRace(t, "peak memory is the product's, not the race detector's shadow memory")
	cmd := command(t, "send", "--port", f.Path(), "--count", strconv.Itoa(frames), "--rate", "0", "--stats-interval", "20ms", "--log-format", "json", "--summary", "json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	if total := <-done; total != int64(frames)*7 || !check.OK() || check.Frames != int64(frames) {
		t.Fatalf("far end: %d bytes, %v", total, check)
	}
	// The process's own high-water mark: the rusage of a child also counts
	// the parent's memory at the fork.
	var summary struct {
		PeakRSS int64 `json:"peak_rss_kib"`
	}
	out := strings.TrimSpace(stderr.String())
	if err := jsonUnmarshal(out[strings.LastIndex(out, "\n")+1:], &summary); err != nil || summary.PeakRSS == 0 {
		t.Fatalf("no peak RSS in the summary (%v): %s", err, out[strings.LastIndex(out, "\n")+1:])
	}
	rss := summary.PeakRSS
	t.Logf("%d frames: peak RSS %d KiB", frames, rss)
	if rss > 32<<10 {
		t.Errorf("peak RSS %d KiB, want under 32 MiB", rss)
	}
	// The count may drop by one near the end, when the source has given
	// its last frame and the packager exits; it must never grow.
	var counts []int
	for _, l := range strings.Split(stderr.String(), "\n") {
		var v struct{ Goroutines *int }
		if strings.Contains(l, `"msg":"progress"`) && jsonUnmarshal(l, &v) == nil && v.Goroutines != nil {
			counts = append(counts, *v.Goroutines)
		}
	}
	if len(counts) < 2 {
		t.Fatalf("%d progress lines with a goroutine count: too few to compare", len(counts))
	}
	for i, n := range counts {
		if n > counts[0] {
			t.Fatalf("goroutines grew from %d to %d at progress line %d: %v", counts[0], n, i, counts)
		}
	}
}

func TestSecondSignalQuitsAtOnce(t *testing.T) {
	f := newFake(t, devicetest.Options{}) // nobody reads: the stop has to wait
	cmd, stderr := start(t, "send", "--port", f.Path(), "--write-timeout", "0", "--drain-timeout", "30s")
	readUntil(t, f, 7) // it writes; nobody reads from now on
	cmd.Process.Signal(syscall.SIGINT)
	// Two SIGINTs sent at once may reach it as one: the kernel merges a
	// signal with one still pending, and Go's runtime merges it with one
	// it has not yet passed to signal.Notify's channel. The first wait is
	// for the kernel; no outside sign shows the runtime's, so a sleep
	// stands for it (it fails as a hang, never as a false pass).
	waitSignalTaken(t, cmd.Process.Pid, syscall.SIGINT)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	if code := waitExit(t, cmd, 5*time.Second); code != 130 {
		t.Errorf("exit %d after a second SIGINT, want 130: %s", code, stderr.String())
	}
	if d := time.Since(start); d > 4*time.Second { // a hang-guard; the drain timeout is 30 s
		t.Errorf("hang-guard: took %v to quit after the second SIGINT", d)
	}
	if !strings.Contains(stderr.String(), "interrupted again") {
		t.Errorf("stderr: %s", stderr.String())
	}
}
