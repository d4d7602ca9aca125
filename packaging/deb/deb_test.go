package deb

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"github.com/framesend/framesend/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// requireTool returns the path of a tool the test needs, or skips the test
// saying what to install; with FRAMESEND_REQUIRE_TOOLS set (CI) it fails.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	return testenv.Tool(t, name, pkg)
}

func requireRoot(t *testing.T, why string) {
	t.Helper()
	testenv.Root(t, why)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Every file the package ships, and its mode.
var contents = map[string]string{
	"./usr/bin/framesend":                               "-rwxr-xr-x",
	"./usr/lib/udev/rules.d/99-framesend.rules":         "-rw-r--r--",
	"./usr/lib/systemd/system/framesend@.service":       "-rw-r--r--",
	"./etc/default/framesend":                           "-rw-r--r--",
	"./usr/share/man/man1/framesend.1.gz":               "-rw-r--r--",
	"./usr/share/bash-completion/completions/framesend": "-rw-r--r--",
	"./usr/share/zsh/vendor-completions/_framesend":     "-rw-r--r--",
	"./usr/share/doc/framesend/copyright":               "-rw-r--r--",
	"./usr/share/doc/framesend/changelog.gz":            "-rw-r--r--",
	"./usr/share/lintian/overrides/framesend":           "-rw-r--r--",
}

// build runs make deb into a temporary directory and returns the packages
// by architecture.
func build(t *testing.T, version string, arches ...string) map[string]string {
	t.Helper()
	requireTool(t, "dpkg-deb", "dpkg")
	requireTool(t, "make", "make")
	dir := t.TempDir()
	args := []string{"-C", "../..", "--no-print-directory", "deb", "DEBDIR=" + dir, "DEB_ARCHES=" + strings.Join(arches, " ")}
	if version != "" {
		args = append(args, "VERSION="+version)
	}
	run(t, "make", args...)
	debs := map[string]string{}
	for _, a := range arches {
		m, _ := filepath.Glob(filepath.Join(dir, "framesend_*_"+a+".deb"))
		if len(m) != 1 {
			t.Fatalf("make deb wrote %v for %s, want one framesend_VERSION_%s.deb", m, a, a)
		}
		debs[a] = m[0]
	}
	return debs
}

func field(t *testing.T, deb, name string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, name))
}

// The version make deb uses when none is given: the git tag's, or one made
// from the commit; it is a valid Debian version.
func wantVersion(t *testing.T) string {
	t.Helper()
	v := strings.TrimSpace(run(t, "sh", "../version.sh"))
	run(t, testenv.Tool(t, "dpkg", "dpkg"), "--validate-version", v)
	return v
}

