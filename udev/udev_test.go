// Package udev holds framesend's udev rules and systemd unit; its tests check
// that they parse, match the adapters they are for, and are hardened.
package udev

import (
	"bufio"
	"github.com/framesend/framesend/internal/testenv"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// rule is one line of a rules file: its key-value pairs.
type rule struct {
	line  int
	pairs []pair
}

type pair struct {
	key, attr, op, value string
}

var pairRE = regexp.MustCompile(`^([A-Z_]+)(\{[^}]+\})?(==|!=|\+=|-=|:=|=)"([^"]*)"$`)

var knownKeys = map[string]bool{
	"ACTION": true, "DEVPATH": true, "KERNEL": true, "NAME": true, "SYMLINK": true, "SUBSYSTEM": true,
	"DRIVER": true, "ATTR": true, "KERNELS": true, "SUBSYSTEMS": true, "DRIVERS": true, "ATTRS": true,
	"ENV": true, "TAG": true, "TEST": true, "PROGRAM": true, "RESULT": true, "OWNER": true, "GROUP": true,
	"MODE": true, "IMPORT": true, "GOTO": true, "LABEL": true, "RUN": true, "OPTIONS": true,
}

// parseRules reads a rules file strictly: every pair must have a known key
// and a quoted value, pairs are separated by ", ".
func parseRules(t *testing.T, file string) []rule {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rules []rule
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := rule{line: n}
		for _, tok := range strings.Split(line, ", ") {
			m := pairRE.FindStringSubmatch(tok)
			if m == nil {
				t.Fatalf("%s:%d: %q is not KEY{attr}OP\"value\"", file, n, tok)
			}
			if !knownKeys[m[1]] {
				t.Fatalf("%s:%d: unknown key %s", file, n, m[1])
			}
			r.pairs = append(r.pairs, pair{m[1], strings.Trim(m[2], "{}"), m[3], m[4]})
		}
		rules = append(rules, r)
	}
	return rules
}

func TestRulesParse(t *testing.T) {
	rules := parseRules(t, "99-framesend.rules")
	labels := map[string]bool{}
	for _, r := range rules {
		for _, p := range r.pairs {
			if p.key == "LABEL" {
				labels[p.value] = true
			}
		}
	}
	vendors := map[string]bool{}
	for _, r := range rules {
		for _, p := range r.pairs {
			switch p.key {
			case "GOTO":
				if !labels[p.value] {
					t.Errorf("line %d: GOTO %q has no LABEL", r.line, p.value)
				}
			case "MODE":
				m, err := strconv.ParseUint(p.value, 8, 32)
				if err != nil || m&0o002 != 0 {
					t.Errorf("line %d: MODE %q: the rules must never make a device world-writable", r.line, p.value)
				}
			case "ATTRS":
				if p.attr == "idVendor" {
					for _, v := range strings.Split(p.value, "|") {
						vendors[v] = true
					}
				}
			case "ENV":
				if p.attr == "SYSTEMD_WANTS" {
					t.Errorf("line %d: starting the service must be opt-in (a commented line)", r.line)
				}
			}
		}
	}
	for _, v := range []string{"0403", "1a86", "10c4", "067b"} {
		if !vendors[v] {
			t.Errorf("no rule matches USB vendor %s", v)
		}
	}
	text, _ := os.ReadFile("99-framesend.rules")
	if !strings.Contains(string(text), `#TAG+="systemd", ENV{SYSTEMD_WANTS}+="framesend@%k.service"`) || !strings.Contains(string(text), "Opt in") {
		t.Error("the opt-in line for starting framesend@.service, or the comment saying how, is missing")
	}
}

// device is what udev knows of a device when it runs the rules.
type device struct {
	kernel, subsystem string
	attrs             map[string]string // ATTRS{} of the device and its parents
	drivers           []string          // DRIVERS of the device and its parents
	env               map[string]string // set by the builtins usb_id and path_id
}

// result is what the rules did to a device.
type result struct {
	group, mode string
	symlinks    []string
	tags        []string
}

