package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framesend/framesend/hil"
	"github.com/framesend/framesend/packaging/deb"
)

// debAmd64 is the package the systemd guest installs (-deb-amd64).
var debAmd64 string

// systemdFrames is what the host's listen verifies after each plug-in.
const systemdFrames = 2000

// systemdUnit: Debian booted with systemd as PID 1 and the framesend
// package installed. Plugging the FT232 in from the monitor starts
// framesend@ttyUSB0.service through the rules' SYSTEMD_WANTS, and its
// frames reach the host; unplugging it stops the unit (BindsTo); plugging
// it in again starts it again. systemd-analyze security rates the unit.
func systemdUnit(debFile string) hil.Scenario {
	n := strconv.Itoa(systemdFrames)
	return hil.Scenario{
		Name: "x86-systemd-unit", Arch: "amd64", Timeout: 8 * time.Minute,
		Devices: func(m *hil.Machine) {
			m.Ptys = []string{"usb0"}
			m.Devices = []string{"qemu-xhci,id=xhci"} // the adapter comes later, by device_add
		},
		Image: func(ctx context.Context, d *hil.Dist, dir string) (hil.Boot, error) {
			if debFile == "" {
				return hil.Boot{}, fmt.Errorf("no framesend package: pass -deb-amd64 (make hil builds it with make deb)")
			}
			root, err := deb.DebianRoot(deb.CacheDir())
			if err != nil {
				return hil.Boot{}, err
			}
			g := hil.SystemdGuest{
				Root:    root,
				Files:   map[string]string{"root/" + filepath.Base(debFile): debFile},
				Modules: []string{"xhci_pci", "ftdi_sio"},
				Script:  systemdScript,
			}
			img := filepath.Join(dir, "systemd.cpio")
			if err := g.Build(ctx, d, img); err != nil {
				return hil.Boot{}, err
			}
			return hil.Boot{Initrd: img, Append: hil.SystemdAppend, Memory: "1536M"}, nil
		},
		Host: func(ctx context.Context, r *hil.Run) error {
			listen := func(name string) (*hil.HostRun, error) {
				r.VM.Flush("usb0")
				h, err := r.Start(name, "listen", "--port", r.VM.Pty("usb0"), "--expect", "counter", "--count", n, "--quiet", "--timeout", "60s")
				time.Sleep(300 * time.Millisecond) // listen opens the pty
				return h, err
			}
			plug := func() error {
				return r.VM.Plug(map[string]string{"driver": "usb-serial", "chardev": "usb0", "id": "ftdi0", "serial": ftdiSerial})
			}
			if err := r.Sync(ctx, "plug"); err != nil {
				return err
			}
			l1, err := listen("listen_first")
			if err != nil {
				return err
			}
			if err := plug(); err != nil {
				return err
			}
			l1.Wait(90 * time.Second)
			stop := drain(r.VM.Pty("usb0"))
			if err := r.Sync(ctx, "started"); err != nil {
				stop()
				return err
			}
			err = r.VM.Unplug(ctx, "ftdi0")
			stop()
			if err != nil {
				return err
			}
			if err := r.Go("unplugged"); err != nil {
				return err
			}
			if err := r.Sync(ctx, "stopped"); err != nil {
				return err
			}
			l2, err := listen("listen_again")
			if err != nil {
				return err
			}
			if err := plug(); err != nil {
				return err
			}
			l2.Wait(90 * time.Second)
			stop = drain(r.VM.Pty("usb0"))
			defer stop()
			if err := r.Sync(ctx, "restarted"); err != nil {
				return err
			}
			// Unplugged at the end, the adapter no longer sends into a
			// pty nobody reads once the drain stops.
			if err := r.VM.Unplug(ctx, "ftdi0"); err != nil {
				return err
			}
			return r.Go("done")
		},
		Script: systemdScript,
		Checks: []hil.Check{
			{Name: "package-installed", Fn: func(r *hil.Run) (string, error) {
				if b, err := r.GuestBlock("install"); err != nil || b.RC != 0 {
					return "", fmt.Errorf("apt install ./framesend_…_amd64.deb: %v %+v", err, b)
				}
				v, err := r.GuestBlock("version")
				if err != nil {
					return "", err
				}
				version := strings.TrimPrefix(strings.TrimSpace(v.Text()), "framesend version ")
				if err := want(r, "dpkg", 0, version+" installed"); err != nil {
					return "", err
				}
				if err := want(r, "pid1", 0, "systemd"); err != nil {
					return "", err
				}
				return "apt install of framesend " + version + " on the running system, systemd is PID 1", nil
			}},
			{Name: "install-reloads-systemd", Fn: reloadCheck("reloads_install", "install")},
			{Name: "nothing-enabled", Fn: func(r *hil.Run) (string, error) {
				if err := want(r, "enabled", 1, "disabled"); err != nil {
					return "", err
				}
				if err := want(r, "before", 3, "inactive"); err != nil {
					return "", err
				}
				return "framesend@.service disabled, framesend@ttyUSB0.service inactive before the adapter", nil
			}},
			{Name: "admin-opt-in", Fn: func(r *hil.Run) (string, error) {
				if err := want(r, "admin", 0, "1"); err != nil {
					return "", err
				}
				return "README's sed: /etc/udev/rules.d/99-framesend.rules with SYSTEMD_WANTS, rules reloaded", nil
			}},
			{Name: "udev-systemd-wants", Fn: func(r *hil.Run) (string, error) {
				b, err := r.GuestBlock("udev")
				if err != nil {
					return "", err
				}
				t := b.Text()
				if !strings.Contains(t, "SYSTEMD_WANTS=framesend@ttyUSB0.service") || !regexp.MustCompile(`(?m)^TAGS=.*:systemd:`).MatchString(t) {
					return "", fmt.Errorf("udev gave /dev/ttyUSB0 no systemd tag or SYSTEMD_WANTS:\n%s", t)
				}
				return "TAGS has systemd, SYSTEMD_WANTS=framesend@ttyUSB0.service", nil
			}},
			{Name: "plug-starts-unit", Fn: func(r *hil.Run) (string, error) {
				s, err := unitState(r, "started")
				if err != nil {
					return "", err
				}
				if s["ActiveState"] != "active" || s["MainPID"] == "0" {
					return "", fmt.Errorf("after device_add: %v, want active with a main PID", s)
				}
				return "active (" + s["SubState"] + "), PID " + s["MainPID"], nil
			}},
			{Name: "frames-reach-host", Fn: listenCheck("listen_first")},
			{Name: "unplug-stops-unit", Fn: func(r *hil.Run) (string, error) {
				s, err := unitState(r, "stopped")
				if err != nil {
					return "", err
				}
				if s["ActiveState"] != "inactive" && s["ActiveState"] != "failed" {
					return "", fmt.Errorf("after device_del: %v, want inactive", s)
				}
				if err := want(r, "node", 1, ""); err != nil {
					return "", fmt.Errorf("/dev/ttyUSB0 is still there: %v", err)
				}
				return fmt.Sprintf("%s (%s), result %s", s["ActiveState"], s["SubState"], s["Result"]), nil
			}},
			{Name: "replug-starts-unit", Fn: func(r *hil.Run) (string, error) {
				first, err := unitState(r, "started")
				if err != nil {
					return "", err
				}
				s, err := unitState(r, "restarted")
				if err != nil {
					return "", err
				}
				if s["ActiveState"] != "active" || s["MainPID"] == "0" || s["MainPID"] == first["MainPID"] {
					return "", fmt.Errorf("after the second device_add: %v (first run PID %s), want active with a new PID", s, first["MainPID"])
				}
				return "active again, PID " + s["MainPID"], nil
			}},
			{Name: "frames-after-replug", Fn: listenCheck("listen_again")},
			{Name: "remove-keeps-settings", Fn: func(r *hil.Run) (string, error) {
				b, err := r.GuestBlock("after_remove")
				if err != nil {
					return "", err
				}
				t := b.Text()
				if strings.Count(t, "No such file") != 3 || !strings.Contains(t, "FRAMESEND_RATE=2000") {
					return "", fmt.Errorf("after apt remove, want the binary, unit and rules gone and the admin's settings kept:\n%s", t)
				}
				return reloadCheck("reloads_remove", "remove")(r)
			}},
			{Name: "purge-removes-settings", Fn: func(r *hil.Run) (string, error) {
				b, err := r.GuestBlock("after_purge")
				if err != nil {
					return "", err
				}
				if t := b.Text(); !strings.Contains(t, "'/etc/default/framesend': No such file") || !strings.Contains(t, "no packages found") {
					return "", fmt.Errorf("after apt purge, want /etc/default/framesend and the package gone:\n%s", t)
				}
				return "/etc/default/framesend gone, dpkg knows no framesend", nil
			}},
			{Name: "systemd-analyze-security", Fn: func(r *hil.Run) (string, error) {
				b, err := r.GuestBlock("security")
				if err != nil {
					return "", err
				}
				m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`).FindStringSubmatch(b.Text())
				if m == nil {
					return "", fmt.Errorf("no exposure level (exit %d):\n%s", b.RC, b.Text())
				}
				score, _ := strconv.ParseFloat(m[1], 64)
				if score > 2.0 {
					return "", fmt.Errorf("exposure %.1f, want 2.0 or less:\n%s", score, b.Text())
				}
				return "exposure " + m[1] + " " + m[2] + " (live, inside the guest)", nil
			}},
		},
	}
}

// The guest's part. wait_state waits (up to 60 s) for the unit's
// ActiveState to be one of its arguments.
const systemdScript = `
unit=framesend@ttyUSB0.service
wait_state() {
	i=0
	while [ $i -lt 600 ]; do
		s=$(systemctl show -P ActiveState $unit)
		for w in "$@"; do [ "$s" = "$w" ] && return 0; done
		sleep 0.1
		i=$((i + 1))
	done
	echo "@@SYNC timeout: $unit stayed $s, want $*"
	return 1
}
show() { systemctl show -p ActiveState -p SubState -p Result -p MainPID -p NRestarts $unit; }

# reloads [N]: how many times systemd has reloaded its units; with N, wait
# (up to 10 s) for the journal to show more than N.
reloads() {
	i=0
	while c=$(journalctl -b _PID=1 -o cat | grep -c '^Reloading'); [ $i -lt 100 ] && [ "$c" -le "${1:--1}" ]; do
		sleep 0.1
		i=$((i + 1))
	done
	echo "$c"
}
reloads_since() { echo "$1 $(reloads "$1")"; }

run pid1 cat /proc/1/comm
# Installed on the running system, as the README says; then the admin's
# part, as the README says: the rules copied to /etc/udev/rules.d with the
# SYSTEMD_WANTS line uncommented (replacing the package's file of the same
# name), a setting in /etc/default/framesend.
reloads0=$(reloads) # not $n: lib.sh's run uses n
run install apt install -y /root/framesend_*_amd64.deb
run reloads_install reloads_since $reloads0
run version framesend --version
run dpkg dpkg-query -W -f '${Version} ${db:Status-Status}\n' framesend
run enabled systemctl is-enabled framesend@.service
run before systemctl is-active $unit
run admin sh -ec '
sed "s/^#TAG+=\"systemd\"/TAG+=\"systemd\"/" /usr/lib/udev/rules.d/99-framesend.rules \
    > /etc/udev/rules.d/99-framesend.rules
echo FRAMESEND_RATE=2000 >> /etc/default/framesend
udevadm control --reload-rules
grep -c "^TAG+=" /etc/udev/rules.d/99-framesend.rules'
run security systemd-analyze security $unit

sync_host plug
wait_state active
run started show
run udev udevadm info -q property -n /dev/ttyUSB0
sync_host started

wait_host unplugged
wait_state inactive failed
run stopped show
run node test -e /dev/ttyUSB0
sync_host stopped

wait_state active
run restarted show
sync_host restarted
wait_host done
wait_state inactive failed
run journal journalctl -u $unit --no-pager -o short-monotonic

reloads0=$(reloads)
run remove apt remove -y framesend
run reloads_remove reloads_since $reloads0
run after_remove sh -c 'ls /usr/bin/framesend /usr/lib/systemd/system/framesend@.service /usr/lib/udev/rules.d/99-framesend.rules 2>&1; cat /etc/default/framesend'
run purge apt purge -y framesend
run after_purge sh -c 'ls /etc/default/framesend 2>&1; dpkg-query -W framesend 2>&1'
`

// drain reads and throws away what the guest sends on the pty at path
// until the returned function is called. The unit sends for as long as the
// adapter is plugged in, and QEMU's usb-serial writes to its chardev with
// write_all: once a pty nobody reads is full, QEMU waits in that write and
// the whole machine, console included, stops.
func drain(path string) (stop func()) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-quit:
				return
			default:
			}
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if n, _ := unix.Poll(fds, 50); n > 0 {
				if _, err := unix.Read(fd, buf); err != nil && err != unix.EAGAIN {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		unix.Close(fd)
	}
}

// reloadCheck: the package's maintainer script made systemd reload (the
// journal shows one more "Reloading" of PID 1 than before).
func reloadCheck(name, what string) func(r *hil.Run) (string, error) {
	return func(r *hil.Run) (string, error) {
		b, err := r.GuestBlock(name)
		if err != nil {
			return "", err
		}
		var before, after int
		if _, err := fmt.Sscanf(strings.TrimSpace(b.Text()), "%d %d", &before, &after); err != nil || after <= before {
			return "", fmt.Errorf("systemd did not reload during apt %s: reloads in the journal before and after: %q", what, b.Text())
		}
		return fmt.Sprintf("systemd reloaded during apt %s (PID 1's reloads: %d, then %d)", what, before, after), nil
	}
}

// unitState parses a block of systemctl show lines.
func unitState(r *hil.Run, name string) (map[string]string, error) {
	b, err := r.GuestBlock(name)
	if err != nil {
		return nil, err
	}
	s := map[string]string{}
	for _, l := range b.Lines {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			s[k] = v
		}
	}
	if b.RC != 0 || s["ActiveState"] == "" {
		return nil, fmt.Errorf("%s: exit %d:\n%s", name, b.RC, b.Text())
	}
	return s, nil
}

// listenCheck: the host's listen --expect counter verified every frame the
// unit sent.
func listenCheck(name string) func(r *hil.Run) (string, error) {
	return func(r *hil.Run) (string, error) {
		h, err := r.HostBlock(name)
		if err != nil {
			return "", err
		}
		verified := fmt.Sprintf("counter stream verified (%d frames in order)", systemdFrames)
		if h.RC != 0 || !strings.Contains(h.Text(), verified) {
			return "", fmt.Errorf("host listen exit %d, want 0 and %q:\n%s", h.RC, verified, h.Text())
		}
		return strings.TrimPrefix(lastLine(h), "framesend: "), nil
	}
}