// make deb writes one package per architecture, each with the right
// Architecture, version and files, no dependencies, a binary for that
// architecture, the unit pointing at /usr/bin, the settings as a conffile,
// and lintian finds nothing but what the overrides explain.
func TestPackages(t *testing.T) {
	version := wantVersion(t)
	debs := build(t, "", "amd64", "armhf", "arm64")
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "armhf": elf.EM_ARM, "arm64": elf.EM_AARCH64}
	for arch, deb := range debs {
		t.Run(arch, func(t *testing.T) {
			if got, want := filepath.Base(deb), "framesend_"+version+"_"+arch+".deb"; got != want {
				t.Errorf("package file %s, want %s", got, want)
			}
			for name, want := range map[string]string{"Package": "framesend", "Version": version, "Architecture": arch, "Depends": "", "Pre-Depends": ""} {
				if got := field(t, deb, name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			listing := run(t, "dpkg-deb", "-c", deb)
			seen := map[string]bool{}
			for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
				f := strings.Fields(line)
				if len(f) < 6 {
					t.Fatalf("dpkg-deb -c: %q", line)
				}
				if f[1] != "root/root" {
					t.Errorf("%s is owned by %s, want root/root", f[5], f[1])
				}
				if strings.HasPrefix(f[0], "d") {
					continue
				}
				want, ok := contents[f[5]]
				if !ok {
					t.Errorf("unexpected file %s in the package", f[5])
					continue
				}
				seen[f[5]] = true
				if f[0] != want {
					t.Errorf("%s has mode %s, want %s", f[5], f[0], want)
				}
			}
			for f := range contents {
				if !seen[f] {
					t.Errorf("%s is missing from the package", f)
				}
			}

			x := t.TempDir()
			run(t, "dpkg-deb", "-x", deb, x)
			ctl := t.TempDir()
			run(t, "dpkg-deb", "-e", deb, ctl)
			if b, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); strings.TrimSpace(string(b)) != "/etc/default/framesend" {
				t.Errorf("conffiles = %q, want /etc/default/framesend", b)
			}
			for _, s := range []string{"postinst", "postrm"} {
				b, err := os.ReadFile(filepath.Join(ctl, s))
				if err != nil {
					t.Errorf("no %s: %v", s, err)
					continue
				}
				if !bytes.Contains(b, []byte("udevadm control --reload-rules")) || !bytes.Contains(b, []byte("systemctl daemon-reload")) {
					t.Errorf("%s does not reload udev and systemd", s)
				}
				if bytes.Contains(b, []byte("systemctl enable")) || bytes.Contains(b, []byte("systemctl start")) || bytes.Contains(b, []byte("deb-systemd-helper")) {
					t.Errorf("%s enables or starts something; installing must enable nothing", s)
				}
			}
			unit, _ := os.ReadFile(filepath.Join(x, "usr/lib/systemd/system/framesend@.service"))
			if !bytes.Contains(unit, []byte("\nExecStart=/usr/bin/framesend send ")) || bytes.Contains(unit, []byte("@BINDIR@")) {
				t.Errorf("the unit does not start /usr/bin/framesend:\n%s", unit)
			}
			rules, _ := os.ReadFile(filepath.Join(x, "usr/lib/udev/rules.d/99-framesend.rules"))
			if src, _ := os.ReadFile("../../udev/99-framesend.rules"); !bytes.Equal(rules, src) {
				t.Error("the packaged rules differ from udev/99-framesend.rules")
			}
			copyright, _ := os.ReadFile(filepath.Join(x, "usr/share/doc/framesend/copyright"))
			for _, m := range []string{"go.bug.st/serial", "github.com/urfave/cli/v2", "golang.org/x/sys"} {
				if !bytes.Contains(copyright, []byte(m)) {
					t.Errorf("copyright does not name %s, which is linked into the binary", m)
				}
			}
			f, err := elf.Open(filepath.Join(x, "usr/bin/framesend"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != machines[arch] {
				t.Errorf("binary is for %v, want %v", f.Machine, machines[arch])
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Error("the binary has an ELF interpreter: it is not static")
				}
			}
		})
	}

	t.Run("lintian", func(t *testing.T) {
		lintian := requireTool(t, "lintian", "lintian")
		args := []string{"--fail-on", "error,warning", "--display-info", "--pedantic"}
		for _, a := range []string{"amd64", "armhf", "arm64"} {
			args = append(args, debs[a])
		}
		out, err := exec.Command(lintian, args...).CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "W: ") {
				t.Errorf("lintian: %s", line)
			}
		}
		if err != nil {
			t.Errorf("lintian: %v\n%s", err, out)
		}
		t.Logf("lintian:\n%s", out)
	})

	// The ARM packages' binaries run: armhf on an ARM1176 (the Pi Zero's
	// ARMv6 core), arm64 on the default aarch64 CPU.
	for _, c := range []struct {
		arch, qemu string
		args       []string
	}{
		{"armhf", "qemu-arm", []string{"-cpu", "arm1176"}},
		{"arm64", "qemu-aarch64", nil},
	} {
		t.Run(c.arch+" under "+c.qemu, func(t *testing.T) {
			qemu := requireTool(t, c.qemu, "qemu-user")
			x := t.TempDir()
			run(t, "dpkg-deb", "-x", debs[c.arch], x)
			bin := filepath.Join(x, "usr/bin/framesend")
			got := run(t, qemu, append(append([]string{}, c.args...), bin, "--version")...)
			if want := "framesend version " + version + "\n"; got != want {
				t.Errorf("--version = %q, want %q", got, want)
			}
			out := run(t, qemu, append(append([]string{}, c.args...), bin, "ports", "--json")...)
			var ports []map[string]any
			if err := json.Unmarshal([]byte(out), &ports); err != nil {
				t.Errorf("ports --json under %s: %v\n%s", c.qemu, err, out)
			}
		})
	}
}

func chroot(t *testing.T, root string, args ...string) (string, error) {
	t.Helper()
	out, err := Chroot(root, args...)
	return string(out), err
}

