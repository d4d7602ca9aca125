package hil

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/framesend/framesend/packaging/deb"
)

// SystemdAppend is the kernel command line of a SystemdGuest: systemd is
// PID 1 straight from the initramfs (rdinit), and neither the kernel nor
// systemd writes status lines into the console the host parses.
const SystemdAppend = "console=ttyS0 rdinit=/lib/systemd/systemd panic=-1 quiet loglevel=1 systemd.show_status=0 systemd.log_target=journal"

// SystemdGuest is a whole Debian system that boots systemd as PID 1, with
// its udevd, on Debian's stock kernel: the minimal Debian root of package
// deb (debootstrap, cached), copied, with packages installed by dpkg
// inside it as an admin would, the admin's configuration, the kernel
// modules the devices need (udev loads them, as on any system) and the
// scenario as a service that runs once the system is up. The whole tree is
// the initramfs: no disk, no block or filesystem modules.
type SystemdGuest struct {
	Root    string            // the Debian root (deb.DebianRoot); copied, never changed
	Debs    []string          // host .deb files installed with dpkg -i, in order
	Modules []string          // kernel modules to ship (with their dependencies)
	Files   map[string]string // more files: guest path -> host file
	Setup   string            // sh commands run in the root after the packages (the admin's part)
	Script  string            // the scenario, with guest/lib.sh's helpers, run on the console
}

// hilService runs the scenario on the console once the system is up. The
// console's getty is masked, so the scenario owns ttyS0: what it prints is
// what the host parses, and wait_host reads the host's answers from it.
const hilService = `[Unit]
Description=framesend hardware-in-the-loop scenario
After=systemd-udev-trigger.service systemd-udevd.service local-fs.target

[Service]
Type=exec
ExecStart=/usr/local/sbin/hil-run
StandardInput=tty
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TTYReset=yes

[Install]
WantedBy=multi-user.target
`

const hilRun = `#!/bin/sh
# Runs /etc/hil/scenario.sh as guest/init does in the busybox guest, then
# powers the machine off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
stty raw -echo 2>/dev/null
usleep() { sleep "$(awk "BEGIN { print $1 / 1000000 }")"; }
. /etc/hil/lib.sh
echo "@@START $(cut -d' ' -f1 /proc/uptime)"
( . /etc/hil/scenario.sh )
echo "@@DONE rc=$?"
sync
systemctl poweroff -ff
`

// Build writes the guest's initramfs (uncompressed newc, made with cpio
// from the tree so that owners, modes and links are Debian's) to out.
func (g SystemdGuest) Build(ctx context.Context, d *Dist, out string) error {
	work, err := os.MkdirTemp(filepath.Dir(out), "systemd-root-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, "root")
	if err := deb.CopyTree(g.Root, root); err != nil {
		return fmt.Errorf("hil: %w", err)
	}
	inRoot := func(args ...string) error {
		if out, err := deb.Chroot(root, args...); err != nil {
			return fmt.Errorf("hil: in the guest's root: %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	for i, p := range g.Debs {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("hil: %w", err)
		}
		name := fmt.Sprintf("/tmp/hil-%d.deb", i)
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			return err
		}
		if err := inRoot("dpkg", "-i", name); err != nil {
			return err
		}
		os.Remove(filepath.Join(root, name))
	}
	for dst, src := range g.Files {
		if err := copyFile(src, filepath.Join(root, dst)); err != nil {
			return err
		}
	}
	if g.Setup != "" {
		if err := inRoot("sh", "-ec", g.Setup); err != nil {
			return err
		}
	}

	// The modules the devices need, where the kernel's depmod and udev's
	// modprobe look for them; udev loads them when the hardware appears.
	kos, err := Modules(ctx, d, g.Modules...)
	if err != nil {
		return err
	}
	kroot := d.KernelRoot()
	modDir := filepath.Join("lib", "modules", d.KernelRelease)
	for _, ko := range kos {
		rel, err := filepath.Rel(kroot, ko)
		if err != nil || strings.HasPrefix(rel, "..") {
			return fmt.Errorf("hil: module %s is outside the kernel's tree %s", ko, kroot)
		}
		if err := copyFile(filepath.Join(kroot, rel), filepath.Join(root, "usr", rel)); err != nil {
			return err
		}
	}
	for _, f := range []string{"modules.order", "modules.builtin", "modules.builtin.modinfo"} {
		if err := copyFile(filepath.Join(kroot, modDir, f), filepath.Join(root, "usr", modDir, f)); err != nil {
			return err
		}
	}
	if out, err := exec.CommandContext(ctx, "depmod", "-b", filepath.Join(root, "usr"), d.KernelRelease).CombinedOutput(); err != nil {
		return fmt.Errorf("hil: depmod in the guest's root: %v: %s", err, out)
	}

	files := map[string]string{
		"etc/hil/lib.sh":                          string(guestLib),
		"etc/hil/scenario.sh":                     g.Script,
		"etc/systemd/system/hil-scenario.service": hilService,
		"usr/local/sbin/hil-run":                  hilRun,
	}
	for name, text := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
			return err
		}
	}
	links := map[string]string{
		"etc/systemd/system/multi-user.target.wants/hil-scenario.service": "/etc/systemd/system/hil-scenario.service",
		// The scenario owns the console; nothing asks questions at boot.
		"etc/systemd/system/serial-getty@ttyS0.service": "/dev/null",
		"etc/systemd/system/getty@tty1.service":         "/dev/null",
		"etc/systemd/system/systemd-firstboot.service":  "/dev/null",
	}
	for name, target := range links {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			return err
		}
	}
	// What a test system does not need, so the initramfs stays small.
	for _, dir := range []string{"usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale"} {
		os.RemoveAll(filepath.Join(root, dir))
	}
	// apt installs a local .deb without the archive's package lists, and
	// reads them slowly under TCG.
	lists, _ := filepath.Glob(filepath.Join(root, "var/lib/apt/lists/*_*"))
	for _, l := range lists {
		os.Remove(l)
	}

	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	cpio := exec.CommandContext(ctx, "sh", "-c", "find . -print0 | LC_ALL=C sort -z | cpio --null --create --format=newc --quiet")
	cpio.Dir = root
	cpio.Stdout = f
	var stderr strings.Builder
	cpio.Stderr = &stderr
	if err := cpio.Run(); err != nil {
		return fmt.Errorf("hil: cpio: %v: %s", err, stderr.String())
	}
	return f.Close()
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("hil: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
