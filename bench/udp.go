package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/framesend/framesend/device/ptyfake"
)

// udpSender is the one sender every UDP receiver is measured with, run as
// its own process: n numbered seven-byte datagrams to addr, at rate per
// second (0: as fast as the socket takes them, one send(2) each).
func udpSender(addr string, n int, rate float64) error {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return err
	}
	conn, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return err
	}
	defer conn.Close()
	start := time.Now()
	for k := 0; k < n; {
		due := n
		if rate > 0 {
			due = min(n, int(time.Since(start).Seconds()*rate)+1)
		}
		for ; k < due; k++ {
			if _, err := conn.Write(numbered(k)); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
				return err
			}
		}
		if k < n {
			time.Sleep(100 * time.Microsecond)
		}
	}
	return nil
}

// numbered is datagram k: k in four bytes, then a fixed tail.
func numbered(k int) []byte {
	m := []byte{0, 0, 0, 0, 0xa5, 0x5a, 0xee}
	binary.BigEndian.PutUint32(m, uint32(k))
	return m
}

// farEnd counts the numbered frames that reach a fake, until stop is
// closed and nothing has come for quiet.
type farEnd struct {
	frames, bad int // bad: frames with a wrong tail (split or corrupt)
	bytes       int
	last        time.Time
}

func readFarEnd(fake *ptyfake.PTY, stop <-chan struct{}, quiet time.Duration) <-chan farEnd {
	out := make(chan farEnd, 1)
	go func() {
		var r farEnd
		var pending []byte
		buf := make([]byte, 64<<10)
		stopped := false
		r.last = time.Now()
		for {
			fake.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			n, err := fake.Read(buf)
			if n > 0 {
				r.last = time.Now()
				r.bytes += n
				pending = append(pending, buf[:n]...)
				whole := len(pending) / 7 * 7
				for i := 0; i < whole; i += 7 {
					if bytes.Equal(pending[i+4:i+7], []byte{0xa5, 0x5a, 0xee}) {
						r.frames++
					} else {
						r.bad++
					}
				}
				pending = append(pending[:0], pending[whole:]...)
			}
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			select {
			case <-stop:
				stopped = true
			default:
			}
			if stopped && time.Since(r.last) > quiet {
				break
			}
		}
		fake.SetReadDeadline(time.Time{})
		out <- r
	}()
	return out
}

// udpReceiver is a program under test that takes datagrams on a UDP port
// and writes them to a pty.
type udpReceiver struct {
	name  string
	start func(fake string) (*proc, string, error) // returns the address it listens on
}

// proc is a running receiver and what it printed on stderr.
type proc struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	out bytes.Buffer
	eof chan struct{}
}

// stop sends SIGINT, waits for the process and returns its stderr.
func (p *proc) stop() string {
	p.cmd.Process.Signal(syscall.SIGINT)
	p.cmd.Wait()
	if p.eof != nil {
		<-p.eof
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func framesendUDP(framesend string, extra ...string) udpReceiver {
	return udpReceiver{name: "framesend send --source udp", start: func(fake string) (*proc, string, error) {
		cmd := exec.Command(framesend, append([]string{"send", "--port", fake, "--source", "udp:127.0.0.1:0", "--summary", "json"}, extra...)...)
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, "", err
		}
		cmd.Stderr = pw
		if err := cmd.Start(); err != nil {
			return nil, "", err
		}
		pw.Close()
		p := &proc{cmd: cmd, eof: make(chan struct{})}
		addr := make(chan string, 1)
		go func() {
			defer close(p.eof)
			defer pr.Close()
			re := regexp.MustCompile(`listening for datagrams"?[ ,]"?addr"?[=:]"?([^\s"]+)`)
			sc := bufio.NewScanner(pr)
			for sc.Scan() {
				p.mu.Lock()
				p.out.Write(append(sc.Bytes(), '\n'))
				p.mu.Unlock()
				if m := re.FindStringSubmatch(sc.Text()); m != nil {
					addr <- m[1]
				}
			}
		}()
		select {
		case a := <-addr:
			return p, a, nil
		case <-p.eof:
			cmd.Wait()
			return nil, "", fmt.Errorf("framesend did not listen: %s", p.out.String())
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			return nil, "", fmt.Errorf("framesend did not listen within 10 s")
		}
	}}
}

func socatUDP(socat string) udpReceiver {
	return udpReceiver{name: "socat -u UDP-RECV FILE:PTY,raw", start: func(fake string) (*proc, string, error) {
		l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, "", err
		}
		port := l.LocalAddr().(*net.UDPAddr).Port
		l.Close()
		cmd := exec.Command(socat, "-u", fmt.Sprintf("UDP-RECV:%d,bind=127.0.0.1", port), "FILE:"+fake+",raw")
		if err := cmd.Start(); err != nil {
			return nil, "", err
		}
		// Bound once the port is taken.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
			if err != nil {
				return &proc{cmd: cmd}, fmt.Sprintf("127.0.0.1:%d", port), nil
			}
			l.Close()
		}
		cmd.Process.Kill()
		cmd.Wait()
		return nil, "", fmt.Errorf("socat did not bind port %d", port)
	}}
}

