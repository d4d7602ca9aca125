// Package hil runs framesend against real kernel drivers: Debian's stock
// kernel in a QEMU guest (TCG), with an emulated FT232 bound by ftdi_sio, a
// 16550 bound by the 8250 driver, an aarch64 PL011 bound by amba-pl011, and
// Debian's own systemd-udevd applying the project's udev rules.
//
// The pieces are meant to be reused: Cache fetches and unpacks Debian
// packages once (apt-get download and dpkg-deb -x; nothing is installed on
// the host), Modules resolves a module closure with modprobe --show-depends,
// Initramfs writes a newc archive, and VM starts QEMU paused with its
// monitor and chardev ptys at hand. Scenario ties them together.
package hil

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
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultCacheDir is where fetched packages live unless FRAMESEND_HIL_CACHE
// says otherwise. One machine-wide place, so every checkout and CI run on
// the machine shares one download.
const DefaultCacheDir = "/var/cache/framesend-hil"

// Cache is the shared directory of fetched and unpacked Debian packages.
//
// Layout (see hil/README.md):
//
//	DIR/lock                      flock: one fetch at a time
//	DIR/ARCH/apt/{lists,cache}    apt state for ARCH, private to the cache
//	DIR/ARCH/debs/*.deb           what apt-get download fetched
//	DIR/ARCH/pkg/NAME/            each package unpacked with dpkg-deb -x
//	DIR/ARCH/vmlinux              amd64: the kernel's ELF, for a PVH boot
//	DIR/ARCH/manifest.json        what is there (Dist); written last
type Cache struct {
	Dir string
	Log io.Writer // progress of a fetch; nil for none
}

// OpenCache returns the cache at $FRAMESEND_HIL_CACHE, or DefaultCacheDir.
func OpenCache(log io.Writer) *Cache {
	dir := os.Getenv("FRAMESEND_HIL_CACHE")
	if dir == "" {
		dir = DefaultCacheDir
	}
	return &Cache{Dir: dir, Log: log}
}

// Dist is one architecture's unpacked packages in the cache.
type Dist struct {
	Arch          string            `json:"arch"`           // Debian name: amd64, arm64
	KernelPackage string            `json:"kernel_package"` // linux-image-6.1.0-NN-amd64
	KernelRelease string            `json:"kernel_release"` // 6.1.0-NN-amd64 (uname -r)
	KernelImage   string            `json:"kernel_image"`   // what QEMU's -kernel takes
	Packages      map[string]string `json:"packages"`       // package name -> unpacked root
}

// KernelRoot is the unpacked linux-image package: boot/ and
// lib/modules/RELEASE/ (with modules.dep made by depmod).
func (d *Dist) KernelRoot() string { return d.Packages[d.KernelPackage] }

// Package returns the unpacked root of a package fetched for d.
func (d *Dist) Package(name string) (string, error) {
	if p, ok := d.Packages[name]; ok {
		return p, nil
	}
	return "", fmt.Errorf("hil: package %s was not fetched for %s", name, d.Arch)
}

// Lock takes the cache's lock, waiting for another run's fetch to finish.
// Call the returned function to release it.
func (c *Cache) Lock(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("hil: cache %s: %w (set FRAMESEND_HIL_CACHE to a writable directory)", c.Dir, err)
	}
	f, err := os.OpenFile(filepath.Join(c.Dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("hil: cache lock: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- unix.Flock(int(f.Fd()), unix.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("hil: cache lock %s: %w", f.Name(), err)
		}
	case <-ctx.Done():
		f.Close() // the pending flock returns EBADF
		return nil, ctx.Err()
	}
	return func() { f.Close() }, nil
}

// Fetch returns arch's kernel and the named packages, unpacked, fetching
// whatever the cache does not hold yet. The kernel is the generic one
// (linux-image-ARCH's dependency): the cloud flavour has no USB drivers.
// Set FRAMESEND_HIL_REFRESH=1 to fetch the newest packages again.
func (c *Cache) Fetch(ctx context.Context, arch string, packages ...string) (*Dist, error) {
	unlock, err := c.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	dir := filepath.Join(c.Dir, arch)
	manifest := filepath.Join(dir, "manifest.json")
	d := &Dist{Arch: arch, Packages: map[string]string{}}
	if os.Getenv("FRAMESEND_HIL_REFRESH") == "" {
		if b, err := os.ReadFile(manifest); err == nil && json.Unmarshal(b, d) == nil {
			missing := false
			for _, p := range packages {
				if _, ok := d.Packages[p]; !ok {
					missing = true
				}
			}
			if !missing {
				return d, nil
			}
		}
	}

	if os.Getenv("FRAMESEND_HIL_REFRESH") != "" {
		// Start over: the newest packages, not the ones unpacked before.
		os.RemoveAll(filepath.Join(dir, "pkg"))
		os.RemoveAll(filepath.Join(dir, "debs"))
	}
	apt := newApt(dir, arch)
	if err := apt.update(ctx, c.Log); err != nil {
		return nil, err
	}
	kpkg, err := apt.kernelPackage(ctx)
	if err != nil {
		return nil, err
	}
	d.KernelPackage = kpkg
	d.KernelRelease = strings.TrimPrefix(kpkg, "linux-image-")
	want := append([]string{kpkg}, packages...)
	if err := apt.download(ctx, c.Log, want); err != nil {
		return nil, err
	}
	for _, p := range want {
		root, err := apt.unpack(ctx, c.Log, p)
		if err != nil {
			return nil, err
		}
		d.Packages[p] = root
	}
	if err := depmod(ctx, d.KernelRoot(), d.KernelRelease); err != nil {
		return nil, err
	}
	vmlinuz := filepath.Join(d.KernelRoot(), "boot", "vmlinuz-"+d.KernelRelease)
	d.KernelImage = vmlinuz
	if arch == "amd64" {
		// The ELF inside bzImage boots through PVH: no decompressor, no
		// real-mode setup, seconds saved on every boot under TCG.
		elf := filepath.Join(dir, "vmlinux")
		if err := extractVmlinux(ctx, vmlinuz, elf); err != nil {
			return nil, err
		}
		d.KernelImage = elf
	}
	b, _ := json.MarshalIndent(d, "", "  ")
	if err := writeAtomic(manifest, b); err != nil {
		return nil, err
	}
	return d, nil
}

