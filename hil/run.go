package hil

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Scenario is one boot of a guest: a shell script the guest runs (with
// the helpers of guest/lib.sh), the host's part (the far end of each
// device, the monitor's plug and unplug), and checks over what both sides
// printed. Each check is reported on a line of its own.
type Scenario struct {
	Name    string
	Arch    string
	Devices func(m *Machine) // adds the scenario's chardevs and devices
	Script  string
	Files   map[string][]byte // more files: fw_cfg opt/framesend/NAME, or /etc/hil/NAME on a Board
	Host    func(ctx context.Context, r *Run) error
	Checks  []Check
	Timeout time.Duration // boot to power-off; default 3 minutes
	// Image, if set, builds the scenario's own guest in dir instead of the
	// architecture's busybox image (a SystemdGuest, for one).
	Image func(ctx context.Context, d *Dist, dir string) (Boot, error)
	// Board, if set, is a QEMU board without fw_cfg or power-off, such as
	// raspi3b: the scenario is built into its own copy of the image, and
	// QEMU is stopped once the guest is done.
	Board *Board
}

// Boot is a guest image of a scenario's own: its initramfs, kernel command
// line and memory size ("" for the default).
type Boot struct {
	Initrd, Append, Memory string
}

// Board is a QEMU machine modelled on a real board.
type Board struct {
	Type   string // -M, such as raspi3b
	DTB    string // the device tree, as the kernel package names it under usr/lib/linux-image-RELEASE/, such as broadcom/bcm2837-rpi-3-b.dtb
	Append string // the kernel command line
}

// Check is one named assertion over a finished run. It returns a short
// detail for the report, or an error saying got and want.
type Check struct {
	Name string
	Fn   func(r *Run) (string, error)
}

// Block is one command's output, exit code and run time, from the guest
// or the host.
type Block struct {
	Lines   []string
	RC      int
	Seconds float64
}

// Text is the block's output as one string.
func (b *Block) Text() string { return strings.Join(b.Lines, "\n") }

// Run is a scenario in progress, then its outcome.
type Run struct {
	VM        *VM
	Framesend string // the host's framesend, for the far ends
	Guest     map[string]*Block
	Host      map[string]*Block
	read      map[string]bool // blocks the check in progress looked at
	mu        sync.Mutex
	wg        sync.WaitGroup
}

// Sync waits for the guest's sync_host NAME.
func (r *Run) Sync(ctx context.Context, name string) error {
	_, err := r.VM.Expect(ctx, "@@SYNC "+name)
	return err
}

// Go answers the guest's wait_host NAME.
func (r *Run) Go(name string) error { return r.VM.Send("@@GO " + name) }

// HostRun is a far-end framesend running on the host.
type HostRun struct {
	name string
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{}
}

// Start runs the host's framesend with args in the background; its output
// and exit code land in r.Host[name] when it ends. Wait for it with Wait.
func (r *Run) Start(name string, args ...string) (*HostRun, error) {
	h := &HostRun{name: name, cmd: exec.Command(r.Framesend, args...), done: make(chan struct{})}
	start := time.Now()
	h.cmd.Stdout = &h.out
	h.cmd.Stderr = &h.out
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("host %s: %w", name, err)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		err := h.cmd.Wait()
		rc := 0
		if err != nil {
			rc = -1
			if ee, ok := err.(*exec.ExitError); ok {
				rc = ee.ExitCode()
			}
		}
		b := &Block{Lines: strings.Split(strings.TrimRight(h.out.String(), "\n"), "\n"), RC: rc, Seconds: time.Since(start).Seconds()}
		r.mu.Lock()
		r.Host[name] = b
		r.mu.Unlock()
		close(h.done)
	}()
	return h, nil
}

// Wait waits for the host run to end, killing it after timeout.
func (h *HostRun) Wait(timeout time.Duration) error {
	select {
	case <-h.done:
		return nil
	case <-time.After(timeout):
		h.cmd.Process.Kill()
		<-h.done
		return fmt.Errorf("host %s did not end within %v", h.name, timeout)
	}
}

// Stop ends the host run as a user would, with SIGINT (framesend then
// exits 0 with its summary), and waits for it.
func (h *HostRun) Stop(timeout time.Duration) error {
	h.cmd.Process.Signal(os.Interrupt)
	return h.Wait(timeout)
}

// GuestBlock returns the guest's block NAME, or an error if the guest never
// printed it.
func (r *Run) GuestBlock(name string) (*Block, error) {
	if b, ok := r.Guest[name]; ok {
		r.read["guest "+name] = true
		return b, nil
	}
	return nil, fmt.Errorf("the guest printed no output for %q (did the scenario stop early?)", name)
}

// HostBlock returns the host run NAME's output.
func (r *Run) HostBlock(name string) (*Block, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.Host[name]; ok {
		r.read["host "+name] = true
		return b, nil
	}
	return nil, fmt.Errorf("the host never ran %q", name)
}