func mustChroot(t *testing.T, root string, args ...string) string {
	t.Helper()
	out, err := chroot(t, root, args...)
	if err != nil {
		t.Fatalf("in the Debian root: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

type check struct{ Check, Status, Detail string }

func doctor(t *testing.T, root string) map[string]check {
	t.Helper()
	out := mustChroot(t, root, "framesend", "doctor", "--json")
	var checks []check
	if err := json.Unmarshal([]byte(out), &checks); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	m := map[string]check{}
	for _, c := range checks {
		m[c.Check] = c
	}
	return m
}

// The amd64 package on a minimal Debian system built with debootstrap: an
// older version installs, the admin edits the settings, the new version
// upgrades it keeping them, ports and doctor run, nothing is enabled; dpkg
// -r removes everything but the settings and --purge removes those too.
func TestInstallInDebianRoot(t *testing.T) {
	requireRoot(t, "debootstrap, chroot and dpkg in the root need it")
	requireTool(t, "debootstrap", "debootstrap")
	requireTool(t, "unshare", "util-linux")
	requireTool(t, "dpkg", "dpkg")

	version := wantVersion(t)
	previous := "0.0.0~0"
	if err := exec.Command("dpkg", "--compare-versions", previous, "lt", version).Run(); err != nil {
		t.Fatalf("the previous version %s must sort below %s", previous, version)
	}
	newDeb := build(t, "", "amd64")["amd64"]
	oldDeb := build(t, previous, "amd64")["amd64"]

	cached, err := DebianRoot(CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "root")
	if err := CopyTree(cached, root); err != nil {
		t.Fatal(err)
	}
	for name, deb := range map[string]string{"old.deb": oldDeb, "new.deb": newDeb} {
		b, err := os.ReadFile(deb)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "tmp", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(p string) bool { _, err := os.Lstat(filepath.Join(root, p)); return err == nil }
	installed := func() string {
		out, err := chroot(t, root, "dpkg-query", "-W", "-f", "${Version} ${db:Status-Status}", "framesend")
		if err != nil {
			return "" // dpkg knows no framesend
		}
		return strings.TrimSpace(out)
	}

	if _, err := chroot(t, root, "sh", "-c", "command -v framesend"); err == nil {
		t.Fatal("framesend is already in the fresh Debian root")
	}

	t.Log(mustChroot(t, root, "dpkg", "-i", "/tmp/old.deb"))
	if got, want := installed(), previous+" installed"; got != want {
		t.Fatalf("after installing the old package: %q, want %q", got, want)
	}
	const edit = "FRAMESEND_BAUD=9600 # the admin's\n"
	f, err := os.OpenFile(filepath.Join(root, "etc/default/framesend"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(edit)
	f.Close()
	edited, _ := os.ReadFile(filepath.Join(root, "etc/default/framesend"))

	// The upgrade runs without a terminal and asks nothing.
	t.Log(mustChroot(t, root, "dpkg", "-i", "/tmp/new.deb"))
	if got, want := installed(), version+" installed"; got != want {
		t.Fatalf("after the upgrade: %q, want %q", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/default/framesend")); !bytes.Equal(b, edited) {
		t.Errorf("the upgrade changed the admin's /etc/default/framesend:\n%s", b)
	}
	for _, leftover := range []string{".dpkg-new", ".dpkg-dist", ".dpkg-old"} {
		if exists("etc/default/framesend" + leftover) {
			t.Errorf("the upgrade left /etc/default/framesend%s", leftover)
		}
	}
	if got, want := mustChroot(t, root, "framesend", "--version"), "framesend version "+version+"\n"; got != want {
		t.Errorf("installed framesend --version = %q, want %q", got, want)
	}
	for p := range contents {
		if !exists(p) {
			t.Errorf("%s is not installed", p)
		}
	}

	// ports sees the same sysfs as this machine's framesend.
	out := mustChroot(t, root, "framesend", "ports", "--json")
	var inside []struct{ Name string }
	if err := json.Unmarshal([]byte(out), &inside); err != nil {
		t.Fatalf("ports --json: %v\n%s", err, out)
	}
	var names []string
	for _, p := range inside {
		names = append(names, p.Name)
	}
	t.Logf("ports in the root: %v", names)
	if slices.Contains(names, "") {
		t.Error("ports listed a port without a name")
	}
	// The same binary outside the root, on the same /sys, sees the same ports.
	hostOut := run(t, filepath.Join(root, "usr/bin/framesend"), "ports", "--json")
	var outside []struct{ Name string }
	json.Unmarshal([]byte(hostOut), &outside)
	var hostNames []string
	for _, p := range outside {
		hostNames = append(hostNames, p.Name)
	}
	if !slices.Equal(names, hostNames) {
		t.Errorf("ports in the root %v, on this machine %v: want the same (one /sys)", names, hostNames)
	}
	if d := doctor(t, root)["udev rules"]; d.Status != "ok" {
		t.Errorf("doctor's udev rules check: %s (%s), want ok with the package installed", d.Status, d.Detail)
	}

	// Installing enabled nothing and wrote no rules of the admin's.
	for _, dir := range []string{"etc/systemd/system", "etc/udev/rules.d"} {
		filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.Contains(d.Name(), "framesend") {
				t.Errorf("installing created %s", p)
			}
			return nil
		})
	}

	t.Log(mustChroot(t, root, "dpkg", "-r", "framesend"))
	if got, want := installed(), version+" config-files"; got != want {
		t.Errorf("after dpkg -r: %q, want %q", got, want)
	}
	for p := range contents {
		if p == "./etc/default/framesend" {
			if b, _ := os.ReadFile(filepath.Join(root, p)); !bytes.Equal(b, edited) {
				t.Errorf("dpkg -r did not keep the admin's %s", p)
			}
		} else if exists(p) {
			t.Errorf("dpkg -r left %s", p)
		}
	}
	t.Log(mustChroot(t, root, "dpkg", "--purge", "framesend"))
	if got := installed(); got != "" && !strings.Contains(got, "not-installed") {
		t.Errorf("after dpkg --purge: %q, want nothing", got)
	}
	if exists("etc/default/framesend") {
		t.Error("dpkg --purge left /etc/default/framesend")
	}
	if exists("usr/share/doc/framesend") {
		t.Error("dpkg --purge left /usr/share/doc/framesend")
	}
}
