package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/framesend/framesend/device/ptyfake"
)

// The --batch 1 rows: what one frame per write(2) costs framesend beyond
// the write itself. Each case runs as its own process against the same pty
// and the same far-end reader, interleaved over rounds (the order rotating
// each round), with medians. CPU comes from the process's rusage, split into
// user and system time, also net of the case's start-up (the same command
// with one frame); a second pass counts, under perf stat, what load on a
// shared machine hardly changes: syscalls of each kind, context switches,
// and instructions where the machine has hardware counters.

// perCase is one command measured at n frames and at one frame.
type perCase struct {
	name       string
	frames     int64
	argv, one  []string // n frames; one frame (its start-up cost)
	runs, ones []result
	counts     []map[string]float64 // perf stat, per round
	samples    []cpuSplit           // perf record, per round
}

// cpuSplit is a run's CPU time in user space and in the kernel, from
// perf record's cpu-clock samples.
type cpuSplit struct{ user, kernel time.Duration }

// perfEvent is one perf stat event, with an optional filter.
type perfEvent struct {
	key, spec, filter string
}

// perfEvents are what the second pass counts, where perf can count them:
// hardware counters are missing in most virtual machines; tracepoints need
// tracefs.
var perfEvents = []perfEvent{
	{"instructions:u", "instructions:u", ""},
	{"instructions:k", "instructions:k", ""},
	{"task-clock", "task-clock", ""},
	{"context switches", "context-switches", ""},
	{"syscalls", "raw_syscalls:sys_enter", ""},
	{"write", "syscalls:sys_enter_write", ""},
	{"write EAGAIN", "syscalls:sys_exit_write", "ret == -11"},
	{"ppoll", "syscalls:sys_enter_ppoll", ""},
	{"read", "syscalls:sys_enter_read", ""},
	{"futex", "syscalls:sys_enter_futex", ""},
	{"epoll_pwait", "syscalls:sys_enter_epoll_pwait", ""},
	{"nanosleep", "syscalls:sys_enter_nanosleep", ""},
	{"sched_yield", "syscalls:sys_enter_sched_yield", ""},
}

