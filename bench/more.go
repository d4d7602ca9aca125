package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/framesend/framesend/device/ptyfake"
)

// lineRate is framesend keeping a simulated line full.
type lineRate struct {
	baud      int
	nominal   float64 // frames/s the line carries: baud/10/7
	achieved  float64 // frames/s at the far end, after the first second
	seconds   float64 // the measured window
	intact    bool    // every byte arrived, in order
	cpuShare  float64 // framesend's CPU time over the line time of what it sent (one core = 1)
	sendWall  time.Duration
	sendCPU   time.Duration
	sendCount int
}

// measureLineRate sends about `seconds` of line time to a fake that drains
// at baud (10 bits a byte) and times the far end.
func measureLineRate(framesend string, baud int, seconds float64) (lineRate, error) {
	r := lineRate{baud: baud, nominal: float64(baud) / 10 / 7}
	fake, err := ptyfake.New(ptyfake.Options{Baud: baud})
	if err != nil {
		return r, err
	}
	defer fake.Close()
	r.sendCount = int(r.nominal*seconds) + 1
	want := 7 * r.sendCount
	cmd := exec.Command(framesend, "send", "--port", fake.Path(), "--baud", strconv.Itoa(baud), "--count", strconv.Itoa(r.sendCount))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	waited := make(chan error, 1)
	var exited time.Time
	go func() {
		err := cmd.Wait()
		exited = time.Now()
		waited <- err
	}()
	buf := make([]byte, 4096)
	pattern := counter(4096 + 16)
	got := 0
	var markAt time.Time
	markBytes := 0
	r.intact = true
	fake.SetReadDeadline(time.Now().Add(time.Duration(seconds*3+10) * time.Second))
	for got < want {
		n, err := fake.Read(buf)
		if !bytes.Equal(buf[:n], pattern[got%16:got%16+n]) {
			r.intact = false
		}
		got += n
		if markAt.IsZero() && time.Since(start) >= time.Second {
			markAt, markBytes = time.Now(), got
		}
		if err != nil {
			return r, fmt.Errorf("line rate %d: far end: %v after %d of %d bytes", baud, err, got, want)
		}
	}
	end := time.Now()
	if err := <-waited; err != nil {
		return r, fmt.Errorf("line rate %d: %v: %s", baud, err, stderr.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	r.sendCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	r.sendWall = exited.Sub(start)
	// Its CPU time over the time the line needed for what it sent: the
	// pty's buffer lets it finish before the line does.
	r.cpuShare = r.sendCPU.Seconds() / (float64(want) / (float64(baud) / 10))
	r.seconds = end.Sub(markAt).Seconds()
	r.achieved = float64(got-markBytes) / 7 / r.seconds
	return r, nil
}

// startup times process start to the first byte at the far end.
func measureStartup(framesend string, runs int) (time.Duration, error) {
	fake, err := ptyfake.New(ptyfake.Options{})
	if err != nil {
		return 0, err
	}
	defer fake.Close()
	var ts []time.Duration
	buf := make([]byte, 64)
	for range runs {
		cmd := exec.Command(framesend, "send", "--port", fake.Path(), "--count", "1")
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		fake.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := fake.Read(buf)
		ts = append(ts, time.Since(start))
		cmd.Wait()
		if err != nil || n == 0 {
			return 0, fmt.Errorf("startup: no byte: %v", err)
		}
	}
	slices.Sort(ts)
	return ts[len(ts)/2], nil
}

// peakRSS runs a default send of frames frames and returns the peak RSS it
// reports.
func measurePeakRSS(framesend string, frames int) (int64, error) {
	fake, err := ptyfake.New(ptyfake.Options{})
	if err != nil {
		return 0, err
	}
	defer fake.Close()
	cmd := exec.Command(framesend, "send", "--port", fake.Path(), "--count", strconv.Itoa(frames), "--summary", "json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	if _, err := readCounter(fake, int64(frames)*7, time.Minute); err != nil {
		return 0, err
	}
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("%v: %s", err, stderr.String())
	}
	var s struct {
		PeakRSS int64 `json:"peak_rss_kib"`
	}
	out := strings.TrimSpace(stderr.String())
	if err := json.Unmarshal([]byte(out[strings.LastIndex(out, "\n")+1:]), &s); err != nil {
		return 0, err
	}
	return s.PeakRSS, nil
}

// piBuild is one Raspberry Pi binary.
type piBuild struct {
	name, goarch, goarm string
	size                int64
	path                string
}

func buildPi(dir string) ([]piBuild, error) {
	builds := []piBuild{{name: "armv6 (Pi Zero, 1)", goarch: "arm", goarm: "6"}, {name: "armv7 (Pi 2, 3)", goarch: "arm", goarm: "7"}, {name: "arm64 (Pi 3, 4, 5)", goarch: "arm64"}}
	for i := range builds {
		b := &builds[i]
		b.path = filepath.Join(dir, "framesend-"+b.goarch+b.goarm)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", b.path, "./cmd/framesend")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+b.goarch, "GOARM="+b.goarm)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %v\n%s", b.name, err, out)
		}
		fi, _ := os.Stat(b.path)
		b.size = fi.Size()
	}
	return builds, nil
}

// qemuRatio returns the frames/s of the armv6 build under qemu-arm (as an
// ARM1176, the Pi Zero's core) over the native build's, medians of runs.
func qemuRatio(framesend, armv6 string, frames, runs int) (float64, float64, float64, error) {
	qemu, err := exec.LookPath("qemu-arm")
	if err != nil {
		return 0, 0, 0, fmt.Errorf("qemu-arm is not installed (apt-get install qemu-user)")
	}
	fake, err := ptyfake.New(ptyfake.Options{})
	if err != nil {
		return 0, 0, 0, err
	}
	defer fake.Close()
	var native, arm []float64
	for range runs {
		for _, argv := range [][]string{
			{framesend, "send", "--port", fake.Path(), "--count", strconv.Itoa(frames)},
			{qemu, "-cpu", "arm1176", armv6, "send", "--port", fake.Path(), "--count", strconv.Itoa(frames)},
		} {
			r, err := runOne(fake, int64(frames)*7, argv, nil)
			if err != nil {
				return 0, 0, 0, err
			}
			fps := float64(frames) / r.wall.Seconds()
			if argv[0] == framesend {
				native = append(native, fps)
			} else {
				arm = append(arm, fps)
			}
		}
	}
	slices.Sort(native)
	slices.Sort(arm)
	n, a := native[len(native)/2], arm[len(arm)/2]
	return a / n, a, n, nil
}

// goBench runs the pipeline's Go benchmarks and returns each one's ns and
// allocs per frame.
func goBench() ([][3]string, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", "2000000x", "./pipeline/")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go test -bench: %v\n%s", err, out)
	}
	re := regexp.MustCompile(`^Benchmark(\S+?)-\d+\s+\d+\s+([0-9.]+) ns/op.*?(\d+) allocs/op`)
	var rows [][3]string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			rows = append(rows, [3]string{m[1], m[2], m[3]})
		}
	}
	return rows, nil
}