// apply runs the rules on d with udev's semantics for what these rules
// use: glob patterns with | alternatives, GOTO/LABEL, ENV, and $env{}/%k
// substitution.
func apply(rules []rule, d device) result {
	env := map[string]string{"ACTION": "add"}
	var res result
	match := func(pattern, value string) bool {
		for _, alt := range strings.Split(pattern, "|") {
			if ok, _ := path.Match(alt, value); ok {
				return true
			}
		}
		return false
	}
	subst := regexp.MustCompile(`\$env\{([A-Z_]+)\}`)
	expand := func(s string) string {
		s = strings.ReplaceAll(s, "%k", d.kernel)
		return subst.ReplaceAllStringFunc(s, func(m string) string { return env[subst.FindStringSubmatch(m)[1]] })
	}
	skipTo := ""
	for _, r := range rules {
		if skipTo != "" {
			if r.pairs[0].key == "LABEL" && r.pairs[0].value == skipTo {
				skipTo = ""
			}
			continue
		}
		ok := true
		for _, p := range r.pairs {
			if p.op != "==" && p.op != "!=" {
				continue
			}
			var got bool
			switch p.key {
			case "ACTION":
				got = match(p.value, env["ACTION"])
			case "SUBSYSTEM":
				got = match(p.value, d.subsystem)
			case "SUBSYSTEMS":
				got = match(p.value, d.subsystem) || (d.attrs["idVendor"] != "" && match(p.value, "usb"))
			case "KERNEL":
				got = match(p.value, d.kernel)
			case "ATTRS":
				got = match(p.value, d.attrs[p.attr])
			case "DRIVERS":
				got = slices.ContainsFunc(d.drivers, func(s string) bool { return match(p.value, s) })
			case "ENV":
				got = match(p.value, env[p.attr])
			}
			if got != (p.op == "==") {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		for _, p := range r.pairs {
			switch {
			case p.key == "GOTO":
				skipTo = p.value
			case p.key == "ENV" && p.op == "=":
				env[p.attr] = expand(p.value)
			case p.key == "IMPORT":
				for k, v := range d.env {
					env[k] = v
				}
			case p.key == "GROUP":
				res.group = p.value
			case p.key == "MODE":
				res.mode = p.value
			case p.key == "SYMLINK":
				res.symlinks = append(res.symlinks, expand(p.value))
			case p.key == "TAG":
				res.tags = append(res.tags, p.value)
			}
		}
	}
	return res
}

func usbSerial(kernel, vid, serial, driver string) device {
	env := map[string]string{"ID_BUS": "usb", "ID_VENDOR_ID": vid, "ID_PATH_TAG": "pci-0000_00_14_0-usb-0_2_1_0"}
	if serial != "" {
		env["ID_SERIAL_SHORT"] = serial
	}
	return device{kernel: kernel, subsystem: "tty", attrs: map[string]string{"idVendor": vid}, drivers: []string{driver, "usb"}, env: env}
}

// The FT232 (group, mode, /dev/framesend and by-id links), a PC's 16550
// that must be left alone, and the PL011 (ttyAMA0 on the uart-pl011
// driver, the Pi's) are no longer simulated here: make hil runs these rules
// in Debian's own systemd-udevd on the real ftdi_sio, 8250 and amba-pl011
// drivers (hil/cmd/hil, scenarios x86-ftdi-16550 and arm64-pl011), and the
// mini-UART on QEMU's raspi3b board (raspi3b-miniuart), where Debian's
// kernel names it ttyS1. What QEMU cannot emulate (other vendors' adapters,
// a USB disk) and the mini-UART under Raspberry Pi OS's name (ttyS0) stay
// on this evaluator.
func TestRulesMatchTheAdapters(t *testing.T) {
	rules := parseRules(t, "99-framesend.rules")
	cases := []struct {
		name    string
		dev     device
		symlink string // "" = the rules must leave the device alone
	}{
		{"CH340 without serial", usbSerial("ttyUSB1", "1a86", "", "ch341-uart"), "framesend/1a86-pci-0000_00_14_0-usb-0_2_1_0"},
		{"CP210x", usbSerial("ttyUSB2", "10c4", "0001", "cp210x"), "framesend/10c4-0001"},
		{"PL2303", usbSerial("ttyUSB3", "067b", "", "pl2303"), "framesend/067b-pci-0000_00_14_0-usb-0_2_1_0"},
		{"Pi mini-UART", device{kernel: "ttyS0", subsystem: "tty", drivers: []string{"bcm2835-aux-uart"}}, "framesend/ttyS0"},
		{"Arduino (another vendor)", usbSerial("ttyACM0", "2341", "85736323", "cdc_acm"), ""},
		{"a USB disk of an FTDI vendor ID", device{kernel: "sda", subsystem: "block", attrs: map[string]string{"idVendor": "0403"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := apply(rules, c.dev)
			if c.symlink == "" {
				if res.group != "" || res.mode != "" || len(res.symlinks) != 0 {
					t.Errorf("rules changed a device they are not for: %+v", res)
				}
				return
			}
			if res.group != "dialout" || res.mode != "0660" {
				t.Errorf("group %q mode %q, want dialout and 0660", res.group, res.mode)
			}
			if !slices.Equal(res.symlinks, []string{c.symlink}) {
				t.Errorf("symlinks %v, want [%s]", res.symlinks, c.symlink)
			}
			if len(res.tags) != 0 {
				t.Errorf("tags %v: the service must not start unless opted in", res.tags)
			}
		})
	}
	// Opted in, the service starts for the adapter.
	text, _ := os.ReadFile("99-framesend.rules")
	on := filepath.Join(t.TempDir(), "on.rules")
	os.WriteFile(on, []byte(strings.Replace(string(text), `#TAG+="systemd"`, `TAG+="systemd"`, 1)), 0o644)
	if res := apply(parseRules(t, on), usbSerial("ttyUSB0", "0403", "X", "ftdi_sio")); !slices.Equal(res.tags, []string{"systemd"}) {
		t.Errorf("opted in: tags %v, want systemd", res.tags)
	}
}

func TestRulesWithUdevadm(t *testing.T) {
	udevadm := testenv.Tool(t, "udevadm", "udev")
	// An udevadm without verify says "Unknown command verb verify." and fails.
	if err := exec.Command(udevadm, "verify", "--help").Run(); err != nil {
		testenv.Impossible(t, "this system's udevadm has no verify command (systemd 253 and later have it: Debian 13, not 12); TestRulesParse checks the syntax")
	}
	if out, err := exec.Command(udevadm, "verify", "99-framesend.rules").CombinedOutput(); err != nil {
		t.Errorf("udevadm verify: %v\n%s", err, out)
	}
}

// unit reads a unit file into section → key → values.
func unit(t *testing.T, file string) map[string]map[string][]string {
	t.Helper()
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	u := map[string]map[string][]string{}
	section := ""
	for n, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is not KEY=VALUE in a section", file, n+1, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func TestUnit(t *testing.T) {
	u := unit(t, "framesend@.service")
	want := []struct{ section, key, value string }{
		{"Unit", "BindsTo", "dev-%i.device"},
		{"Unit", "After", "dev-%i.device network-online.target"},
		{"Service", "ExecStart", "@BINDIR@/framesend send --port /dev/%I $FRAMESEND_ARGS"},
		{"Service", "EnvironmentFile", "-/etc/default/framesend"},
		{"Service", "Restart", "on-failure"},
		{"Service", "KillSignal", "SIGTERM"},
		{"Service", "DynamicUser", "yes"},
		{"Service", "SupplementaryGroups", "dialout"},
		{"Service", "DeviceAllow", "/dev/%I rw"},
		{"Service", "DevicePolicy", "closed"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "ProtectHome", "yes"},
		{"Service", "PrivateTmp", "yes"},
		{"Service", "RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"},
		{"Install", "WantedBy", "multi-user.target"},
	}
	for _, w := range want {
		if !slices.Contains(u[w.section][w.key], w.value) {
			t.Errorf("[%s] %s=%s missing (have %v)", w.section, w.key, w.value, u[w.section][w.key])
		}
	}
	if v := u["Service"]["DeviceAllow"]; len(v) != 1 {
		t.Errorf("DeviceAllow = %v: the service may use its one port only", v)
	}
}

// render writes the unit with ExecStart pointing at an executable, as
// make install does, and returns the path of an instance of it.
func render(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "framesend")
	os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	text, _ := os.ReadFile("framesend@.service")
	inst := filepath.Join(dir, "framesend@ttyUSB0.service")
	os.WriteFile(inst, []byte(strings.ReplaceAll(string(text), "@BINDIR@", dir)), 0o644)
	return inst
}

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	return testenv.Tool(t, "systemd-analyze", "systemd")
}

func TestUnitWithSystemdAnalyze(t *testing.T) {
	sa := systemdAnalyze(t)
	inst := render(t)
	out, err := exec.Command(sa, "verify", inst).CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// The man page is only there once installed.
		if line != "" && !strings.Contains(line, "man framesend(1)") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
	if err != nil && !strings.Contains(string(out), "man framesend(1)") {
		t.Errorf("systemd-analyze verify: %v", err)
	}

	out, err = exec.Command(sa, "security", "--offline=true", inst).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("systemd-analyze security: exposure %.1f", score)
	if score > 2.0 {
		t.Errorf("exposure %.1f, want 2.0 or less (OK): %s", score, out)
	}
}

// make install DESTDIR=… puts every file where a system looks for it, with
// the unit pointing at the installed binary, and make uninstall takes them
// away again but for the admin's settings.
func TestMakeInstall(t *testing.T) {
	testenv.Tool(t, "make", "make")
	dest := t.TempDir()
	run := func(target string) {
		t.Helper()
		cmd := exec.Command("make", "-C", "..", target, "DESTDIR="+dest, "PREFIX=/usr")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make %s: %v\n%s", target, err, out)
		}
	}
	run("install")
	files := []string{
		"usr/bin/framesend",
		"etc/udev/rules.d/99-framesend.rules",
		"etc/systemd/system/framesend@.service",
		"etc/default/framesend",
		"usr/share/man/man1/framesend.1",
		"usr/share/bash-completion/completions/framesend",
		"usr/share/zsh/site-functions/_framesend",
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("make install did not install %s", f)
		}
	}
	if out, err := exec.Command(filepath.Join(dest, "usr/bin/framesend"), "--version").Output(); err != nil || !strings.HasPrefix(string(out), "framesend version") {
		t.Errorf("installed binary: %q, %v", out, err)
	}
	rules, _ := os.ReadFile(filepath.Join(dest, "etc/udev/rules.d/99-framesend.rules"))
	if src, _ := os.ReadFile("99-framesend.rules"); string(rules) != string(src) {
		t.Error("installed rules differ from udev/99-framesend.rules")
	}
	if page, _ := os.ReadFile(filepath.Join(dest, "usr/share/man/man1/framesend.1")); !strings.Contains(strings.ToLower(string(page)), ".th framesend 1") || !strings.Contains(string(page), "loopback") {
		t.Error("the man page is not a section 1 page covering the commands")
	}
	u := unit(t, filepath.Join(dest, "etc/systemd/system/framesend@.service"))
	if got := u["Service"]["ExecStart"]; !slices.Equal(got, []string{"/usr/bin/framesend send --port /dev/%I $FRAMESEND_ARGS"}) {
		t.Errorf("installed ExecStart = %v, want the binary under PREFIX", got)
	}
	// A second install keeps the admin's settings.
	os.WriteFile(filepath.Join(dest, "etc/default/framesend"), []byte("FRAMESEND_BAUD=9600\n"), 0o644)
	run("install")
	if b, _ := os.ReadFile(filepath.Join(dest, "etc/default/framesend")); string(b) != "FRAMESEND_BAUD=9600\n" {
		t.Error("make install overwrote /etc/default/framesend")
	}
	run("uninstall")
	for _, f := range files {
		_, err := os.Stat(filepath.Join(dest, f))
		if f == "etc/default/framesend" {
			if err != nil {
				t.Error("make uninstall removed the admin's settings")
			}
		} else if err == nil {
			t.Errorf("make uninstall left %s", f)
		}
	}
}