// udpRun sends n datagrams at rate into a receiver on a fresh fake and
// returns the frames that arrived whole.
func udpRun(self string, r udpReceiver, n int, rate float64, baud int) (farEnd, error) {
	fake, err := ptyfake.New(ptyfake.Options{Baud: baud})
	if err != nil {
		return farEnd{}, err
	}
	defer fake.Close()
	stop := make(chan struct{})
	got := readFarEnd(fake, stop, 300*time.Millisecond)
	p, addr, err := r.start(fake.Path())
	if err != nil {
		close(stop)
		<-got
		return farEnd{}, err
	}
	send := exec.Command(self, "-udp-send", addr, "-udp-n", strconv.Itoa(n), "-udp-rate", strconv.FormatFloat(rate, 'f', 0, 64))
	send.Stderr = os.Stderr
	serr := send.Run()
	close(stop)
	res := <-got
	p.stop()
	if serr != nil {
		return res, fmt.Errorf("sender: %v", serr)
	}
	return res, nil
}

// udpRows measures framesend and socat side by side: the highest sustained
// rate each takes with no loss, and the 20,000-datagram burst.
func udpRows(t io.Writer, self, framesend string, runs int) error {
	socat, err := exec.LookPath("socat")
	if err != nil {
		fmt.Fprintf(t, "\n(UDP rows not measured: socat is not installed)\n")
		return nil
	}
	recv := []udpReceiver{framesendUDP(framesend), socatUDP(socat)}
	// The burst: as fast as one sender process can send.
	const burst = 20000
	bursts := make([][]int, len(recv))
	for range runs {
		for i, r := range recv {
			res, err := udpRun(self, r, burst, 0, 0)
			if err != nil {
				return fmt.Errorf("%s: %v", r.name, err)
			}
			bursts[i] = append(bursts[i], res.frames)
		}
	}
	// Sustained: the highest rate of the ladder at which three runs in a
	// row lost nothing; each run is one second of datagrams.
	ladder := []float64{10_000, 25_000, 50_000, 100_000, 150_000, 200_000, 300_000, 400_000, 600_000}
	best := make([]float64, len(recv))
	failedAt := make([]string, len(recv))
	for i, r := range recv {
		for _, rate := range ladder {
			ok := true
			for range 3 {
				n := int(rate)
				res, err := udpRun(self, r, n, rate, 0)
				if err != nil {
					return fmt.Errorf("%s: %v", r.name, err)
				}
				if res.frames != n || res.bad != 0 {
					ok = false
					failedAt[i] = fmt.Sprintf("%.0f/s: %d of %d arrived", rate, res.frames, n)
					break
				}
			}
			if !ok {
				break
			}
			best[i] = rate
		}
		fmt.Fprintf(os.Stderr, "udp sustained %s done\n", r.name)
	}
	fmt.Fprintf(t, "\n| UDP into a pty, 7-byte datagrams, one sender process on loopback | framesend | socat -u UDP-RECV FILE:PTY,raw | framesend ÷ socat | target |\n|---|---|---|---|---|\n")
	ratio := func(a, b float64) string {
		if b == 0 {
			return "—"
		}
		return fmt.Sprintf("× %.2f", a/b)
	}
	note := func(i int) string {
		if failedAt[i] == "" {
			return "(the sender's top rate)"
		}
		return "(lost at " + failedAt[i] + ")"
	}
	fmt.Fprintf(t, "| highest rate with no loss, 3 runs of 1 s each | %.0f/s %s | %.0f/s %s | %s | ≥ 1 |\n", best[0], note(0), best[1], note(1), ratio(best[0], best[1]))
	med := func(xs []int) int { s := slices.Clone(xs); slices.Sort(s); return s[len(s)/2] }
	fmt.Fprintf(t, "| burst of 20,000 as fast as the sender goes: arrived, median of %d (min–max) | %d (%d–%d) | %d (%d–%d) | | framesend 20,000 |\n",
		runs, med(bursts[0]), slices.Min(bursts[0]), slices.Max(bursts[0]), med(bursts[1]), slices.Min(bursts[1]), slices.Max(bursts[1]))

	// The slow line: the largest burst framesend absorbs at 115200 baud
	// with its default queue, found by bisection on its own counters.
	lo, hi := 1000, 400_000
	var detail string
	for hi-lo > lo/50 {
		mid := (lo + hi) / 2
		st, err := slowBurst(self, framesend, mid)
		if err != nil {
			return err
		}
		if st.Dropped == 0 && st.KernelDropped == 0 {
			lo = mid
		} else {
			hi = mid
			detail = fmt.Sprintf("%d sent: %d dropped by the queue, %d by the kernel", mid, st.Dropped, st.KernelDropped)
		}
	}
	fmt.Fprintf(t, "| largest burst absorbed with no loss at 115200 baud (fake line), default --queue 1MiB | %d datagrams (%s) | | | 1 MiB = %d frames |\n", lo, detail, (1<<20)/7)
	return nil
}