// apt runs apt-get and apt-cache for one architecture with state kept in
// the cache, so the host's own package lists and architectures are left
// alone (arm64 packages come without dpkg --add-architecture).
type apt struct {
	dir, arch string
	opts      []string
}

func newApt(dir, arch string) *apt {
	return &apt{dir: dir, arch: arch, opts: []string{
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "apt", "lists"),
		"-o", "Dir::Cache=" + filepath.Join(dir, "apt", "cache"),
		"-o", "APT::Architecture=" + arch,
		"-o", "APT::Architectures::=" + arch,
		"-o", "APT::Sandbox::User=root",
		"-o", "Debug::NoLocking=1", // the cache's flock serialises us
		"-q",
	}}
}

func (a *apt) run(ctx context.Context, dir, tool string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, tool, append(append([]string{}, a.opts...), args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("hil: %s %s: %v: %s", tool, strings.Join(args, " "), err, lastLines(stderr.String(), 5))
	}
	return out, nil
}

func (a *apt) update(ctx context.Context, log io.Writer) error {
	for _, d := range []string{"apt/lists/partial", "apt/cache/archives/partial", "debs", "pkg"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return err
		}
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return errors.New("hil: apt-get not found: the guest's kernel and tools come from Debian's archive")
	}
	logf(log, "hil: apt-get update (%s)", a.arch)
	_, err := a.run(ctx, a.dir, "apt-get", "update")
	return err
}

// kernelPackage names the generic kernel of the day, such as
// linux-image-6.1.0-56-amd64.
func (a *apt) kernelPackage(ctx context.Context) (string, error) {
	meta := "linux-image-" + a.arch
	out, err := a.run(ctx, a.dir, "apt-cache", "depends", meta)
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("hil: apt-cache depends %s names no kernel package:\n%s", meta, out)
}

// download fetches, in one apt-get call, the packages not yet unpacked.
func (a *apt) download(ctx context.Context, log io.Writer, names []string) error {
	var args []string
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(a.dir, "pkg", n)); err != nil {
			args = append(args, n+":"+a.arch)
		}
	}
	if len(args) == 0 {
		return nil
	}
	logf(log, "hil: apt-get download %s", strings.Join(args, " "))
	_, err := a.run(ctx, filepath.Join(a.dir, "debs"), "apt-get", append([]string{"download"}, args...)...)
	return err
}

// unpack unpacks a downloaded package (once) under pkg/NAME.
func (a *apt) unpack(ctx context.Context, log io.Writer, name string) (string, error) {
	root := filepath.Join(a.dir, "pkg", name)
	if _, err := os.Stat(root); err == nil {
		return root, nil
	}
	debs := filepath.Join(a.dir, "debs")
	matches, _ := filepath.Glob(filepath.Join(debs, name+"_*_"+a.arch+".deb"))
	if len(matches) == 0 {
		matches, _ = filepath.Glob(filepath.Join(debs, name+"_*_all.deb"))
	}
	if len(matches) == 0 {
		return "", fmt.Errorf("hil: apt-get download %s left no .deb in %s", name, debs)
	}
	deb := matches[len(matches)-1]
	tmp := root + ".tmp"
	os.RemoveAll(tmp)
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, tmp).CombinedOutput(); err != nil {
		return "", fmt.Errorf("hil: dpkg-deb -x %s: %v: %s", deb, err, out)
	}
	if err := os.Rename(tmp, root); err != nil {
		return "", err
	}
	return root, nil
}

func depmod(ctx context.Context, root, release string) error {
	if out, err := exec.CommandContext(ctx, "depmod", "-b", root, release).CombinedOutput(); err != nil {
		return fmt.Errorf("hil: depmod -b %s %s: %v: %s (apt-get install kmod)", root, release, err, out)
	}
	return nil
}

// extractVmlinux finds the xz stream inside a bzImage and decompresses it
// to the kernel's ELF image.
func extractVmlinux(ctx context.Context, vmlinuz, out string) error {
	b, err := os.ReadFile(vmlinuz)
	if err != nil {
		return err
	}
	magic := []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	for off := 0; ; {
		i := bytes.Index(b[off:], magic)
		if i < 0 {
			return fmt.Errorf("hil: no xz-compressed ELF found in %s", vmlinuz)
		}
		off += i
		cmd := exec.CommandContext(ctx, "xz", "-dc", "--single-stream")
		cmd.Stdin = bytes.NewReader(b[off:])
		elf, _ := cmd.Output() // trailing data after the stream is expected
		if bytes.HasPrefix(elf, []byte("\x7fELF")) {
			return writeAtomic(out, elf)
		}
		off++
	}
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// lastLines returns the last n lines of s, for error messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