var blockLine = regexp.MustCompile(`^@@(BEGIN|END|\|) (\S+) ?(.*)$`)

// parseBlocks collects the guest's @@BEGIN/@@|/@@END blocks.
func parseBlocks(lines []string) map[string]*Block {
	blocks := map[string]*Block{}
	open := map[string]*Block{}
	for _, l := range lines {
		i := strings.Index(l, "@@")
		if i < 0 {
			continue
		}
		m := blockLine.FindStringSubmatch(l[i:])
		if m == nil {
			continue
		}
		switch m[1] {
		case "BEGIN":
			open[m[2]] = &Block{RC: -1}
		case "|":
			if b := open[m[2]]; b != nil {
				b.Lines = append(b.Lines, m[3])
			}
		case "END":
			if b := open[m[2]]; b != nil {
				for _, f := range strings.Fields(m[3]) {
					if rc, ok := strings.CutPrefix(f, "rc="); ok {
						b.RC, _ = strconv.Atoi(rc)
					}
					if sec, ok := strings.CutPrefix(f, "s="); ok {
						b.Seconds, _ = strconv.ParseFloat(sec, 64)
					}
				}
				blocks[m[2]] = b
				delete(open, m[2])
			}
		}
	}
	return blocks
}

// Runner boots scenarios and prints one line per check.
type Runner struct {
	Cache     *Cache
	Out       io.Writer
	Framesend map[string]string // arch -> framesend built for it (static)
	Keep      string            // if set, console logs are kept in this directory
	images    map[string]string
	dists     map[string]*Dist
	guests    map[string]Guest
	tmp       string
}

// NewRunner returns a runner whose guests are built from guests (one per
// architecture) with packages from cache.
func NewRunner(cache *Cache, out io.Writer, framesend map[string]string, guests map[string]Guest) *Runner {
	return &Runner{Cache: cache, Out: out, Framesend: framesend, guests: guests, images: map[string]string{}, dists: map[string]*Dist{}}
}

// Close removes the runner's built images.
func (rn *Runner) Close() {
	if rn.tmp != "" {
		os.RemoveAll(rn.tmp)
	}
}

// Prepare fetches (or finds in the cache) arch's packages and builds its
// guest image.
func (rn *Runner) Prepare(ctx context.Context, arch string, packages ...string) error {
	if _, ok := rn.images[arch]; ok {
		return nil
	}
	d, err := rn.Cache.Fetch(ctx, arch, packages...)
	if err != nil {
		return err
	}
	if rn.tmp == "" {
		if rn.tmp, err = os.MkdirTemp("", "framesend-hil-img-"); err != nil {
			return err
		}
	}
	g := rn.guests[arch]
	g.Framesend = rn.Framesend[arch]
	img := filepath.Join(rn.tmp, arch+".cpio")
	if err := g.Build(ctx, d, img); err != nil {
		return err
	}
	rn.dists[arch] = d
	rn.images[arch] = img
	return nil
}

