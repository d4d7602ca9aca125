package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framesend/framesend/device/devicetest"
	"github.com/framesend/framesend/internal/testenv"
	"github.com/framesend/framesend/pipeline"
)

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(7, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// sendTo runs framesend send on a fresh fake with args and returns the exit
// code, stderr, and every byte the far end got.
func sendTo(t *testing.T, stdin io.Reader, args ...string) (int, string, []byte) {
	t.Helper()
	f := newFake(t, devicetest.Options{})
	stop := make(chan struct{})
	got := drain(f, stop, 200*time.Millisecond)
	cmd := command(t, append([]string{"send", "--port", f.Path()}, args...)...)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Run()
	close(stop)
	return cmd.ProcessState.ExitCode(), stderr.String(), <-got
}

func TestFileSourcePartialPolicies(t *testing.T) {
	data := randomBytes(1000) // 142 frames of 7 and 6 bytes over
	path := filepath.Join(t.TempDir(), "capture.bin")
	os.WriteFile(path, data, 0o644)
	padded := append(append([]byte(nil), data...), 0xa5)
	cases := []struct {
		partial string
		code    int
		want    []byte
		summary string
	}{
		{"pad", 0, padded, "143 frames, 1001 bytes"},
		{"drop", 0, data[:994], "1 short frame dropped"},
		{"error", 1, data[:994], "short frame: the data ended 6 bytes into a 7-byte frame"},
	}
	for _, c := range cases {
		t.Run(c.partial, func(t *testing.T) {
			args := []string{"--source", "file:" + path, "--partial", c.partial}
			if c.partial == "pad" {
				args = append(args, "--pad", "0xa5")
			}
			code, stderr, got := sendTo(t, nil, args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d: %s", code, c.code, stderr)
			}
			if !bytes.Equal(got, c.want) {
				t.Errorf("far end got %d bytes, want %d (first difference at %d)", len(got), len(c.want), firstDiff(got, c.want))
			}
			if !strings.Contains(stderr, c.summary) {
				t.Errorf("stderr %q lacks %q", stderr, c.summary)
			}
		})
	}
}

func TestStdinSource(t *testing.T) {
	data := randomBytes(7 * 20000)
	code, stderr, got := sendTo(t, bytes.NewReader(data), "--source", "stdin")
	if code != 0 || !bytes.Equal(got, data) {
		t.Fatalf("exit %d, far end got %d of %d bytes (first difference at %d): %s", code, len(got), len(data), firstDiff(got, data), stderr)
	}
}

func TestStdinSourceStopsOnSignal(t *testing.T) {
	// A pipe that stays open: a stop must not wait for its end.
	f := newFake(t, devicetest.Options{})
	pr, pw, _ := os.Pipe()
	defer pw.Close()
	cmd := command(t, "send", "--port", f.Path(), "--source", "stdin")
	cmd.Stdin = pr
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Start()
	pr.Close()
	pw.Write(counterBytes(7 * 10))
	head := readUntil(t, f, 70)
	stop := make(chan struct{})
	got := drain(f, stop, 200*time.Millisecond) // anything more is wrong
	cmd.Process.Signal(syscall.SIGINT)
	if code := waitExit(t, cmd, 5*time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	close(stop)
	if data := append(head, <-got...); !bytes.Equal(data, counterBytes(70)) {
		t.Errorf("far end got % x, want the 70 bytes written", data)
	}
}

const hexText = `# frames for the bench PSU
0x01 0x02 0x03 0x04 0x05 0x06 0x07
08 09 0a 0B   0C 0d 0E   # mixed case, extra spaces

0xff 00
`

func TestHexSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "frames.hex")
	os.WriteFile(path, []byte(hexText), 0o644)
	all := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xff, 0}
	stream := append(append([]byte(nil), all...), 0, 0, 0, 0, 0)
	code, stderr, got := sendTo(t, nil, "--source", "hex:"+path)
	if code != 0 || !bytes.Equal(got, stream) {
		t.Errorf("stream: exit %d, got % x, want % x: %s", code, got, stream, stderr)
	}
	code, stderr, got = sendTo(t, nil, "--source", "hex:"+path, "--align", "datagram", "--pad", "0xee")
	want := append(append([]byte(nil), all[:14]...), 0xff, 0, 0xee, 0xee, 0xee, 0xee, 0xee)
	if code != 0 || !bytes.Equal(got, want) {
		t.Errorf("datagram: exit %d, got % x, want % x: %s", code, got, want, stderr)
	}
	code, stderr, got = sendTo(t, strings.NewReader(hexText), "--source", "hex:-")
	if code != 0 || !bytes.Equal(got, stream) {
		t.Errorf("stdin: exit %d, got % x, want % x: %s", code, got, stream, stderr)
	}
}

