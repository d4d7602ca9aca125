//go:build linux

package device

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Info describes a serial port as sysfs and /dev show it. Listing ports
// opens no device: opening a port can reset an Arduino or disturb a port in
// use, and go.bug.st/serial's own list opens every ttyS port.
type Info struct {
	Path         string   `json:"path"` // /dev/ttyUSB0
	Name         string   `json:"name"` // ttyUSB0
	ByID         []string `json:"by_id,omitempty"`
	ByPath       []string `json:"by_path,omitempty"`
	Aliases      []string `json:"aliases,omitempty"` // /dev/serial0 and the like
	Driver       string   `json:"driver,omitempty"`
	VID          string   `json:"vid,omitempty"`
	PID          string   `json:"pid,omitempty"`
	Serial       string   `json:"serial,omitempty"`
	Manufacturer string   `json:"manufacturer,omitempty"`
	Product      string   `json:"product,omitempty"`
	CanOpen      bool     `json:"can_open"`
	Why          string   `json:"why,omitempty"`  // why not, and the fix
	Note         string   `json:"note,omitempty"` // advice, such as which name is stable
}

// Identity is who would open a port: a user ID and its groups. Root
// opens any port.
type Identity struct {
	UID    int
	Groups []int
}

// Self returns the identity of this process.
func Self() Identity {
	groups, _ := os.Getgroups()
	return Identity{UID: os.Geteuid(), Groups: append(groups, os.Getegid())}
}

// List returns the serial ports under root ("/" on a real system; a fake
// tree in tests), sorted by path. It reads root/sys/class/tty and root/dev
// and opens no device.
func List(root string, who Identity) ([]Info, error) {
	ttys, err := os.ReadDir(filepath.Join(root, "sys/class/tty"))
	if err != nil {
		return nil, fmt.Errorf("list serial ports: %w", err)
	}
	links := devLinks(root)
	var out []Info
	for _, e := range ttys {
		name := e.Name()
		sys := filepath.Join(root, "sys/class/tty", name)
		if _, err := os.Stat(filepath.Join(sys, "device")); err != nil {
			continue // virtual: consoles, ptys, vts
		}
		if t, err := os.ReadFile(filepath.Join(sys, "type")); err == nil && strings.TrimSpace(string(t)) == "0" {
			continue // an 8250 placeholder with no UART behind it
		}
		in := Info{Name: name, Path: "/dev/" + name}
		in.Driver = driverOf(filepath.Join(sys, "device"))
		usbInfo(sys, &in)
		for _, l := range links[in.Path] {
			switch {
			case strings.HasPrefix(l, "/dev/serial/by-id/"):
				in.ByID = append(in.ByID, l)
			case strings.HasPrefix(l, "/dev/serial/by-path/"):
				in.ByPath = append(in.ByPath, l)
			default:
				in.Aliases = append(in.Aliases, l)
			}
		}
		in.CanOpen, in.Why = Access(filepath.Join(root, in.Path), who)
		if in.VID != "" && in.Serial == "" {
			in.Note = "no serial number: the by-path name is the stable one (it follows the USB socket)"
		}
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// usbInfo fills the USB fields from the USB device above the tty in sysfs.
func usbInfo(sys string, in *Info) {
	dev, err := filepath.EvalSymlinks(filepath.Join(sys, "device"))
	if err != nil {
		return
	}
	for d := dev; d != "/" && d != "." && strings.Contains(d, "/sys/"); d = filepath.Dir(d) {
		vid, err := os.ReadFile(filepath.Join(d, "idVendor"))
		if err != nil {
			continue
		}
		read := func(f string) string {
			b, _ := os.ReadFile(filepath.Join(d, f))
			return strings.TrimSpace(string(b))
		}
		in.VID = strings.TrimSpace(string(vid))
		in.PID = read("idProduct")
		in.Serial = read("serial")
		in.Manufacturer = read("manufacturer")
		in.Product = read("product")
		return
	}
}

// devLinks maps each device path to the symlinks in root/dev/serial/by-id,
// root/dev/serial/by-path, and root/dev/serial0-style aliases that point at
// it, as paths on the real system.
func devLinks(root string) map[string][]string {
	m := map[string][]string{}
	add := func(dir, name string) {
		link := filepath.Join(dir, name)
		target, err := os.Readlink(link)
		if err != nil {
			return
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		} else {
			target = filepath.Join(root, target)
		}
		rel, err := filepath.Rel(root, filepath.Clean(target))
		if err != nil {
			return
		}
		sysLink, _ := filepath.Rel(root, link)
		m["/"+rel] = append(m["/"+rel], "/"+sysLink)
	}
	for _, sub := range []string{"dev/serial/by-id", "dev/serial/by-path"} {
		dir := filepath.Join(root, sub)
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			add(dir, e.Name())
		}
	}
	dev := filepath.Join(root, "dev")
	entries, _ := os.ReadDir(dev)
	for _, e := range entries {
		if n := e.Name(); e.Type()&os.ModeSymlink != 0 && (strings.HasPrefix(n, "serial") || strings.HasPrefix(n, "tty")) {
			add(dev, n)
		}
	}
	for _, v := range m {
		slices.Sort(v)
	}
	return m
}

// Access reports whether who may open the device at path for reading and
// writing, judged from its owner, group and mode, and if not, why and how
// to fix it. It does not open the device.
func Access(path string, who Identity) (bool, string) {
	ok, why, fix := access(path, who, groupName)
	if fix != "" {
		why += ": " + fix
	}
	return ok, why
}

// access is Access with the reason and the fix apart, naming groups with
// name (which reads the real or a fake /etc/group).
func access(path string, who Identity, name func(int) string) (ok bool, why, fix string) {
	fi, err := os.Stat(path)
	if err != nil {
		return false, fmt.Sprintf("%s does not exist", path), ""
	}
	st, isStat := fi.Sys().(*syscall.Stat_t)
	if !isStat || who.UID == 0 {
		return true, "", ""
	}
	perm := fi.Mode().Perm()
	switch {
	case int(st.Uid) == who.UID && perm&0o600 == 0o600:
		return true, "", ""
	case slices.Contains(who.Groups, int(st.Gid)) && perm&0o060 == 0o060:
		return true, "", ""
	case perm&0o006 == 0o006:
		return true, "", ""
	}
	group := name(int(st.Gid))
	why = fmt.Sprintf("owned by %s:%s with mode %04o", userName(int(st.Uid)), group, perm)
	if perm&0o060 == 0o060 {
		return false, why + ", and you are not in group " + group, "sudo usermod -aG " + group + " $USER, then log in again"
	}
	return false, why, "install framesend's udev rules (sudo make install) to give the dialout group access"
}

func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

func statGid(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Gid)
	}
	return -1
}

// driverOf names the driver of the device at dev (a sysfs path). Since
// Linux 6.5 a UART's tty device hangs under the serial core's own "port"
// and "ctrl" devices (bus serial-base), whose drivers say nothing about the
// hardware: the name is taken from the first device above them with a
// driver of its own, such as serial (8250 on PNP) or dw-apb-uart.
func driverOf(dev string) string {
	dev, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return ""
	}
	for range 4 {
		d, err := os.Readlink(filepath.Join(dev, "driver"))
		if err != nil {
			return ""
		}
		if !strings.Contains(d, "/serial-base/") {
			return filepath.Base(d)
		}
		dev = filepath.Dir(dev)
	}
	return ""
}