// batch1Rows measures raw write(2) of 7 bytes, framesend --batch 1 and
// framesend with default batching, and the same two for against if it is
// set (other framesend binaries, comma-separated), frames frames each.
func batch1Rows(t *strings.Builder, self, framesend, against string, rounds int, frames int64) error {
	fake, err := ptyfake.New(ptyfake.Options{})
	if err != nil {
		return err
	}
	defer fake.Close()
	p := fake.Path()
	n := strconv.FormatInt(frames, 10)
	send := func(bin string, frames string, extra ...string) []string {
		return append([]string{bin, "send", "--port", p, "--count", frames}, extra...)
	}
	cases := []*perCase{
		{name: "raw write(2), 7 bytes per call", argv: []string{self, "-raw", "7", "-port", p, "-bytes", strconv.FormatInt(frames*7, 10)}, one: []string{self, "-raw", "7", "-port", p, "-bytes", "7"}},
		{name: "framesend --batch 1", argv: send(framesend, n, "--batch", "1"), one: send(framesend, "1", "--batch", "1")},
		{name: "framesend (default batching)", argv: send(framesend, n), one: send(framesend, "1")},
	}
	for _, bin := range strings.Split(against, ",") {
		if bin == "" {
			continue
		}
		name := filepath.Base(bin)
		cases = append(cases,
			&perCase{name: name + " --batch 1", argv: send(bin, n, "--batch", "1"), one: send(bin, "1", "--batch", "1")},
			&perCase{name: name + " (default batching)", argv: send(bin, n), one: send(bin, "1")})
	}
	for _, c := range cases {
		c.frames = frames
	}
	loadBefore := loadavg()

	// Pass 1: rusage, uninstrumented.
	for i := range rounds {
		for k := range cases {
			c := cases[(i+k)%len(cases)]
			r, err := runOne(fake, c.frames*7, c.argv, nil)
			if err != nil {
				return err
			}
			c.runs = append(c.runs, r)
			r, err = runOne(fake, 7, c.one, nil)
			if err != nil {
				return err
			}
			c.ones = append(c.ones, r)
		}
		fmt.Fprintf(os.Stderr, "batch1: CPU round %d/%d done\n", i+1, rounds)
	}

	// Pass 2: counts under perf stat.
	events, why := usablePerfEvents()
	if len(events) > 0 {
		for i := range rounds {
			for k := range cases {
				c := cases[(i+k)%len(cases)]
				m, err := perfRun(fake, c.frames*7, c.argv, events)
				if err != nil {
					return err
				}
				c.counts = append(c.counts, m)
			}
			fmt.Fprintf(os.Stderr, "batch1: perf stat round %d/%d done\n", i+1, rounds)
		}
	}
	// Pass 3: user-space and kernel CPU from perf record's samples, which
	// split them far more finely than rusage's clock ticks.
	sampled := events != nil && perfRecordWorks()
	if sampled {
		for i := range rounds {
			for k := range cases {
				c := cases[(i+k)%len(cases)]
				sp, err := perfSampleRun(fake, c.frames*7, c.argv)
				if err != nil {
					return err
				}
				c.samples = append(c.samples, sp)
			}
			fmt.Fprintf(os.Stderr, "batch1: perf record round %d/%d done\n", i+1, rounds)
		}
	}
	loadAfter := loadavg()

	fmt.Fprintf(t, "\n--batch 1 against raw write(2), %d frames a run, the same pty and far-end reader, median of %d interleaved rounds; load average %s before, %s after\n\n",
		frames, rounds, loadBefore, loadAfter)
	fmt.Fprintf(t, "| case | frames/s | CPU/frame | user/frame | sys/frame | start-up CPU | CPU/frame net of start-up | context switches/frame |\n|---|---|---|---|---|---|---|---|\n")
	for _, c := range cases {
		perFrame := func(f func(result) time.Duration) float64 { return float64(median(c.runs, f)) / float64(c.frames) }
		cpu := func(r result) time.Duration { return r.cpu }
		startup := median(c.ones, cpu)
		net := float64(median(c.runs, cpu)-startup) / float64(c.frames-1)
		csw := medianF(c.runs, func(r result) float64 { return float64(r.vcsw+r.ivcsw) / float64(c.frames) })
		fmt.Fprintf(t, "| %s | %.0f | %.1f ns | %.1f ns | %.1f ns | %v | %.1f ns | %.3f |\n", c.name,
			float64(c.frames)/median(c.runs, func(r result) time.Duration { return r.wall }).Seconds(),
			perFrame(cpu), perFrame(func(r result) time.Duration { return r.user }), perFrame(func(r result) time.Duration { return r.sys }),
			startup.Round(100*time.Microsecond), net, csw)
	}
	// Ratios are medians of each round's pair, so that a slow patch of
	// the machine weighs on both sides.
	fmt.Fprintf(t, "\n| ÷ raw write(2), 7 bytes per call (median of the rounds' ratios) | frames/s | CPU/frame (target ≤ 1.10 at --batch 1) | user/frame | sys/frame | CPU/frame net of start-up |\n|---|---|---|---|---|---|\n")
	raw := cases[0]
	for _, c := range cases[1:] {
		ratio := func(f func(a, b result, a1, b1 result) float64) float64 {
			var xs []float64
			for i := range c.runs {
				xs = append(xs, f(c.runs[i], raw.runs[i], c.ones[i], raw.ones[i]))
			}
			slices.Sort(xs)
			return xs[len(xs)/2]
		}
		fr := ratio(func(a, b, _, _ result) float64 { return b.wall.Seconds() / a.wall.Seconds() })
		cr := ratio(func(a, b, _, _ result) float64 { return float64(a.cpu) / float64(b.cpu) })
		ur := ratio(func(a, b, _, _ result) float64 { return float64(a.user) / float64(b.user) })
		sr := ratio(func(a, b, _, _ result) float64 { return float64(a.sys) / float64(b.sys) })
		nr := ratio(func(a, b, a1, b1 result) float64 { return float64(a.cpu-a1.cpu) / float64(b.cpu-b1.cpu) })
		fmt.Fprintf(t, "| %s | × %.3f | × %.3f | × %.3f | × %.3f | × %.3f |\n", c.name, fr, cr, ur, sr, nr)
	}

	if len(events) == 0 {
		fmt.Fprintf(t, "\nperf samples and counts not measured: %s\n", why)
		return nil
	}
	if sampled {
		fmt.Fprintf(t, "\nperf record -e cpu-clock -c %d (one sample every %v of CPU), median of %d rounds: where each frame's CPU goes\n\n", samplePeriod, time.Duration(samplePeriod), rounds)
		fmt.Fprintf(t, "| case | user space/frame | kernel/frame | user space − raw write(2)'s, per frame |\n|---|---|---|---|\n")
		perFrame := func(c *perCase, f func(cpuSplit) time.Duration) float64 {
			return medianF(c.samples, func(sp cpuSplit) float64 { return float64(f(sp)) / float64(c.frames) })
		}
		user := func(sp cpuSplit) time.Duration { return sp.user }
		for _, c := range cases {
			fmt.Fprintf(t, "| %s | %.1f ns | %.1f ns | %+.1f ns |\n", c.name, perFrame(c, user), perFrame(c, func(sp cpuSplit) time.Duration { return sp.kernel }), perFrame(c, user)-perFrame(raw, user))
		}
	}
	fmt.Fprintf(t, "\nperf stat, per frame (median of %d rounds)", rounds)
	if why != "" {
		fmt.Fprintf(t, "; not counted: %s", why)
	}
	fmt.Fprintf(t, "\n\n| case |")
	for _, e := range events {
		fmt.Fprintf(t, " %s |", e.key)
	}
	fmt.Fprintf(t, "\n|---|%s\n", strings.Repeat("---|", len(events)))
	for _, c := range cases {
		fmt.Fprintf(t, "| %s |", c.name)
		for _, e := range events {
			v := medianF(c.counts, func(m map[string]float64) float64 { return m[e.key] / float64(c.frames) })
			if e.key == "task-clock" {
				fmt.Fprintf(t, " %.1f ns |", v*1e6) // perf gives milliseconds
			} else {
				fmt.Fprintf(t, " %.3f |", v)
			}
		}
		fmt.Fprintf(t, "\n")
	}
	return nil
}