func TestHexErrorsNameLineAndColumn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.hex")
	os.WriteFile(path, []byte("01 02\n# fine\n03 0x4g 05\n"), 0o644)
	code, stderr, got := sendTo(t, nil, "--source", "hex:"+path)
	if code != 2 {
		t.Fatalf("exit %d, want 2: %s", code, stderr)
	}
	if want := path + `:3:4: bad hex byte "0x4g"`; !strings.Contains(stderr, want) {
		t.Errorf("stderr %q lacks %q", stderr, want)
	}
	if len(got) != 0 {
		t.Errorf("%d bytes were sent from a file with a bad token; want none", len(got))
	}
	code, stderr, _ = sendTo(t, strings.NewReader("01 02 03 04 05 06 07\nzz\n"), "--source", "hex:-")
	if code != 2 || !strings.Contains(stderr, `stdin:2:1: bad hex byte "zz"`) {
		t.Errorf("stdin: exit %d, stderr %q", code, stderr)
	}
}

func TestSourceBadInput(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.bin")
	os.WriteFile(secret, []byte{1, 2, 3}, 0o600)
	busy, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--source", "file:" + filepath.Join(dir, "missing.bin")}, 1, "missing.bin: no such file"},
		{[]string{"--source", "file:" + dir}, 1, "is a directory"},
		{[]string{"--source", "ftp:x"}, 2, `--source "ftp:x" is not a source`},
		{[]string{"--source", "file:"}, 2, "needs a path"},
		{[]string{"--source", "udp:"}, 2, "needs a port"},
		{[]string{"--source", "udp:70000"}, 2, `"70000" is not a port`},
		{[]string{"--source", "udp:300.1.2.3:9000"}, 2, "is not an address"},
		{[]string{"--source", fmt.Sprintf("udp:%d", busy.LocalAddr().(*net.UDPAddr).Port)}, 1, "address already in use"},
		{[]string{"--source", "udp:9000", "--allow-from", "10.0.0.0/33"}, 2, "--allow-from"},
		{[]string{"--source", "stdin", "--align", "datagram"}, 2, "--align datagram needs a source with datagrams"},
		{[]string{"--source", "stdin", "--overflow", "drop-oldest"}, 2, "--overflow drop-oldest needs a source with datagrams"},
		{[]string{"--partial", "maybe"}, 2, `--partial "maybe"`},
		{[]string{"--align", "sideways"}, 2, `--align "sideways"`},
		{[]string{"--pad", "256"}, 2, `--pad "256"`},
		{[]string{"--stats-interval", "-1s"}, 2, "--stats-interval -1s"},
		{[]string{"--queue", "lots"}, 2, `--queue "lots" is not a size or a number of frames: use a size with its unit, such as 4MiB`},
		{[]string{"--queue", "4XB"}, 2, `--queue "4XB" is not a size`},
		{[]string{"--queue", "0"}, 2, "--queue 0 leaves no room: use at least one frame"},
		{[]string{"--queue", "2GiB"}, 2, "too large: use at most 1GiB"},
		{[]string{"--queue", "99999999999999999999"}, 2, "too large"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, stderr, got := sendTo(t, nil, c.args...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, c.code, c.want)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("error is not one line: %q", stderr)
			}
			if len(got) != 0 {
				t.Errorf("%d bytes reached the port", len(got))
			}
		})
	}
	t.Run("unreadable file", func(t *testing.T) {
		f := newFake(t, devicetest.Options{})
		cmd := command(t, "send", "--port", f.Path(), "--source", "file:"+secret)
		if os.Geteuid() == 0 {
			os.Chmod(f.Path(), 0o666)
			os.Chmod(dir, 0o755)
			os.Chmod(filepath.Dir(binary), 0o755)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		} else {
			os.Chmod(secret, 0)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "secret.bin: permission denied") {
			t.Errorf("exit %d, stderr %q; want 1 and permission denied", code, stderr.String())
		}
	})
}

