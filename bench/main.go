// Command bench measures framesend end to end on a pseudo-terminal, next to a
// raw write(2) loop of the same counter stream, each run as its own process
// against the same pty, interleaved, and prints a markdown table of medians.
//
//	go run ./bench -framesend bin/framesend [-runs 5] [-out bench-results.md]
//
// It also runs itself as the raw writer: bench -raw SIZE -port PATH -bytes N.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framesend/framesend/device/ptyfake"
	"github.com/framesend/framesend/pipeline"
)

func main() {
	framesend := flag.String("framesend", "bin/framesend", "the framesend binary to measure")
	runs := flag.Int("runs", 7, "interleaved runs of each case; the table shows medians")
	out := flag.String("out", "", "also write the table to this file")
	raw := flag.Int("raw", 0, "internal: be the raw writer, SIZE bytes per write(2)")
	port := flag.String("port", "", "internal: the raw writer's port")
	total := flag.Int64("bytes", 0, "internal: the raw writer's byte count")
	udpTo := flag.String("udp-send", "", "internal: be the UDP sender, to this address")
	udpN := flag.Int("udp-n", 0, "internal: the UDP sender's datagram count")
	udpRate := flag.Float64("udp-rate", 0, "internal: the UDP sender's rate (0: as fast as it can)")
	only := flag.String("only", "", "measure only these rows: udp, mqtt, line, batch1 (comma-separated)")
	against := flag.String("against", "", "batch1 rows: also measure these framesend binaries (comma-separated), such as an older build")
	frames := flag.Int64("frames", 300_000, "batch1 rows: frames a run")
	flag.Parse()
	if *udpTo != "" {
		if err := udpSender(*udpTo, *udpN, *udpRate); err != nil {
			fmt.Fprintln(os.Stderr, "udp sender:", err)
			os.Exit(1)
		}
		return
	}
	if *only != "" {
		if err := measureOnly(*framesend, *only, *out, *against, *runs, *frames); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *raw > 0 {
		if err := rawWriter(*port, *raw, *total); err != nil {
			fmt.Fprintln(os.Stderr, "raw writer:", err)
			os.Exit(1)
		}
		return
	}
	if err := measure(*framesend, *runs, *out, *against); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// rawWriter is the baseline: open the port, write the counter stream in
// size-byte write(2) calls, nothing else.
func rawWriter(port string, size int, total int64) error {
	fd, err := unix.Open(port, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	pattern := counter(size + 16)
	for off := int64(0); off < total; {
		n := int(min(int64(size), total-off))
		w, err := unix.Write(fd, pattern[off%16:off%16+int64(n)])
		if err != nil {
			return err
		}
		off += int64(w)
	}
	return nil
}

func counter(n int) []byte { return pipeline.AppendCounter(nil, 0, n) }

// result is one process's run.
type result struct {
	wall time.Duration // start of the process to the last byte at the far end
	cpu  time.Duration // the process's user + system time

	user, sys   time.Duration // cpu's two parts
	vcsw, ivcsw int64         // voluntary and involuntary context switches
}

// runOne starts argv, reads the far end until want bytes have come and
// checks them against the counter stream.
func runOne(fake *ptyfake.PTY, want int64, argv []string, stdin io.Reader) (result, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	got, err := readCounter(fake, want, 60*time.Second)
	wall := time.Since(start)
	werr := cmd.Wait()
	if err != nil {
		return result{}, fmt.Errorf("%s: far end got %d of %d bytes: %v", strings.Join(argv, " "), got, want, err)
	}
	if werr != nil {
		return result{}, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), werr, stderr.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	user, sys := time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
	return result{wall: wall, cpu: user + sys, user: user, sys: sys, vcsw: ru.Nvcsw, ivcsw: ru.Nivcsw}, nil
}

// readCounter reads want bytes of the counter stream from the fake.
func readCounter(fake *ptyfake.PTY, want int64, limit time.Duration) (int64, error) {
	pattern := counter(64<<10 + 16)
	buf := make([]byte, 64<<10)
	fake.SetReadDeadline(time.Now().Add(limit))
	defer fake.SetReadDeadline(time.Time{})
	var got int64
	for got < want {
		n, err := fake.Read(buf)
		if !bytes.Equal(buf[:n], pattern[got%16:got%16+int64(n)]) {
			return got, fmt.Errorf("stream differs near byte %d", got)
		}
		got += int64(n)
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

type stat struct {
	name   string
	frames int64
	runs   []result
}

func (s *stat) fps() float64 {
	return float64(s.frames) / median(s.runs, func(r result) time.Duration { return r.wall }).Seconds()
}

// cpuPerFrame returns nanoseconds of CPU per frame, unrounded: at tens of
// nanoseconds a frame, rounding to whole nanoseconds would hide the ratio.
func (s *stat) cpuPerFrame() float64 {
	return float64(median(s.runs, func(r result) time.Duration { return r.cpu })) / float64(s.frames)
}

func median(rs []result, f func(result) time.Duration) time.Duration {
	xs := make([]time.Duration, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}

func measure(framesend string, runs int, outPath, against string) error {
	if _, err := os.Stat(framesend); err != nil {
		return fmt.Errorf("%v (run make build first)", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fake, err := ptyfake.New(ptyfake.Options{})
	if err != nil {
		return err
	}
	defer fake.Close()
	p := fake.Path()

	const small, large = 300_000, 10_000_000 // frames: about 1 s per run each
	s7 := strconv.FormatInt(small*7, 10)
	sL := strconv.FormatInt(large*7, 10)
	// The file and stdin sources send the same counter stream from a file.
	data, err := os.CreateTemp("", "framesend-bench-*.bin")
	if err != nil {
		return err
	}
	defer os.Remove(data.Name())
	pattern := counter(7 * 4096)
	for range large / 4096 {
		data.Write(pattern)
	}
	data.Write(pattern[:7*(large%4096)])
	data.Close()
	cases := []struct {
		stat
		argv  []string
		stdin bool // feed the file through a pipe on stdin
	}{
		{stat{name: "raw write(2), 7 bytes per call", frames: small}, []string{self, "-raw", "7", "-port", p, "-bytes", s7}, false},
		{stat{name: "framesend --batch 1", frames: small}, []string{framesend, "send", "--port", p, "--count", strconv.Itoa(small), "--batch", "1"}, false},
		{stat{name: "raw write(2), 4096 bytes per call", frames: large}, []string{self, "-raw", "4096", "-port", p, "-bytes", sL}, false},
		{stat{name: "framesend (default batching)", frames: large}, []string{framesend, "send", "--port", p, "--count", strconv.Itoa(large)}, false},
		{stat{name: "framesend --source file:", frames: large}, []string{framesend, "send", "--port", p, "--source", "file:" + data.Name()}, false},
		{stat{name: "framesend --source stdin (a pipe)", frames: large}, []string{framesend, "send", "--port", p, "--source", "stdin"}, true},
	}
	for i := range runs {
		for c := range cases {
			var stdin io.Reader
			if cases[c].stdin {
				f, err := os.Open(data.Name())
				if err != nil {
					return err
				}
				defer f.Close()
				stdin = struct{ io.Reader }{f} // not an *os.File: exec makes a pipe
			}
			r, err := runOne(fake, cases[c].frames*7, cases[c].argv, stdin)
			if err != nil {
				return err
			}
			cases[c].runs = append(cases[c].runs, r)
		}
		fmt.Fprintf(os.Stderr, "run %d/%d done\n", i+1, runs)
	}

	var paces []pacing
	for _, rate := range []int{100, 1000, 10000} {
		pace, err := measurePacing(fake, framesend, rate, rate*3)
		if err != nil {
			return err
		}
		paces = append(paces, pace)
	}

	var t strings.Builder
	fmt.Fprintf(&t, "framesend end to end on a pty, %s/%s, %d cores, median of %d interleaved runs (%s)\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runs, time.Now().Format("2006-01-02"))
	fmt.Fprintf(&t, "| case | frames | frames/s | CPU per frame |\n|---|---|---|---|\n")
	for _, c := range cases {
		fmt.Fprintf(&t, "| %s | %d | %.0f | %.1f ns |\n", c.name, c.frames, c.fps(), c.cpuPerFrame())
	}
	// Ratios are the medians of each interleaved pair's ratio, so that a
	// slow patch of a shared machine weighs on both sides of a pair.
	ratio := func(a, b int, target string) {
		var frs, crs []float64
		for i := range runs {
			ra, rb := cases[a].runs[i], cases[b].runs[i]
			frs = append(frs, (float64(cases[a].frames)/ra.wall.Seconds())/(float64(cases[b].frames)/rb.wall.Seconds()))
			crs = append(crs, (float64(ra.cpu)/float64(cases[a].frames))/(float64(rb.cpu)/float64(cases[b].frames)))
		}
		slices.Sort(frs)
		slices.Sort(crs)
		fr, cr := frs[len(frs)/2], crs[len(crs)/2]
		fmt.Fprintf(&t, "| %s ÷ %s | frames/s × %.3f | CPU/frame × %.3f | target %s |\n", cases[a].name, cases[b].name, fr, cr, target)
	}
	fmt.Fprintf(&t, "\n| ratio | throughput | CPU | target |\n|---|---|---|---|\n")
	ratio(1, 0, "≥ 0.90 and ≤ 1.10")
	ratio(3, 2, "≥ 0.90 and ≤ 1.25")
	ratio(4, 2, "≥ 0.90 and ≤ 1.25")
	ratio(5, 2, "≥ 0.90 and ≤ 1.25")
	// --batch 1 in detail: CPU split, start-up, syscall counts (and
	// instructions where perf can count them), which load hardly changes.
	if err := batch1Rows(&t, self, framesend, against, runs, small); err != nil {
		return err
	}
	fmt.Fprintf(&t, "\n| pacing | nominal | achieved at the far end | error | interval median | interval p99 |\n|---|---|---|---|---|---|\n")
	for _, p := range paces {
		fmt.Fprintf(&t, "| --rate %d, %d frames | %d/s | %.2f/s | %+.3f%% | %v | %v |\n",
			p.nominal, p.frames, p.nominal, p.rate, (p.rate/float64(p.nominal)-1)*100, p.median.Round(time.Microsecond), p.p99.Round(time.Microsecond))
	}

	// Line rate, on fakes that drain at a baud rate.
	fmt.Fprintf(&t, "\n| line rate (fake draining at the baud, 8N1) | line carries | achieved at the far end | ratio (target ≥ 0.99) | bytes | framesend CPU, share of one core (target < 2%% at 115200) |\n|---|---|---|---|---|---|\n")
	for _, lr := range []struct {
		baud    int
		seconds float64
	}{{9600, 6}, {115200, 6}, {1_000_000, 6}} {
		r, err := measureLineRate(framesend, lr.baud, lr.seconds)
		if err != nil {
			return err
		}
		intact := "all, in order"
		if !r.intact {
			intact = "**LOST OR CHANGED**"
		}
		fmt.Fprintf(&t, "| %d baud, %.1f s measured | %.1f frames/s | %.1f frames/s | %.4f | %s | %.2f%% (%v CPU for %.1f s of line time) |\n",
			r.baud, r.seconds, r.nominal, r.achieved, r.achieved/r.nominal, intact, r.cpuShare*100, r.sendCPU.Round(time.Millisecond), float64(r.sendCount*7)/(float64(r.baud)/10))
		fmt.Fprintf(os.Stderr, "line rate %d done\n", lr.baud)
	}

	// Per-frame line shaping: DMX512 breaks, Modbus gaps.
	if err := lineRows(&t); err != nil {
		return err
	}

	// Datagrams: UDP against socat, MQTT against mosquitto_sub.
	if err := udpRows(&t, self, framesend, 5); err != nil {
		return err
	}
	if err := mqttRows(&t, framesend, 5); err != nil {
		return err
	}

	// Footprint.
	startup, err := measureStartup(framesend, 15)
	if err != nil {
		return err
	}
	rss, err := measurePeakRSS(framesend, 10_000_000)
	if err != nil {
		return err
	}
	fmt.Fprintf(&t, "\n| footprint | measured | target |\n|---|---|---|\n")
	fmt.Fprintf(&t, "| CPU time per million frames, unpaced, default batching | %.1f ms | |\n", cases[3].cpuPerFrame()*1e6/1e6)
	fmt.Fprintf(&t, "| CPU time per million frames, --batch 1 | %.0f ms | |\n", cases[1].cpuPerFrame()*1e6/1e6)
	fmt.Fprintf(&t, "| peak RSS over 10,000,000 frames | %.1f MiB | < 32 MiB |\n", float64(rss)/1024)
	fmt.Fprintf(&t, "| process start to first byte on the wire (median of 15) | %v | < 20 ms |\n", startup.Round(10*time.Microsecond))

	dir, err := os.MkdirTemp("", "framesend-pi-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pis, err := buildPi(dir)
	if err != nil {
		return err
	}
	for _, b := range pis {
		fmt.Fprintf(&t, "| binary size, %s (-s -w) | %.1f MiB | |\n", b.name, float64(b.size)/(1<<20))
	}
	if ratio, arm, native, err := qemuRatio(framesend, pis[0].path, 1_000_000, 3); err != nil {
		fmt.Fprintf(&t, "| armv6 build under qemu-arm ÷ amd64 build | not measured: %v | |\n", err)
	} else {
		fmt.Fprintf(&t, "| armv6 build under qemu-arm -cpu arm1176 ÷ amd64 build, frames/s | × %.3f (%.0f ÷ %.0f) | watch for drops |\n", ratio, arm, native)
	}
	fmt.Fprintf(os.Stderr, "footprint done\n")

	rows, err := goBench()
	if err != nil {
		return err
	}
	fmt.Fprintf(&t, "\n| go test -bench ./pipeline (one op = one frame; FramerCounterCheck: 4096 frames) | ns/op | allocs/op (target 0) |\n|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&t, "| %s | %s | %s |\n", r[0], r[1], r[2])
	}

	fmt.Print(t.String())
	if outPath != "" {
		return os.WriteFile(outPath, []byte(t.String()), 0o644)
	}
	return nil
}

type pacing struct {
	nominal     int
	frames      int
	rate        float64
	median, p99 time.Duration
}

// measurePacing runs a paced send and times every frame's arrival at the
// far end.
func measurePacing(fake *ptyfake.PTY, framesend string, rate, frames int) (pacing, error) {
	cmd := exec.Command(framesend, "send", "--port", fake.Path(), "--rate", strconv.Itoa(rate), "--count", strconv.Itoa(frames))
	if err := cmd.Start(); err != nil {
		return pacing{}, err
	}
	defer cmd.Wait()
	arrivals := make([]time.Time, 0, frames)
	buf := make([]byte, 4096)
	got := 0
	fake.SetReadDeadline(time.Now().Add(time.Duration(frames/rate+10) * time.Second))
	defer fake.SetReadDeadline(time.Time{})
	for got < frames*7 {
		n, err := fake.Read(buf)
		now := time.Now()
		for i := got; i < got+n; i++ {
			if i%7 == 6 {
				arrivals = append(arrivals, now)
			}
		}
		got += n
		if err != nil && !errors.Is(err, io.EOF) {
			return pacing{}, fmt.Errorf("paced run: %v after %d bytes", err, got)
		}
	}
	iv := make([]time.Duration, 0, len(arrivals)-1)
	for i := 1; i < len(arrivals); i++ {
		iv = append(iv, arrivals[i].Sub(arrivals[i-1]))
	}
	slices.Sort(iv)
	span := arrivals[len(arrivals)-1].Sub(arrivals[0])
	return pacing{
		nominal: rate,
		frames:  frames,
		rate:    float64(len(arrivals)-1) / span.Seconds(),
		median:  iv[len(iv)/2],
		p99:     iv[len(iv)*99/100],
	}, nil
}