// Run boots s, runs its host part and its checks, prints a line for each
// check and one for the scenario, and reports whether all passed. On a
// failure it prints the tail of the guest's console.
func (rn *Runner) Run(ctx context.Context, s Scenario) bool {
	start := time.Now()
	fail := func(what string, err error, vm *VM) bool {
		fmt.Fprintf(rn.Out, "FAIL  %-48s %5.1fs  %s: %v\n", s.Name, time.Since(start).Seconds(), what, err)
		if vm != nil {
			rn.diagnose(s.Name, vm)
		}
		return false
	}
	d, ok := rn.dists[s.Arch]
	if !ok {
		return fail("prepare", fmt.Errorf("no guest image for %s", s.Arch), nil)
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	dir, err := os.MkdirTemp(rn.tmp, s.Name+"-")
	if err != nil {
		return fail("prepare", err, nil)
	}
	script := filepath.Join(dir, "scenario.sh")
	if err := os.WriteFile(script, []byte(s.Script), 0o644); err != nil {
		return fail("prepare", err, nil)
	}
	m := Machine{
		Arch:   s.Arch,
		Kernel: d.KernelImage,
		Initrd: rn.images[s.Arch],
		FwCfg:  map[string]string{"framesend/scenario": script},
	}
	for name, data := range s.Files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fail("prepare", err, nil)
		}
		m.FwCfg["framesend/"+name] = p
	}
	switch s.Arch {
	case "arm64":
		m.Console = "pci-serial"
		m.Append = "console=ttyS0 panic=-1 quiet"
	default:
		m.Append = "console=ttyS0 panic=-1 quiet"
	}
	if s.Image != nil {
		b, err := s.Image(ctx, d, dir)
		if err != nil {
			return fail("build the guest image", err, nil)
		}
		m.Initrd, m.Append, m.Memory = b.Initrd, b.Append, b.Memory
	}
	if b := s.Board; b != nil {
		m.Type, m.DTB, m.Append, m.Console, m.FwCfg = b.Type, filepath.Join(d.KernelRoot(), "usr/lib/linux-image-"+d.KernelRelease, b.DTB), b.Append, "serial", nil
		g := rn.guests[s.Arch]
		g.Framesend = rn.Framesend[s.Arch]
		g.Files = maps.Clone(g.Files)
		if g.Files == nil {
			g.Files = map[string]string{}
		}
		g.Files["etc/hil/scenario.sh"] = script
		for name := range s.Files {
			g.Files["etc/hil/"+name] = filepath.Join(dir, name)
		}
		m.Initrd = filepath.Join(dir, "guest.cpio")
		if err := g.Build(ctx, d, m.Initrd); err != nil {
			return fail("prepare", err, nil)
		}
	}
	if rn.Keep != "" {
		os.MkdirAll(rn.Keep, 0o755)
		m.Log = filepath.Join(rn.Keep, s.Name+".log")
	}
	if s.Devices != nil {
		s.Devices(&m)
	}
	vm, err := Start(ctx, m)
	if err != nil {
		return fail("start QEMU", err, nil)
	}
	defer vm.Close()
	r := &Run{VM: vm, Framesend: rn.Framesend[hostArch()], Host: map[string]*Block{}, read: map[string]bool{}}
	if err := vm.Cont(); err != nil {
		return fail("cont", err, vm)
	}
	if _, err := vm.Expect(ctx, "@@START"); err != nil {
		return fail("boot", err, vm)
	}
	booted := time.Since(start)
	if s.Host != nil {
		if err := s.Host(ctx, r); err != nil {
			r.wg.Wait()
			return fail("host side", err, vm)
		}
	}
	r.wg.Wait()
	if _, err := vm.Expect(ctx, "@@DONE"); err != nil {
		return fail("guest", err, vm)
	}
	if s.Board != nil {
		// The board cannot power off: stop QEMU once dmesg is out.
		if _, err := vm.Expect(ctx, "@@END dmesg"); err != nil {
			return fail("guest", err, vm)
		}
		vm.Kill()
	} else if err := vm.Wait(ctx); err != nil {
		return fail("power off", err, vm)
	}
	r.Guest = parseBlocks(vm.Lines())
	passed := true
	for _, c := range s.Checks {
		// A check's time is how long the commands it looked at ran
		// (guest and host side run at once: the longer of the two).
		r.read = map[string]bool{}
		detail, err := c.Fn(r)
		var guest, host float64
		for k := range r.read {
			if name, ok := strings.CutPrefix(k, "guest "); ok {
				guest += r.Guest[name].Seconds
			} else if name, ok := strings.CutPrefix(k, "host "); ok {
				host += r.Host[name].Seconds
			}
		}
		name := s.Name + "/" + c.Name
		if err != nil {
			passed = false
			fmt.Fprintf(rn.Out, "FAIL  %-48s %5.1fs  %v\n", name, max(guest, host), err)
			continue
		}
		fmt.Fprintf(rn.Out, "PASS  %-48s %5.1fs  %s\n", name, max(guest, host), detail)
	}
	verdict := "PASS"
	if !passed {
		verdict = "FAIL"
	}
	fmt.Fprintf(rn.Out, "%s  %-48s %5.1fs  boot %.1fs, %d checks\n", verdict, s.Name, time.Since(start).Seconds(), booted.Seconds(), len(s.Checks))
	if !passed {
		rn.diagnose(s.Name, vm)
	}
	return passed
}

// diagnose prints the end of the guest's console for a failure: the
// scenario's own lines and the kernel's log (the guest prints dmesg last)
// apart, so neither hides the other.
func (rn *Runner) diagnose(name string, vm *VM) {
	var own, kernel []string
	for _, l := range strings.Split(vm.Tail(100000), "\n") {
		if strings.HasPrefix(l, "@@| dmesg ") {
			kernel = append(kernel, strings.TrimPrefix(l, "@@| dmesg "))
		} else {
			own = append(own, l)
		}
	}
	tail := func(l []string, n int) string {
		if len(l) > n {
			l = l[len(l)-n:]
		}
		return strings.Join(l, "\n")
	}
	fmt.Fprintf(rn.Out, "----- %s: the guest's console, last 40 lines -----\n%s\n", name, tail(own, 40))
	if len(kernel) > 0 {
		fmt.Fprintf(rn.Out, "----- %s: the guest's dmesg, last 25 lines -----\n%s\n", name, tail(kernel, 25))
	}
	fmt.Fprintln(rn.Out, "-----")
}

// hostArch is the host's architecture in Debian's (and Go's) words.
func hostArch() string { return runtime.GOARCH }