// udpSend starts framesend with a UDP source on a free loopback port and
// returns it with the address it listens on.
func udpSend(t *testing.T, port string, args ...string) (*logged, *net.UDPAddr) {
	t.Helper()
	run, m := sendLogged(t, `listening for datagrams"? addr=(\S+)`, append([]string{"--port", port, "--source", "udp:127.0.0.1:0"}, args...)...)
	ua, err := net.ResolveUDPAddr("udp", m[1])
	if err != nil {
		t.Fatal(err)
	}
	return run, ua
}

// waitUDPRead waits until the UDP socket bound to port has nothing left
// unread: framesend has taken every datagram the kernel queued for it
// (or the kernel dropped it, which framesend counts). After burst, which
// returns once the kernel has queued every datagram, this is the moment
// framesend has seen all of them.
func waitUDPRead(t *testing.T, port int) {
	t.Helper()
	waitFor(t, func() bool {
		found, unread := udpUnread(port)
		return found && unread == 0
	}, fmt.Sprintf("framesend to read every datagram queued on port %d", port))
}

// udpUnread reports whether a UDP socket is bound to port and the bytes
// waiting in its receive queue (rx_queue in /proc/net/udp and udp6).
func udpUnread(port int) (found bool, unread int64) {
	for _, table := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, _ := os.ReadFile(table)
		for _, l := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(l)
			if len(f) < 5 {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if p, err := strconv.ParseInt(hexPort, 16, 32); err != nil || int(p) != port {
				continue
			}
			_, rx, _ := strings.Cut(f[4], ":")
			n, _ := strconv.ParseInt(rx, 16, 64)
			found, unread = true, unread+n
		}
	}
	return found, unread
}

func TestUDPSourceTenThousandDatagrams(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	stop := make(chan struct{})
	got := drain(f, stop, 200*time.Millisecond)
	run, addr := udpSend(t, f.Path(), "--count", "10000", "--overflow", "block")
	conn, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	want := make([]byte, 0, 70000)
	for k := range 10000 {
		d := []byte{byte(k), byte(k >> 8), 0xd0, 0xd1, 0xd2, 0xd3, byte(k % 251)}
		want = append(want, d...)
		conn.Write(d)
		if k%100 == 99 {
			time.Sleep(time.Millisecond) // within what the socket buffer holds
		}
	}
	if code := run.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, run.stderr.String())
	}
	close(stop)
	if data := <-got; !bytes.Equal(data, want) {
		t.Fatalf("far end got %d bytes, want %d (first difference at %d)", len(data), len(want), firstDiff(data, want))
	}
	if !strings.Contains(run.stderr.String(), "10000 frames, 70000 bytes") || !strings.Contains(run.stderr.String(), "10000 datagrams in") {
		t.Errorf("summary: %s", run.stderr.String())
	}
}

func TestUDPAlignsDatagramsAndFiltersSenders(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	stop := make(chan struct{})
	seen := &lockedBuffer{}
	got := drainInto(f, stop, 200*time.Millisecond, seen)
	run, addr := udpSend(t, f.Path(), "--frame-size", "4", "--allow-from", "127.0.0.0/8")
	conn, _ := net.DialUDP("udp", nil, addr)
	defer conn.Close()
	conn.Write([]byte{1, 2, 3})
	conn.Write([]byte{4, 5, 6, 7, 8})
	// Three frames; more, or other bytes, show once it has stopped.
	waitFor(t, func() bool { return seen.Len() >= 12 }, "12 bytes at the device")
	run.cmd.Process.Signal(syscall.SIGINT)
	if code := run.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, run.stderr.String())
	}
	close(stop)
	if data, want := <-got, []byte{1, 2, 3, 0, 4, 5, 6, 7, 8, 0, 0, 0}; !bytes.Equal(data, want) {
		t.Errorf("far end got % x, want % x (each datagram on its own frames)", data, want)
	}

	// Senders outside --allow-from are refused and counted; one inside it
	// (127.0.0.2) gets through. Its datagram, sent last, reaches the
	// device after framesend has dealt with the five before it.
	f2 := newFake(t, devicetest.Options{})
	stop2 := make(chan struct{})
	seen2 := &lockedBuffer{}
	got2 := drainInto(f2, stop2, 200*time.Millisecond, seen2)
	run, addr = udpSend(t, f2.Path(), "--allow-from", "10.0.0.0/8,192.168.1.7,127.0.0.2")
	conn2, _ := net.DialUDP("udp", nil, addr)
	defer conn2.Close()
	for range 5 {
		conn2.Write([]byte{1, 2, 3, 4, 5, 6, 7})
	}
	allowed, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer allowed.Close()
	allowed.Write([]byte{9, 9, 9, 9, 9, 9, 9})
	waitFor(t, func() bool { return seen2.Len() >= 7 }, "the allowed sender's datagram at the device")
	run.cmd.Process.Signal(syscall.SIGINT)
	if code := run.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, run.stderr.String())
	}
	close(stop2)
	if data, want := <-got2, []byte{9, 9, 9, 9, 9, 9, 9}; !bytes.Equal(data, want) {
		t.Errorf("far end got % x, want only the allowed sender's % x", data, want)
	}
	if !strings.Contains(run.stderr.String(), "sent 1 frame,") || !strings.Contains(run.stderr.String(), "5 datagrams refused") {
		t.Errorf("summary: %s", run.stderr.String())
	}
}

