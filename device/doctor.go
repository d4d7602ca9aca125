//go:build linux

package device

import (
	"bufio"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Status is how a doctor check came out.
type Status string

// Check outcomes.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Check is one thing the doctor looked at.
type Check struct {
	Name   string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// System is the machine the doctor examines: a root directory ("/", or a
// fake tree in tests), who would open the port, and that user's name.
type System struct {
	Root string
	Who  Identity
	User string
}

// ThisSystem returns the running system as the current user sees it.
func ThisSystem() System {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return System{Root: "/", Who: Self(), User: name}
}

func (s System) path(p string) string { return filepath.Join(s.Root, p) }

// Doctor checks port (a /dev path, or "" for the system alone) and the
// system around it, and says how to fix what is wrong. It opens no device.
func Doctor(s System, port string) []Check {
	var checks []Check
	add := func(name string, st Status, detail, fix string) {
		checks = append(checks, Check{Name: name, Status: st, Detail: detail, Fix: fix})
	}
	ports, _ := List(s.Root, s.Who)

	var name string // the kernel name behind port, such as ttyUSB0
	var info *Info
	if port == "" {
		switch len(ports) {
		case 0:
			add("port", Warn, "no serial ports found", "plug in the adapter; dmesg shows whether the kernel saw it")
		default:
			var names []string
			for _, p := range ports {
				names = append(names, p.Path)
			}
			add("port", OK, "serial ports: "+strings.Join(names, ", "), "")
		}
	} else {
		real, err := filepath.EvalSymlinks(s.path(port))
		fi, serr := os.Stat(s.path(port))
		switch {
		case err != nil || serr != nil:
			add("port", Fail, port+" does not exist", "framesend ports lists the serial ports; USB adapters appear as /dev/ttyUSB* or /dev/ttyACM*")
		default:
			rel, _ := filepath.Rel(s.Root, real)
			name = filepath.Base(rel)
			for i := range ports {
				if ports[i].Name == name {
					info = &ports[i]
				}
			}
			switch {
			case fi.IsDir():
				add("port", Fail, port+" is a directory", "--port must be a serial device such as /dev/ttyUSB0")
			case info == nil && fi.Mode()&os.ModeCharDevice == 0:
				add("port", Fail, port+" is not a serial device", "--port must be a serial device such as /dev/ttyUSB0")
			case "/"+rel == "/dev/ptmx" || "/"+rel == "/dev/pts/ptmx":
				add("port", Fail, port+" is the pseudo-terminal multiplexer: each open makes a new pseudo-terminal that nobody reads", "use the pseudo-terminal itself, such as the /dev/pts/N or the link socat made")
				name = ""
			case info == nil && !s.isTerminal(port):
				add("port", Fail, port+" is a character device but not a terminal, so not a serial port", "--port must be a serial device such as /dev/ttyUSB0, /dev/ttyAMA0 or a socat pty")
				name = ""
			default:
				add("port", OK, describe(port, "/"+rel, info), "")
				if strings.HasPrefix(rel, "dev/pts/") {
					name = "pts/" + filepath.Base(rel)
				}
			}
		}
	}

	if name != "" {
		s.checkAccess(port, add)
		s.checkHolders(port, add)
	}
	s.checkBrltty(info, add)
	s.checkConsole(name, add)
	s.checkPi(add)
	s.checkRules(add)
	return checks
}

func describe(port, real string, in *Info) string {
	d := port
	if real != port {
		d += " → " + real
	}
	if in == nil {
		if strings.HasPrefix(real, "/dev/pts/") {
			return d + " is a pseudo-terminal (a virtual serial port, such as one of a socat pair)"
		}
		return d + " is a terminal device"
	}
	var parts []string
	if in.Manufacturer != "" || in.Product != "" {
		parts = append(parts, strings.TrimSpace(in.Manufacturer+" "+in.Product))
	}
	if in.VID != "" {
		parts = append(parts, "USB "+in.VID+":"+in.PID)
	}
	if in.Driver != "" {
		parts = append(parts, "driver "+in.Driver)
	}
	if len(parts) == 0 {
		return d + " is a serial port"
	}
	return d + " is a serial port (" + strings.Join(parts, ", ") + ")"
}

func (s System) checkAccess(port string, add func(string, Status, string, string)) {
	ok, why, fix := access(s.path(port), s.Who, s.groupByID)
	if ok {
		add("access", OK, "you can open "+port, "")
		return
	}
	// Added to the group in /etc/group, but this login predates it.
	if g := s.fileGroup(port); g != "" && s.User != "" && slices.Contains(s.groupMembers(g), s.User) {
		add("access", Fail, fmt.Sprintf("%s is in group %s, but this login session started before that", s.User, g), "log out and in again (or run: newgrp "+g+")")
		return
	}
	add("access", Fail, "you cannot open "+port+": "+why, fix)
}

func (s System) fileGroup(port string) string {
	fi, err := os.Stat(s.path(port))
	if err != nil {
		return ""
	}
	gid := statGid(fi)
	return s.groupByID(gid)
}

// groupByID and groupMembers read root/etc/group, so that fake roots work.
func (s System) groupByID(gid int) string {
	for _, f := range s.groups() {
		if f[2] == strconv.Itoa(gid) {
			return f[0]
		}
	}
	return groupName(gid)
}

func (s System) groupMembers(name string) []string {
	for _, f := range s.groups() {
		if f[0] == name && f[3] != "" {
			return strings.Split(f[3], ",")
		}
	}
	return nil
}

func (s System) groups() [][]string {
	f, err := os.Open(s.path("etc/group"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Split(sc.Text(), ":"); len(fields) == 4 {
			out = append(out, fields)
		}
	}
	return out
}

// checkHolders finds processes with the port open, through root/proc.
func (s System) checkHolders(port string, add func(string, Status, string, string)) {
	holders, providers, hidden := holdersAndProviders(s.Root, port)
	provided := ""
	if len(providers) > 0 {
		provided = " (it is a pseudo-terminal provided by " + strings.Join(providers, ", ") + ")"
	}
	switch {
	case len(holders) > 0:
		add("holders", Fail, port+" is open in "+strings.Join(holders, ", "), "stop that program first: two writers on one port interleave their bytes")
	case hidden:
		add("holders", Warn, "no process you can see has "+port+" open; other users' processes are hidden from you", "run framesend doctor as root to see every process")
	default:
		add("holders", OK, "no other process has "+port+" open"+provided, "")
	}
}

// Holders returns "PID N (name)" for each process under root/proc with the
// device at port open, and whether some processes could not be examined. A
// process that also holds the master side of a pseudo-terminal port (socat
// making a virtual port pair) provides the port: it is not a holder.
func Holders(root, port string) ([]string, bool) {
	holders, _, hidden := holdersAndProviders(root, port)
	return holders, hidden
}

// holdersAndProviders is Holders, with the providers of a pseudo-terminal
// port in a list of their own.
func holdersAndProviders(root, port string) (holders, providers []string, hidden bool) {
	target, err := filepath.EvalSymlinks(filepath.Join(root, port))
	if err != nil {
		return nil, nil, false
	}
	rel, _ := filepath.Rel(root, target)
	want := "/" + rel
	ptyIndex, isPty := strings.CutPrefix(want, "/dev/pts/")
	procs, _ := os.ReadDir(filepath.Join(root, "proc"))
	self := strconv.Itoa(os.Getpid())
	for _, p := range procs {
		pid := p.Name()
		if _, err := strconv.Atoi(pid); err != nil || pid == self {
			continue
		}
		dir := filepath.Join(root, "proc", pid)
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			hidden = hidden || os.IsPermission(err)
			continue
		}
		holds, provides := false, false
		for _, fd := range fds {
			l, _ := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
			switch {
			case l == want:
				holds = true
			case isPty && (l == "/dev/ptmx" || l == "/dev/pts/ptmx"):
				// The master's fdinfo names its pty: "tty-index:\t5".
				info, _ := os.ReadFile(filepath.Join(dir, "fdinfo", fd.Name()))
				for _, line := range strings.Split(string(info), "\n") {
					if v, ok := strings.CutPrefix(line, "tty-index:"); ok && strings.TrimSpace(v) == ptyIndex {
						provides = true
					}
				}
			}
		}
		if !holds && !provides {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
		who := fmt.Sprintf("PID %s (%s)", pid, strings.TrimSpace(string(comm)))
		if provides {
			providers = append(providers, who)
		} else {
			holders = append(holders, who)
		}
	}
	return holders, providers, hidden
}

func (s System) checkBrltty(in *Info, add func(string, Status, string, string)) {
	for _, p := range []string{"usr/bin/brltty", "bin/brltty", "usr/sbin/brltty"} {
		if _, err := os.Stat(s.path(p)); err == nil {
			st := Warn
			if in != nil && in.VID == "1a86" {
				st = Fail
			}
			add("brltty", st, "brltty is installed: it takes CH340/CH341 adapters (USB 1a86:7523) for braille displays, and the port vanishes", "sudo apt remove brltty (unless you use a braille display)")
			return
		}
	}
	add("brltty", OK, "brltty is not installed", "")
}

// checkConsole looks for a kernel console or a login prompt on the port:
// either one writes to the line and reads from it.
func (s System) checkConsole(name string, add func(string, Status, string, string)) {
	if name == "" || strings.HasPrefix(name, "pts/") {
		return // a pseudo-terminal is never the kernel's console or a getty's
	}
	aliases := s.aliases(name)
	cmdline, _ := os.ReadFile(s.path("proc/cmdline"))
	for _, arg := range strings.Fields(string(cmdline)) {
		dev, ok := strings.CutPrefix(arg, "console=")
		if !ok {
			continue
		}
		dev, _, _ = strings.Cut(dev, ",")
		if slices.Contains(aliases, dev) {
			add("console", Fail, "the kernel uses "+name+" as a console ("+arg+"): its messages are mixed into your frames",
				"remove "+arg+" from the kernel command line (/boot/firmware/cmdline.txt on a Pi; raspi-config → Interface Options → Serial Port → no login shell)")
			return
		}
	}
	for _, dir := range []string{"etc/systemd/system/getty.target.wants", "etc/systemd/system/multi-user.target.wants"} {
		for _, a := range aliases {
			unit := "serial-getty@" + a + ".service"
			if _, err := os.Lstat(s.path(filepath.Join(dir, unit))); err == nil {
				add("console", Fail, "a login prompt runs on "+name+" ("+unit+"): it answers your frames",
					"sudo systemctl disable --now "+unit)
				return
			}
		}
	}
	add("console", OK, "no console or login prompt on "+name, "")
}

// aliases returns name and the /dev links that point at it (serial0 …).
func (s System) aliases(name string) []string {
	out := []string{name}
	for _, l := range devLinks(s.Root)["/dev/"+name] {
		out = append(out, filepath.Base(l))
	}
	return out
}

func (s System) checkPi(add func(string, Status, string, string)) {
	model, err := os.ReadFile(s.path("proc/device-tree/model"))
	if err != nil || !strings.Contains(string(model), "Raspberry Pi") {
		return
	}
	m := strings.TrimRight(string(model), "\x00\n")
	target, err := os.Readlink(s.path("dev/serial0"))
	if err != nil {
		add("pi uart", Warn, m+": /dev/serial0 does not exist, so the UART is off", "enable it: raspi-config → Interface Options → Serial Port → hardware enabled (enable_uart=1 in config.txt)")
		return
	}
	uart := filepath.Base(target)
	// A Pi's only 8250-family UART is the mini-UART: ttyS0 under Raspberry
	// Pi OS, ttyS1 under Debian's kernel.
	if strings.HasPrefix(uart, "ttyS") {
		add("pi uart", Warn, m+": /dev/serial0 is "+uart+", the mini-UART, whose baud rate follows the core clock and drifts when it changes",
			"for a steady baud use the PL011: dtoverlay=disable-bt (or miniuart-bt) in config.txt makes serial0 ttyAMA0; or set core_freq=250")
		return
	}
	add("pi uart", OK, m+": /dev/serial0 is "+uart+", the PL011 UART", "")
}

func (s System) checkRules(add func(string, Status, string, string)) {
	for _, p := range []string{"etc/udev/rules.d/99-framesend.rules", "lib/udev/rules.d/99-framesend.rules", "usr/lib/udev/rules.d/99-framesend.rules"} {
		if _, err := os.Stat(s.path(p)); err == nil {
			add("udev rules", OK, "framesend's udev rules are installed (/"+p+")", "")
			return
		}
	}
	add("udev rules", Warn, "framesend's udev rules are not installed: adapters get no /dev/framesend/ name and may not be in group dialout", "install the framesend package (sudo apt install ./framesend_VERSION_ARCH.deb) or run sudo make install (or copy udev/99-framesend.rules to /etc/udev/rules.d/)")
}

// isTerminal reports whether the character device at port answers a
// terminal's ioctl. It is opened without waiting for a carrier and without
// becoming the controlling terminal.
func (s System) isTerminal(port string) bool {
	fd, err := unix.Open(s.path(port), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		// Not to be opened (permissions, or busy): the access and holders
		// checks say why; take it as a terminal here.
		return true
	}
	defer unix.Close(fd)
	return term.IsTerminal(fd)
}