func medianF[T any](xs []T, f func(T) float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// usablePerfEvents returns the perfEvents that perf stat counts on this
// machine, and a sentence naming the others and why, or perf's absence.
func usablePerfEvents() ([]perfEvent, string) {
	if _, err := exec.LookPath("perf"); err != nil {
		return nil, "perf is not installed (Debian: apt-get install linux-perf)"
	}
	var ok []perfEvent
	var missing []string
	for _, e := range perfEvents {
		m, err := perfStat([]perfEvent{e}, []string{"true"})
		if err != nil {
			missing = append(missing, e.key)
			continue
		}
		if _, counted := m[e.key]; !counted {
			missing = append(missing, e.key)
			continue
		}
		ok = append(ok, e)
	}
	if len(missing) == 0 {
		return ok, ""
	}
	why := strings.Join(missing, ", ") + " (perf stat cannot count them here"
	if slices.Contains(missing, "instructions:u") {
		why += "; no hardware counters, as in most virtual machines"
	}
	return ok, why + ")"
}

// perfStat runs argv under perf stat counting events and returns the
// counted values by key; an event perf could not count is left out.
func perfStat(events []perfEvent, argv []string) (map[string]float64, error) {
	out, err := os.CreateTemp("", "framesend-perf-*.csv")
	if err != nil {
		return nil, err
	}
	out.Close()
	defer os.Remove(out.Name())
	cmd := exec.Command("perf", perfArgs(events, out.Name(), argv)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("perf stat: %v: %s", err, strings.TrimSpace(string(b)))
	}
	return parsePerfStat(out.Name(), events)
}

func perfArgs(events []perfEvent, out string, argv []string) []string {
	args := []string{"stat", "-x", ",", "-o", out}
	for _, e := range events {
		args = append(args, "-e", e.spec)
		if e.filter != "" {
			args = append(args, "--filter", e.filter)
		}
	}
	return append(append(args, "--"), argv...)
}

// parsePerfStat reads perf stat -x, output: one line per event, in the
// order given, the value first ("<not supported>" when not counted).
func parsePerfStat(path string, events []perfEvent) (map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]float64{}
	i := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i >= len(events) {
			return nil, fmt.Errorf("perf stat: more lines than events: %q", line)
		}
		field, _, _ := strings.Cut(line, ",")
		if v, err := strconv.ParseFloat(field, 64); err == nil {
			m[events[i].key] = v
		}
		i++
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if i != len(events) {
		return nil, errors.New("perf stat: fewer lines than events")
	}
	return m, nil
}

// perfRun runs argv under perf stat, reading want bytes of the counter
// stream at the far end.
func perfRun(fake *ptyfake.PTY, want int64, argv []string, events []perfEvent) (map[string]float64, error) {
	out, err := os.CreateTemp("", "framesend-perf-*.csv")
	if err != nil {
		return nil, err
	}
	out.Close()
	defer os.Remove(out.Name())
	if _, err := runOne(fake, want, append([]string{"perf"}, perfArgs(events, out.Name(), argv)...), nil); err != nil {
		return nil, err
	}
	return parsePerfStat(out.Name(), events)
}

// samplePeriod is perf record's cpu-clock period, in nanoseconds.
const samplePeriod = 50_000

func perfRecordWorks() bool {
	dir, err := os.MkdirTemp("", "framesend-perf-*")
	if err != nil {
		return false
	}
	defer os.RemoveAll(dir)
	data := filepath.Join(dir, "perf.data")
	return exec.Command("perf", "record", "-q", "-e", "cpu-clock", "-c", strconv.Itoa(samplePeriod), "-o", data, "--", "true").Run() == nil
}

// perfSampleRun runs argv under perf record and splits its CPU time
// between user space (the program, the vDSO) and the kernel.
func perfSampleRun(fake *ptyfake.PTY, want int64, argv []string) (cpuSplit, error) {
	dir, err := os.MkdirTemp("", "framesend-perf-*")
	if err != nil {
		return cpuSplit{}, err
	}
	defer os.RemoveAll(dir)
	data := filepath.Join(dir, "perf.data")
	rec := append([]string{"perf", "record", "-q", "-e", "cpu-clock", "-c", strconv.Itoa(samplePeriod), "-o", data, "--"}, argv...)
	if _, err := runOne(fake, want, rec, nil); err != nil {
		return cpuSplit{}, err
	}
	out, err := exec.Command("perf", "report", "-i", data, "-n", "--sort", "dso", "--stdio").Output()
	if err != nil {
		return cpuSplit{}, fmt.Errorf("perf report: %v", err)
	}
	var sp cpuSplit
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasPrefix(f[0], "#") || !strings.HasSuffix(f[0], "%") {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		d := time.Duration(n * samplePeriod)
		if strings.HasPrefix(f[2], "[kernel") {
			sp.kernel += d
		} else {
			sp.user += d
		}
	}
	return sp, nil
}