func TestUDPListensOnLoopbackByDefault(t *testing.T) {
	busy, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	port := busy.LocalAddr().(*net.UDPAddr).Port
	busy.Close()
	f := newFake(t, devicetest.Options{})
	cmd := command(t, "send", "--port", f.Path(), "--source", fmt.Sprintf("udp:%d", port))
	out := &lockedBuffer{}
	cmd.Stderr = out
	cmd.Start()
	waitFor(t, func() bool { return strings.Contains(out.String(), "listening") }, "framesend to listen")
	cmd.Process.Signal(syscall.SIGINT)
	waitExit(t, cmd, 5*time.Second)
	if !strings.Contains(out.String(), fmt.Sprintf("addr=127.0.0.1:%d", port)) {
		t.Errorf("udp:%d did not bind to 127.0.0.1 only: %s", port, out.String())
	}
	cmd = command(t, "send", "--port", f.Path(), "--source", "udp:0.0.0.0:0")
	out = &lockedBuffer{}
	cmd.Stderr = out
	cmd.Start()
	waitFor(t, func() bool { return strings.Contains(out.String(), "listening for datagrams") }, "framesend to listen")
	cmd.Process.Signal(syscall.SIGINT)
	waitExit(t, cmd, 5*time.Second)
	if !strings.Contains(out.String(), "level=WARN") || !strings.Contains(out.String(), "every interface") {
		t.Errorf("binding every interface gave no warning: %s", out.String())
	}
}

// burst sends n seven-byte datagrams, numbered, as fast as the socket takes
// them, and returns once the kernel has delivered every one to the
// receiving socket's queue (or dropped it there). On loopback a datagram
// goes through the sending CPU's backlog, which a busy machine may leave
// to ksoftirqd after the write has returned. So the burst goes from one
// thread kept on one CPU, and ends with a datagram to a socket of the
// test's own: once it has arrived, the backlog before it is done.
func burst(t *testing.T, addr *net.UDPAddr, n int) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var was, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &was); err != nil {
		t.Fatal(err)
	}
	for cpu := range 1024 {
		if was.IsSet(cpu) {
			one.Set(cpu)
			break
		}
	}
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &was)
	conn, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	for k := range n {
		if _, err := conn.Write(numbered(k)); err != nil {
			t.Fatalf("datagram %d: %v", k, err)
		}
	}
	t.Logf("sent %d datagrams in %v (%.0f/s)", n, time.Since(start).Round(time.Millisecond), float64(n)/time.Since(start).Seconds())
	mark, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer mark.Close()
	end, err := net.DialUDP("udp", nil, mark.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer end.Close()
	end.Write([]byte("end"))
	mark.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := mark.ReadFrom(make([]byte, 8)); err != nil {
		t.Fatalf("the burst's end marker: %v", err)
	}
}

// udpSummary is the part of the JSON summary the burst tests check.
type udpSummary struct {
	Frames, Datagrams, Dropped, Unsent, Refused int64
	KernelDropped                               int64 `json:"kernel_dropped"`
	QueueHigh                                   int64 `json:"queue_high_bytes"`
}

