// Package deb holds what builds framesend's Debian packages (build.sh,
// control, maintainer scripts, lintian overrides) and the tests that install
// them. DebianRoot makes the minimal Debian system they are installed into:
// built once with Debian's own debootstrap and cached, so the tests, CI on
// the same machine and the systemd guest of the hardware-in-the-loop suite
// all reuse it.
package deb

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// RootPackages are added to debootstrap's minbase: what a system that boots
// systemd as PID 1 with udev needs. The package tests use the same root, so
// one cached tree serves both.
var RootPackages = []string{"systemd", "systemd-sysv", "udev", "kmod", "dbus"}

// CacheDir is where the Debian root (and other downloads of the
// hardware-in-the-loop tests) are kept between runs:
// $FRAMESEND_HIL_CACHE, or /var/cache/framesend-hil.
func CacheDir() string {
	if d := os.Getenv("FRAMESEND_HIL_CACHE"); d != "" {
		return d
	}
	return "/var/cache/framesend-hil"
}

// DebianRoot returns the directory of a minimal Debian system (debootstrap
// --variant=minbase of this machine's Debian release, plus RootPackages and
// extra), building it under cacheDir first if it is not there yet. Callers
// must not change it: copy it (CopyTree) and work on the copy. Several
// processes may call it at once; one builds, the others wait for it. It
// needs root and debootstrap, and takes a few minutes the first time.
func DebianRoot(cacheDir string, extra ...string) (string, error) {
	suite, mirror := hostSuite(), hostMirror()
	include := append(append([]string{}, RootPackages...), extra...)
	sum := sha256.Sum256([]byte(suite + " " + mirror + " " + strings.Join(include, ",")))
	dir := filepath.Join(cacheDir, "debian-root-"+suite+"-minbase-"+hex.EncodeToString(sum[:4]))
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("debian root: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(cacheDir, "debian-root.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("debian root: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("debian root: lock %s: %w", lock.Name(), err)
	}
	// Another process may have built it while this one waited.
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	tmp := fmt.Sprintf("%s.tmp%d", dir, os.Getpid())
	os.RemoveAll(tmp)
	args := []string{"--variant=minbase", "--include=" + strings.Join(include, ","), suite, tmp, mirror}
	out, err := exec.Command("debootstrap", args...).CombinedOutput()
	if err != nil {
		os.RemoveAll(tmp)
		log := string(out)
		if len(log) > 4000 {
			log = log[len(log)-4000:]
		}
		return "", fmt.Errorf("debootstrap %s: %w\n%s", strings.Join(args, " "), err, log)
	}
	// The downloaded packages are not needed once installed.
	files, _ := filepath.Glob(filepath.Join(tmp, "var/cache/apt/archives/*.deb"))
	for _, f := range files {
		os.Remove(f)
	}
	// The rename makes the root appear whole or not at all.
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("debian root: %w", err)
	}
	return dir, nil
}

// CopyTree copies the tree src to dst (which must not exist), keeping
// owners, modes, links and device nodes.
func CopyTree(src, dst string) error {
	if out, err := exec.Command("cp", "-a", "--reflink=auto", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("copy %s to %s: %v: %s", src, dst, err, out)
	}
	return nil
}

// Chroot runs a command inside root with /proc and /sys mounted, in a mount
// namespace of its own, so the mounts vanish with it. The environment is a
// plain root shell's, without a terminal: dpkg asks nothing.
func Chroot(root string, args ...string) ([]byte, error) {
	script := `set -e; r=$1; shift; mount -t proc proc "$r/proc"; mount -t sysfs sysfs "$r/sys"; exec chroot "$r" "$@"`
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", root}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive", "HOME=/root"}
	return cmd.CombinedOutput()
}

// hostSuite is this machine's Debian release (bookworm when it cannot tell),
// so debootstrap finds its keyring and the same mirror answers.
func hostSuite() string {
	f, err := os.Open("/etc/os-release")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VERSION_CODENAME="); ok && v != "" {
				return strings.Trim(v, `"`)
			}
		}
	}
	return "bookworm"
}

// hostMirror is the Debian mirror apt uses on this machine.
func hostMirror() string {
	if b, err := os.ReadFile("/etc/apt/sources.list.d/debian.sources"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "URIs:"); ok {
				for _, u := range strings.Fields(v) {
					if strings.HasSuffix(strings.TrimRight(u, "/"), "/debian") {
						return u
					}
				}
			}
		}
	}
	if b, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == "deb" && strings.HasSuffix(strings.TrimRight(f[1], "/"), "/debian") {
				return f[1]
			}
		}
	}
	return "http://deb.debian.org/debian"
}
