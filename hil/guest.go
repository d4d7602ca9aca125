package hil

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// UdevLibraries are the packages holding what Debian 12's udevadm links
// (with what those link), for a guest of another architecture than the
// host's, where ldd cannot say.
var UdevLibraries = []string{"libc6", "libacl1", "libblkid1", "libcap2", "libkmod2", "libselinux1", "libzstd1", "liblzma5", "libssl3", "libpcre2-8-0"}

//go:embed guest/init
var guestInit []byte

//go:embed guest/lib.sh
var guestLib []byte

// Guest describes a busybox guest image. The same image runs every
// scenario of its architecture: the scenario itself comes through fw_cfg.
type Guest struct {
	Modules   []string          // modules to load at boot, with what they need
	Framesend string            // host path of framesend built for the guest's arch
	Udev      bool              // Debian's systemd-udevd and udevadm; on a foreign arch, fetch its libraries' packages too (UdevLibraries)
	Rules     []string          // host files put in /etc/udev/rules.d
	Files     map[string]string // more files: guest path -> host path
}

// Build writes the guest's initramfs for d to out.
func (g Guest) Build(ctx context.Context, d *Dist, out string) error {
	r := NewInitramfs()
	bb, err := d.Package("busybox-static")
	if err != nil {
		return err
	}
	if err := r.File("bin/busybox", filepath.Join(bb, "bin", "busybox"), 0o755); err != nil {
		return err
	}
	r.Bytes("init", guestInit, 0o755)
	r.Bytes("etc/hil/lib.sh", guestLib, 0o644)
	r.Bytes("etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"), 0o644)
	r.Bytes("etc/group", []byte("root:x:0:\ndialout:x:20:\ntty:x:5:\nnogroup:x:65534:\n"), 0o644)

	mods := []string{"qemu_fw_cfg"}
	mods = append(mods, g.Modules...)
	kos, err := Modules(ctx, d, mods...)
	if err != nil {
		return err
	}
	var list strings.Builder
	for i, ko := range kos {
		name := fmt.Sprintf("%02d-%s", i, path.Base(ko))
		if err := r.File("lib/hil/"+name, ko, 0o644); err != nil {
			return err
		}
		fmt.Fprintln(&list, name)
	}
	r.Bytes("etc/hil/modules", []byte(list.String()), 0o644)

	if g.Framesend != "" {
		if err := r.File("usr/bin/framesend", g.Framesend, 0o755); err != nil {
			return err
		}
	}
	if g.Udev {
		u, err := d.Package("udev")
		if err != nil {
			return err
		}
		adm := filepath.Join(u, "bin", "udevadm")
		if err := r.File("bin/udevadm", adm, 0o755); err != nil {
			return err
		}
		r.Symlink("lib/systemd/systemd-udevd", "/bin/udevadm")
		if d.Arch == runtime.GOARCH {
			if err := r.Libraries(ctx, adm); err != nil {
				return err
			}
		} else {
			// ldd cannot run a foreign binary: the libraries come from
			// the architecture's own packages, fetched with it.
			var roots []string
			for _, root := range d.Packages {
				roots = append(roots, root)
			}
			sort.Strings(roots)
			if err := r.ELFLibraries(adm, roots); err != nil {
				return err
			}
		}
		// Debian's serial rules only: the default rules (50-udev-default)
		// would give every tty group dialout and hide what ours do.
		if err := r.File("lib/udev/rules.d/60-serial.rules", filepath.Join(u, "lib", "udev", "rules.d", "60-serial.rules"), 0o644); err != nil {
			return err
		}
		r.Dir("etc/udev/rules.d")
	}
	for _, rule := range g.Rules {
		if err := r.File("etc/udev/rules.d/"+filepath.Base(rule), rule, 0o644); err != nil {
			return err
		}
	}
	for dst, src := range g.Files {
		if err := r.File(dst, src, 0); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return r.WriteFile(out)
}