func lastSummary(t *testing.T, stderr string) udpSummary {
	t.Helper()
	var st udpSummary
	line := stderr[strings.LastIndex(strings.TrimSpace(stderr), "\n")+1:]
	if err := jsonUnmarshal(line, &st); err != nil {
		t.Fatalf("summary %q: %v", line, err)
	}
	return st
}

// The burst a new user tried first: 20,000 seven-byte datagrams from a fast
// sender on loopback, default flags. Every one arrives, in order.
func TestUDPBurstArrivesWhole(t *testing.T) {
	withoutRace(t, "a burst of 150,000 datagrams/s must be read before the socket buffer fills; the race detector slows the reader enough to lose some on a busy machine")
	const n = 20000
	for run := range 3 {
		f := newFake(t, devicetest.Options{})
		stop := make(chan struct{})
		seen := &lockedBuffer{}
		got := drainInto(f, stop, 200*time.Millisecond, seen)
		fs, addr := udpSend(t, f.Path(), "--summary", "json")
		burst(t, addr, n)
		// Stops once the whole burst is at the device, or once it has
		// stopped coming: what is missing then shows below.
		waitGrowth(seen, 7*n, time.Second)
		fs.cmd.Process.Signal(syscall.SIGINT)
		code := fs.wait(t, 20*time.Second)
		close(stop)
		data := <-got
		if code != 0 {
			t.Fatalf("run %d: exit %d after %d of %d frames arrived: %s", run, code, len(data)/7, n, fs.stderr.String())
		}
		st := lastSummary(t, fs.stderr.String())
		if ks := frames(t, data); len(ks) != n || st.Datagrams != n || st.Dropped != 0 || st.KernelDropped != 0 {
			t.Fatalf("run %d: %d of %d arrived; datagrams in %d, dropped by the queue %d, dropped by the kernel %d (receive buffer full: framesend did not run for a while)",
				run, len(ks), n, st.Datagrams, st.Dropped, st.KernelDropped)
		} else {
			inOrder(t, ks, n)
		}
	}
}

// The same burst into a device that reads nothing until the burst is over:
// well inside the default queue, so nothing is lost either.
func TestUDPBurstIntoStalledDevice(t *testing.T) {
	withoutRace(t, "a burst of 150,000 datagrams/s must be read before the socket buffer fills; the race detector slows the reader enough to lose some on a busy machine")
	const n = 20000
	f := newFake(t, devicetest.Options{})
	run, addr := udpSend(t, f.Path(), "--count", fmt.Sprint(n), "--summary", "json")
	burst(t, addr, n)
	waitUDPRead(t, addr.Port) // the burst is all on framesend's queue
	// Now the device reads again, at full speed.
	stop := make(chan struct{})
	got := drain(f, stop, 200*time.Millisecond)
	code := run.wait(t, 20*time.Second)
	close(stop)
	data := <-got
	if code != 0 {
		t.Fatalf("exit %d after %d of %d frames arrived: %s", code, len(data)/7, n, run.stderr.String())
	}
	st := lastSummary(t, run.stderr.String())
	ks := frames(t, data)
	if len(ks) != n || st.Dropped != 0 || st.KernelDropped != 0 {
		t.Fatalf("%d of %d arrived; dropped %d, kernel dropped %d", len(ks), n, st.Dropped, st.KernelDropped)
	}
	inOrder(t, ks, n)
	if st.QueueHigh < 100_000 {
		t.Errorf("queue high-water %d bytes: the stalled device should have held most of the 140,000 bytes on the queue", st.QueueHigh)
	}
}