// slowCounts is what framesend's last --stats-interval line said.
type slowCounts struct {
	Dropped       int64 `json:"dropped"`
	KernelDropped int64 `json:"kernel_dropped"`
}

// slowBurst sends a burst of n into framesend on a 115200-baud fake and
// returns its drop counts once the burst is in, from its stats lines, without
// waiting for the line to carry it all.
func slowBurst(self, framesend string, n int) (slowCounts, error) {
	var st slowCounts
	fake, err := ptyfake.New(ptyfake.Options{Baud: 115200})
	if err != nil {
		return st, err
	}
	defer fake.Close()
	stop := make(chan struct{})
	got := readFarEnd(fake, stop, 0)
	defer func() { close(stop); <-got }()
	r := framesendUDP(framesend, "--baud", "115200", "--stats-interval", "100ms", "--log-format", "json")
	p, addr, err := r.start(fake.Path())
	if err != nil {
		return st, err
	}
	defer p.cmd.Process.Kill()
	send := exec.Command(self, "-udp-send", addr, "-udp-n", strconv.Itoa(n), "-udp-rate", "0")
	if err := send.Run(); err != nil {
		return st, err
	}
	time.Sleep(400 * time.Millisecond)
	p.mu.Lock()
	out := p.out.String()
	p.mu.Unlock()
	i := strings.LastIndex(out, `"msg":"progress"`)
	if i < 0 {
		return st, fmt.Errorf("no stats line from framesend: %s", out)
	}
	line := out[strings.LastIndex(out[:i], "\n")+1:]
	line = line[:strings.Index(line, "\n")]
	if err := json.Unmarshal([]byte(line), &st); err != nil {
		return st, fmt.Errorf("framesend's stats line %q: %v", line, err)
	}
	return st, nil
}

// measureOnly runs some of the rows alone (bench -only udp,mqtt), for
// working on them without the three-minute run.
func measureOnly(framesend, only, outPath, against string, runs int, frames int64) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var t strings.Builder
	for _, what := range strings.Split(only, ",") {
		switch what {
		case "udp":
			err = udpRows(&t, self, framesend, 5)
		case "mqtt":
			err = mqttRows(&t, framesend, 5)
		case "line":
			err = lineRows(&t)
		case "batch1":
			err = batch1Rows(&t, self, framesend, against, runs, frames)
		default:
			err = fmt.Errorf("-only %q: use udp, mqtt, line or batch1", what)
		}
		if err != nil {
			return err
		}
	}
	fmt.Print(t.String())
	if outPath != "" {
		return os.WriteFile(outPath, []byte(t.String()), 0o644)
	}
	return nil
}