// A burst larger than the queue into a stalled device: datagrams are
// dropped, and every one is accounted for, including any the kernel drops
// before framesend reads them.
func TestUDPOverflowIsCountedExactly(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	run, addr := udpSend(t, f.Path(), "--queue", "1000", "--drain-timeout", "2s", "--summary", "json")
	const n = 20000
	burst(t, addr, n)
	waitUDPRead(t, addr.Port) // every datagram taken in (or dropped) before the stop
	run.cmd.Process.Signal(syscall.SIGINT)
	// Now the device reads again, at full speed.
	stop := make(chan struct{})
	got := drain(f, stop, 300*time.Millisecond)
	if code := run.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, run.stderr.String())
	}
	close(stop)
	data := <-got
	st := lastSummary(t, run.stderr.String())
	if len(data)%7 != 0 || int64(len(data)/7) != st.Frames {
		t.Fatalf("far end got %d bytes, summary says %d frames: a frame was split or lost", len(data), st.Frames)
	}
	if st.Dropped == 0 || st.Frames+st.Dropped+st.Unsent != st.Datagrams || st.Datagrams+st.KernelDropped != n {
		t.Errorf("sent %d + dropped %d + unsent %d (of %d in) + kernel dropped %d != %d sent: drops not counted exactly",
			st.Frames, st.Dropped, st.Unsent, st.Datagrams, st.KernelDropped, n)
	}
	if st.QueueHigh > 7000 {
		t.Errorf("queue high-water %d bytes, over the 1000 frames of 7 bytes asked for", st.QueueHigh)
	}
	if !strings.Contains(run.stderr.String(), "queue full: dropping datagrams") {
		t.Errorf("no drop warning in the log: %s", run.stderr.String())
	}
}

// sendOnTerminal runs the binary's send with args to a fresh fake, with its
// stderr on another fake standing in for a terminal, and returns what the
// terminal showed.
func sendOnTerminal(t *testing.T, args ...string) string {
	t.Helper()
	f := newFake(t, devicetest.Options{})
	stop := make(chan struct{})
	got := drain(f, stop, 200*time.Millisecond)
	term := newFake(t, devicetest.Options{}) // a terminal for stderr
	tty, err := openDevice(term.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	screen := drain(term, stop, 200*time.Millisecond)
	cmd := command(t, append([]string{"send", "--port", f.Path()}, args...)...)
	cmd.Stderr = tty
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-got
	return string(<-screen)
}

func TestProgressBarOnlyOnATerminal(t *testing.T) {
	out := sendOnTerminal(t, "--count", "600", "--rate", "2000")
	for _, want := range []string{"sending", "%", "frames/s", "/600"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal shows no progress bar (%q missing): %q", want, out)
		}
	}
	// The same run with stderr not a terminal, and on a terminal with
	// --no-progress: the summary only.
	for _, args := range [][]string{{}, {"--no-progress"}} {
		var stderr bytes.Buffer
		f2 := newFake(t, devicetest.Options{})
		cmd := command(t, append([]string{"send", "--port", f2.Path(), "--count", "300", "--rate", "2000"}, args...)...)
		cmd.Stderr = &stderr
		if len(args) > 0 {
			term2 := newFake(t, devicetest.Options{})
			tty2, err := openDevice(term2.Path())
			if err != nil {
				t.Fatal(err)
			}
			defer tty2.Close()
			stop2 := make(chan struct{})
			screen2 := drain(term2, stop2, 100*time.Millisecond)
			cmd.Stderr = tty2
			err = cmd.Run()
			close(stop2)
			stderr.Write(<-screen2)
			if err != nil {
				t.Errorf("%v: %v: %s", args, err, stderr.String())
			}
		} else if err := cmd.Run(); err != nil {
			t.Errorf("%v: %v: %s", args, err, stderr.String())
		}
		if s := stderr.String(); strings.Contains(s, "sending") || !strings.Contains(s, "300 frames") {
			t.Errorf("%v: want the summary without a progress bar, got %q", args, s)
		}
	}
}

func TestStatsInterval(t *testing.T) {
	code, stderr, _ := sendTo(t, nil, "--count", "1500", "--rate", "3000", "--stats-interval", "100ms", "--log-format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := 0
	for _, l := range strings.Split(stderr, "\n") {
		if !strings.Contains(l, `"msg":"progress"`) {
			continue
		}
		lines++
		var v struct {
			Frames, Dropped *int64
			Queue           *int64 `json:"queue_bytes"`
			KernelDropped   *int64 `json:"kernel_dropped"`
			Rate            *int64 `json:"frames_per_second"`
		}
		if err := jsonUnmarshal(l, &v); err != nil || v.Frames == nil || v.Queue == nil || v.Dropped == nil || v.Rate == nil || v.KernelDropped == nil {
			t.Errorf("progress line %q lacks frames, frames_per_second, queue_bytes, dropped or kernel_dropped (%v)", l, err)
		}
	}
	if lines < 2 {
		t.Errorf("%d progress lines in 0.5 s at a 100 ms interval, want several: %s", lines, stderr)
	}
}

func TestParseQueue(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"1MiB", 1 << 20}, {"4MiB", 4 << 20}, {"512KiB", 512 << 10}, {"512k", 512 << 10}, {"65536B", 65536},
		{"1MB", 1000_000}, {"10 KB", 10_000}, {"1GiB", 1 << 30}, {"10000", 70000}, {"1", 7},
	}
	for _, c := range cases {
		if got, err := parseQueue(c.in, 7); err != nil || got != c.want {
			t.Errorf("parseQueue(%q) = %d, %v; want %d bytes", c.in, got, err, c.want)
		}
	}
}

// udp:0.0.0.0:PORT takes IPv4 only; udp:[::]:PORT takes both.
func TestUDPBindsOnlyTheFamilyNamed(t *testing.T) {
	if c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
		testenv.Impossible(t, fmt.Sprintf("no IPv6 loopback (the kernel or container has IPv6 off): %v", err))
	} else {
		c.Close()
	}
	for _, c := range []struct {
		spec string
		want []string // senders whose datagram arrives
	}{
		{"udp:0.0.0.0:0", []string{"127.0.0.1"}},
		{"udp:[::]:0", []string{"127.0.0.1", "::1"}},
	} {
		t.Run(c.spec, func(t *testing.T) {
			f := newFake(t, devicetest.Options{})
			stop := make(chan struct{})
			seen := &lockedBuffer{}
			got := drainInto(f, stop, 200*time.Millisecond, seen)
			run, m := sendLogged(t, `listening for datagrams"? addr=(\S+)`, "--port", f.Path(), "--source", c.spec, "--frame-size", "10")
			ap, err := netip.ParseAddrPort(m[1])
			if err != nil {
				t.Fatal(err)
			}
			// ::1 first: a datagram the bind must not take has no event
			// of its own, but had it been taken it would reach the device
			// before 127.0.0.1's, sent after it on the same socket's
			// queue. So waiting for the last wanted one covers it.
			for _, from := range []string{"::1", "127.0.0.1"} {
				conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(from), ap.Port())))
				if err != nil {
					t.Fatal(err)
				}
				conn.Write([]byte(from))
				conn.Close()
			}
			waitFor(t, func() bool { return bytes.Contains(seen.Bytes(), []byte("127.0.0.1")) }, "127.0.0.1's datagram at the device")
			run.cmd.Process.Signal(syscall.SIGINT)
			if code := run.wait(t, 10*time.Second); code != 0 {
				t.Fatalf("exit %d: %s", code, run.stderr.String())
			}
			close(stop)
			var arrived []string
			for _, fr := range bytes.Split(<-got, []byte{0}) {
				if len(fr) > 0 {
					arrived = append(arrived, string(fr))
				}
			}
			slices.Sort(arrived)
			if !slices.Equal(arrived, c.want) {
				t.Errorf("bound %s (%s): datagrams arrived from %q, want from %q", c.spec, m[1], arrived, c.want)
			}
		})
	}
}

// TestHexLongLinesAndBOM: a comment of any length is fine; a line of more
// than one datagram is exit 2 with its line number and the limit; a UTF-8
// byte-order mark at the start is skipped and named elsewhere.
func TestHexLongLinesAndBOM(t *testing.T) {
	dir := t.TempDir()
	long := "# " + strings.Repeat("x", 1<<20) + "\n" // a 1 MiB comment
	over := strings.Repeat("ab ", pipeline.MaxDatagram+1)
	huge := strings.Repeat("0xab ", 100000) // 500 KB of data on one line
	cases := []struct {
		name, text string
		code       int
		want       string // in stderr
		sent       int    // bytes, when it works
	}{
		{"long comment", "01 02 03 04 05 06 07\n" + long + "08 09 0a 0b 0c 0d 0e # " + strings.Repeat("y", 400000) + "\n", 0, "", 14},
		{"datagram too long", "01\n" + over + "\n", 2, fmt.Sprintf(":2: the line holds %d bytes or more: a line is one datagram, at most %d bytes", pipeline.MaxDatagram+1, pipeline.MaxDatagram), 0},
		{"line too long", "01\n02\n" + huge + "\n", 2, fmt.Sprintf("bytes or more: a line is one datagram, at most %d bytes", pipeline.MaxDatagram), 0},
		{"bom at start", "\xef\xbb\xbf01 02 03 04 05 06 07\n", 0, "", 7},
		{"bom later", "01 02 03 04 05 06 07\n\xef\xbb\xbf08\n", 2, ":2:1: a UTF-8 byte-order mark (EF BB BF)", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".hex")
			os.WriteFile(path, []byte(c.text), 0o644)
			for _, src := range []string{"hex:" + path, "hex:-"} {
				var stdin io.Reader
				if src == "hex:-" {
					stdin = strings.NewReader(c.text)
				}
				code, stderr, got := sendTo(t, stdin, "--source", src)
				if code != c.code || !strings.Contains(stderr, c.want) {
					t.Errorf("%s: exit %d, stderr %q: want %d and %q", src, code, stderr, c.code, c.want)
				}
				if c.code == 0 && len(got) != c.sent {
					t.Errorf("%s: sent %d bytes, want %d", src, len(got), c.sent)
				}
				if strings.Contains(stderr, "token too long") {
					t.Errorf("%s: the scanner's error: %s", src, stderr)
				}
			}
		})
	}
}

// The receive buffer the kernel granted is logged at start, next to the
// cap it applies to a process without CAP_NET_ADMIN, and it is the truth:
// the buffer read back, not the size asked for.
func TestUDPLogsTheReceiveBufferGranted(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		testenv.Impossible(t, fmt.Sprintf("no /proc/sys/net/core/rmem_max: %v", err))
	}
	rmemMax, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	f := newFake(t, devicetest.Options{})
	os.Chmod(f.Path(), 0o666)
	os.Chmod(filepath.Dir(binary), 0o755)
	cmd := command(t, "send", "--port", f.Path(), "--source", "udp:127.0.0.1:0")
	if os.Geteuid() == 0 {
		// As a user without CAP_NET_ADMIN, as under the systemd unit.
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	out := &lockedBuffer{}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, func() bool { return strings.Contains(out.String(), "listening for datagrams") }, "framesend to listen")
	cmd.Process.Signal(syscall.SIGINT)
	waitExit(t, cmd, 5*time.Second)
	m := regexp.MustCompile(`receive_buffer=(\d+) rmem_max=(\d+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no receive_buffer and rmem_max in the start log: %s", out.String())
	}
	granted, _ := strconv.Atoi(m[1])
	if logged, _ := strconv.Atoi(m[2]); logged != rmemMax {
		t.Errorf("logged rmem_max=%d, /proc says %d", logged, rmemMax)
	}
	// The kernel grants min(asked, rmem_max) and reports it doubled.
	if want := 2 * min(4<<20, rmemMax); granted != want {
		t.Errorf("receive_buffer=%d, want %d: twice the smaller of 4 MiB and rmem_max %d", granted, want, rmemMax)
	}
	if capped := rmemMax < 4<<20; capped != strings.Contains(out.String(), "net.core.rmem_max=4194304") {
		t.Errorf("rmem_max %d: a warning naming the sysctl is wanted exactly when it caps the buffer: %s", rmemMax, out.String())
	}
}

// TestProgressLinesDoNotRunIntoTheBar: with the progress bar on a terminal
// and --stats-interval, each progress line starts a line of its own.
func TestProgressLinesDoNotRunIntoTheBar(t *testing.T) {
	out := sendOnTerminal(t, "--count", "3000", "--rate", "2000", "--stats-interval", "200ms")
	if !strings.Contains(out, "sending") {
		t.Fatalf("no progress bar: %q", out)
	}
	n := 0
	for i := 0; ; n++ {
		j := strings.Index(out[i:], "msg=progress")
		if j < 0 {
			break
		}
		at := i + j
		lineStart := max(strings.LastIndexAny(out[:at], "\r\n")+1, 0)
		if seg := out[lineStart:at]; !strings.HasPrefix(seg, "time=") {
			t.Errorf("progress line %d shares its line with %q", n, seg)
		}
		i = at + 1
	}
	if n < 2 {
		t.Errorf("%d progress lines, want one every 200ms for 1.5 s", n)
	}
}
