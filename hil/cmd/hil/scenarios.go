package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/framesend/framesend/hil"
)

// The FT232's USB serial number, fixed so that its by-id and framesend
// names survive a replug (QEMU otherwise derives one from the USB port).
const (
	ftdiSerial = "A50285BI"
	ftdiByID   = "/dev/serial/by-id/usb-QEMU_QEMU_USB_SERIAL_" + ftdiSerial + "-if00-port0"
	ftdiLink   = "/dev/framesend/0403-" + ftdiSerial
	ftdiDevice = "usb-serial,chardev=usb0,id=ftdi0,serial=" + ftdiSerial
)

// packages are the Debian packages each architecture's guest is built from
// (besides the kernel).
func packages(arch string) []string {
	if arch == runtime.GOARCH {
		return []string{"busybox-static", "udev"}
	}
	return append([]string{"busybox-static", "udev"}, hil.UdevLibraries...)
}

// guests are the guest images: the modules each loads at boot, and on
// amd64 real udev with the project's rules.
// modemlines is the guest helper that reads a 16550's modem lines back
// through its internal loopback (hil/guest/modemlines), built for amd64.
// smoketest is hil/smoketest built for amd64.
func guests(modemlines, smoketest string) map[string]hil.Guest {
	return map[string]hil.Guest{
		"amd64": {Modules: []string{"xhci_pci", "ftdi_sio"}, Udev: true, Rules: []string{"udev/99-framesend.rules"},
			Files: map[string]string{"usr/bin/modemlines": modemlines, "usr/bin/smoketest": smoketest}},
		"arm64": {Udev: true, Rules: []string{"udev/99-framesend.rules"}},
	}
}

func scenarios() []hil.Scenario {
	return []hil.Scenario{x86Devices(), x86Hotplug(), x86Line(), x86Smoketest(), arm64PL011(), raspi3bMiniUART(), systemdUnit(debAmd64)}
}

// x86Machine: the console on ttyS0 (a 16550), an FT232 on xHCI and a
// second 16550 on ttyS1.
func x86Machine(m *hil.Machine) {
	m.Ptys = []string{"usb0", "uart1"}
	m.Devices = []string{
		"qemu-xhci,id=xhci",
		ftdiDevice,
		"isa-serial,index=1,chardev=uart1",
	}
}

const frames = 20000

// x86Devices: udev's work on both devices, ports and doctor on real sysfs,
// frames both ways on each device, and a second sender refused.
func x86Devices() hil.Scenario {
	n := strconv.Itoa(frames)
	return hil.Scenario{
		Name: "x86-ftdi-16550", Arch: "amd64", Devices: x86Machine,
		Script: `
udev_start
devices_ready /dev/ttyUSB0 /dev/ttyS1
run stat_usb stat -c '%U %G %a' /dev/ttyUSB0
run stat_s1 stat -c '%U %G %a' /dev/ttyS1
run framesend_links ls /dev/framesend
run link_framesend readlink -f ` + ftdiLink + `
run link_byid readlink -f ` + ftdiByID + `
run udev_s1 udevadm info -q property -n /dev/ttyS1
run ports framesend ports --json
run doctor_usb framesend doctor --port ` + ftdiLink + ` --json
run doctor_s0 framesend doctor --port /dev/ttyS0 --json

sync_host g2h
wait_host g2h
run send_usb framesend send --port ` + ftdiByID + ` --count ` + n + `
run send_s1 framesend send --port /dev/ttyS1 --count ` + n + `

start listen_usb framesend listen --port ` + ftdiLink + ` --expect counter --count ` + n + ` --quiet --timeout 20s
start listen_s1 framesend listen --port /dev/ttyS1 --expect counter --count ` + n + ` --quiet --timeout 20s
wait_open /dev/ttyUSB0 listen_usb
wait_open /dev/ttyS1 listen_s1
sync_host h2g
finish listen_usb
finish listen_s1

start hold framesend send --port /dev/ttyUSB0 --rate 50
wait_open /dev/ttyUSB0 hold
usleep 500000
run second framesend send --port ` + ftdiLink + ` --count 10
run hold_pid pid hold
kill -INT $(pid hold)
finish hold
`,
		Host: func(ctx context.Context, r *hil.Run) error {
			if err := r.Sync(ctx, "g2h"); err != nil {
				return err
			}
			var hs []*hil.HostRun
			for _, dev := range []string{"usb0", "uart1"} {
				r.VM.Flush(dev)
				h, err := r.Start("listen_"+dev, "listen", "--port", r.VM.Pty(dev), "--expect", "counter", "--count", n, "--quiet", "--timeout", "20s")
				if err != nil {
					return err
				}
				hs = append(hs, h)
			}
			time.Sleep(300 * time.Millisecond) // the listeners open their ptys
			if err := r.Go("g2h"); err != nil {
				return err
			}
			for _, h := range hs {
				h.Wait(60 * time.Second)
			}
			if err := r.Sync(ctx, "h2g"); err != nil {
				return err
			}
			hs = nil
			for _, dev := range []string{"usb0", "uart1"} {
				h, err := r.Start("send_"+dev, "send", "--port", r.VM.Pty(dev), "--count", n)
				if err != nil {
					return err
				}
				hs = append(hs, h)
			}
			for _, h := range hs {
				h.Wait(60 * time.Second)
			}
			return nil
		},
		Checks: []hil.Check{
			{Name: "udev-ftdi-dialout-0660", Fn: func(r *hil.Run) (string, error) {
				if err := want(r, "stat_usb", 0, "root dialout 660"); err != nil {
					return "", err
				}
				return "/dev/ttyUSB0 root:dialout 0660", nil
			}},
			{Name: "udev-ftdi-links", Fn: func(r *hil.Run) (string, error) {
				if err := want(r, "link_framesend", 0, "/dev/ttyUSB0"); err != nil {
					return "", err
				}
				if err := want(r, "link_byid", 0, "/dev/ttyUSB0"); err != nil {
					return "", err
				}
				return ftdiLink + " and " + filepath.Base(ftdiByID) + " → ttyUSB0", nil
			}},
			{Name: "udev-ttyS1-untouched", Fn: func(r *hil.Run) (string, error) {
				if err := want(r, "framesend_links", 0, "0403-"+ftdiSerial); err != nil {
					return "", fmt.Errorf("/dev/framesend holds more than the adapter: %v", err)
				}
				b, err := r.GuestBlock("stat_s1")
				if err != nil {
					return "", err
				}
				if strings.Contains(b.Text(), "dialout") || strings.HasSuffix(b.Text(), "660") {
					return "", fmt.Errorf("ttyS1 is %q, want it left as the kernel made it (not a Pi UART: not ours)", b.Text())
				}
				p, err := r.GuestBlock("udev_s1")
				if err != nil {
					return "", err
				}
				if strings.Contains(p.Text(), "FRAMESEND=") {
					return "", fmt.Errorf("udev set FRAMESEND on ttyS1:\n%s", p.Text())
				}
				return "ttyS1 stays " + b.Text() + ", no /dev/framesend link, no FRAMESEND property", nil
			}},
			{Name: "ports-json", Fn: checkPorts},
			{Name: "doctor", Fn: checkDoctor},
			{Name: "frames-guest-to-host-ftdi", Fn: framesCheck("send_usb", "listen_usb0", true)},
			{Name: "frames-guest-to-host-16550", Fn: framesCheck("send_s1", "listen_uart1", true)},
			{Name: "frames-host-to-guest-ftdi", Fn: framesCheck("listen_usb", "send_usb0", false)},
			{Name: "frames-host-to-guest-16550", Fn: framesCheck("listen_s1", "send_uart1", false)},
			{Name: "second-sender-refused", Fn: func(r *hil.Run) (string, error) {
				second, err := r.GuestBlock("second")
				if err != nil {
					return "", err
				}
				p, err := r.GuestBlock("hold_pid")
				if err != nil {
					return "", err
				}
				pid := strings.TrimSpace(p.Text())
				if second.RC != 1 || !strings.Contains(second.Text(), "PID "+pid) {
					return "", fmt.Errorf("second sender: exit %d, %q; want exit 1 naming the holder, PID %s", second.RC, second.Text(), pid)
				}
				hold, _ := r.GuestBlock("hold")
				if hold == nil || hold.RC != 0 {
					return "", fmt.Errorf("the first sender, stopped by SIGINT: %+v, want exit 0", hold)
				}
				return lastLine(second), nil
			}},
		},
	}
}

// want checks that guest block name exited with rc and printed exactly text.
func want(r *hil.Run, name string, rc int, text string) error {
	b, err := r.GuestBlock(name)
	if err != nil {
		return err
	}
	if b.RC != rc || strings.TrimSpace(b.Text()) != text {
		return fmt.Errorf("%s: exit %d, %q; want exit %d, %q", name, b.RC, b.Text(), rc, text)
	}
	return nil
}

func lastLine(b *hil.Block) string {
	for i := len(b.Lines) - 1; i >= 0; i-- {
		if s := strings.TrimSpace(b.Lines[i]); s != "" {
			return s
		}
	}
	return ""
}

// framesCheck: the sender exited 0 and the far end's listen --expect
// counter verified every frame. guestSends says which side sent.
func framesCheck(guestName, hostName string, guestSends bool) func(r *hil.Run) (string, error) {
	return framesCheckN(guestName, hostName, guestSends, frames)
}

func framesCheckN(guestName, hostName string, guestSends bool, frames int) func(r *hil.Run) (string, error) {
	return func(r *hil.Run) (string, error) {
		g, err := r.GuestBlock(guestName)
		if err != nil {
			return "", err
		}
		h, err := r.HostBlock(hostName)
		if err != nil {
			return "", err
		}
		if g.RC != 0 || h.RC != 0 {
			return "", fmt.Errorf("guest %s exit %d:\n%s\nhost %s exit %d:\n%s", guestName, g.RC, g.Text(), hostName, h.RC, h.Text())
		}
		listener := h
		if !guestSends {
			listener = g
		}
		verified := fmt.Sprintf("counter stream verified (%d frames in order)", frames)
		if !strings.Contains(listener.Text(), verified) {
			return "", fmt.Errorf("the far end did not verify %d frames:\n%s", frames, listener.Text())
		}
		return strings.TrimPrefix(lastLine(listener), "framesend: "), nil
	}
}

type portInfo struct {
	Path         string   `json:"path"`
	ByID         []string `json:"by_id"`
	ByPath       []string `json:"by_path"`
	Driver       string   `json:"driver"`
	VID          string   `json:"vid"`
	PID          string   `json:"pid"`
	Serial       string   `json:"serial"`
	Manufacturer string   `json:"manufacturer"`
	Product      string   `json:"product"`
}

func checkPorts(r *hil.Run) (string, error) {
	b, err := r.GuestBlock("ports")
	if err != nil {
		return "", err
	}
	var ports []portInfo
	if err := json.Unmarshal([]byte(b.Text()), &ports); err != nil || b.RC != 0 {
		return "", fmt.Errorf("ports --json: exit %d, %v:\n%s", b.RC, err, b.Text())
	}
	byPath := map[string]portInfo{}
	for _, p := range ports {
		byPath[p.Path] = p
	}
	usb, ok := byPath["/dev/ttyUSB0"]
	if !ok {
		return "", fmt.Errorf("ports lists no /dev/ttyUSB0:\n%s", b.Text())
	}
	got := fmt.Sprintf("%s %s:%s %s %s/%s by-id %v", usb.Driver, usb.VID, usb.PID, usb.Serial, usb.Manufacturer, usb.Product, usb.ByID)
	wantUSB := fmt.Sprintf("ftdi_sio 0403:6001 %s QEMU/QEMU USB SERIAL by-id [%s]", ftdiSerial, ftdiByID)
	if got != wantUSB {
		return "", fmt.Errorf("ttyUSB0 = %s\nwant      %s", got, wantUSB)
	}
	if len(usb.ByPath) != 1 || !regexp.MustCompile(`^/dev/serial/by-path/pci-0000:00:[0-9a-f.]+-usb-0:1:1\.0-port0$`).MatchString(usb.ByPath[0]) {
		return "", fmt.Errorf("ttyUSB0 by-path = %v, want one pci-…-usb-0:1:1.0-port0 name", usb.ByPath)
	}
	s1, ok := byPath["/dev/ttyS1"]
	if !ok || s1.Driver == "" || s1.VID != "" || len(s1.ByID) != 0 {
		return "", fmt.Errorf("ttyS1 = %+v, want a driver and no USB identity", s1)
	}
	return fmt.Sprintf("ttyUSB0 %s; by-path %s; ttyS1 driver %s", got, filepath.Base(usb.ByPath[0]), s1.Driver), nil
}

type doctorCheck struct {
	Check  string `json:"check"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

func doctorChecks(r *hil.Run, name string) (map[string]doctorCheck, *hil.Block, error) {
	b, err := r.GuestBlock(name)
	if err != nil {
		return nil, nil, err
	}
	var checks []doctorCheck
	// The JSON comes first; a failing doctor adds a line on stderr.
	if err := json.NewDecoder(strings.NewReader(b.Text())).Decode(&checks); err != nil {
		return nil, b, fmt.Errorf("%s: %v:\n%s", name, err, b.Text())
	}
	m := map[string]doctorCheck{}
	for _, c := range checks {
		m[c.Check] = c
	}
	return m, b, nil
}

func checkDoctor(r *hil.Run) (string, error) {
	usb, b, err := doctorChecks(r, "doctor_usb")
	if err != nil {
		return "", err
	}
	if b.RC != 0 {
		return "", fmt.Errorf("doctor on the adapter: exit %d, want 0:\n%s", b.RC, b.Text())
	}
	for _, c := range []string{"port", "access", "holders", "console", "udev rules"} {
		if usb[c].Status != "ok" {
			return "", fmt.Errorf("doctor on the adapter: check %q = %+v, want ok:\n%s", c, usb[c], b.Text())
		}
	}
	for _, s := range []string{"→ /dev/ttyUSB0", "USB 0403:6001", "driver ftdi_sio"} {
		if !strings.Contains(usb["port"].Detail, s) {
			return "", fmt.Errorf("doctor's port check %q does not say %q", usb["port"].Detail, s)
		}
	}
	s0, b0, err := doctorChecks(r, "doctor_s0")
	if err != nil {
		return "", err
	}
	if b0.RC != 1 || s0["console"].Status != "fail" || !strings.Contains(s0["console"].Detail, "console=ttyS0") {
		return "", fmt.Errorf("doctor on the console port ttyS0: exit %d, console check %+v; want exit 1 and a fail naming console=ttyS0", b0.RC, s0["console"])
	}
	return "adapter: " + usb["port"].Detail + "; ttyS0: " + s0["console"].Detail, nil
}

// x86Hotplug: the adapter unplugged from the monitor during a send,
// without --reconnect (exit 1, naming the device), then with it while
// another process holds the old node, so the kernel names the returning
// adapter ttyUSB1 and only the udev link follows it.
// recoFrames at 2,000 frames/s last 4 s: the unplug comes at about 0.7 s
// and the replug 0.3 s later, with time to spare on a loaded machine.
const recoFrames = "8000"

func x86Hotplug() hil.Scenario {
	return hil.Scenario{
		Name: "x86-ftdi-hotplug", Arch: "amd64", Devices: x86Machine,
		Script: `
udev_start
devices_ready /dev/ttyUSB0 /dev/ttyS1
start plain framesend send --port /dev/ttyUSB0 --rate 2000
wait_open /dev/ttyUSB0 plain
sync_host unplug1
finish plain
wait_host replug1
udevadm settle
wait_node ` + ftdiLink + `
run node1 readlink -f ` + ftdiLink + `

start holder sh -c 'exec 3</dev/ttyUSB0; echo held; exec sleep 60'
wait_open /dev/ttyUSB0 holder
start reco framesend send --port ` + ftdiLink + ` --reconnect --reconnect-timeout 30s --frame-size 16 --rate 2000 --count ` + recoFrames + ` --summary json
wait_open /dev/ttyUSB0 reco
sync_host unplug2
finish reco
sync_host reco_done
udevadm settle
run node2 readlink -f ` + ftdiLink + `
run nodes ls /dev/
kill $(pid holder)
sync_host finished
wait_host finished
`,
		Host: func(ctx context.Context, r *hil.Run) error {
			// The far end keeps reading so the guest's writes never back up.
			r.VM.Flush("usb0")
			h1, err := r.Start("listen1", "listen", "--port", r.VM.Pty("usb0"), "--quiet", "--timeout", "30s", "--no-lock")
			if err != nil {
				return err
			}
			if err := r.Sync(ctx, "unplug1"); err != nil {
				return err
			}
			time.Sleep(500 * time.Millisecond)
			if err := r.VM.Unplug(ctx, "ftdi0"); err != nil {
				return err
			}
			time.Sleep(300 * time.Millisecond)
			if err := plugFTDI(r); err != nil {
				return err
			}
			if err := r.Go("replug1"); err != nil {
				return err
			}
			h1.Wait(0)
			r.VM.Flush("usb0")
			h2, err := r.Start("listen2", "listen", "--port", r.VM.Pty("usb0"), "--frame-size", "16", "--expect", "counter", "--quiet")
			if err != nil {
				return err
			}
			if err := r.Sync(ctx, "unplug2"); err != nil {
				return err
			}
			time.Sleep(700 * time.Millisecond)
			if err := r.VM.Unplug(ctx, "ftdi0"); err != nil {
				return err
			}
			time.Sleep(300 * time.Millisecond)
			if err := plugFTDI(r); err != nil {
				return err
			}
			if err := r.Sync(ctx, "reco_done"); err != nil {
				return err
			}
			time.Sleep(500 * time.Millisecond) // the last frames cross the pty
			if err := h2.Stop(10 * time.Second); err != nil {
				return err
			}
			// The guest powers off (closing the pty) only after the far end
			// has seen everything.
			return r.Go("finished")
		},
		Checks: []hil.Check{
			{Name: "unplug-without-reconnect", Fn: func(r *hil.Run) (string, error) {
				b, err := r.GuestBlock("plain")
				if err != nil {
					return "", err
				}
				if b.RC != 1 || !strings.Contains(b.Text(), "/dev/ttyUSB0") {
					return "", fmt.Errorf("send at the unplug: exit %d, %q; want exit 1 naming /dev/ttyUSB0", b.RC, b.Text())
				}
				return lastLine(b), nil
			}},
			{Name: "replug-same-name", Fn: func(r *hil.Run) (string, error) {
				return "nobody held ttyUSB0: it came back as ttyUSB0", want(r, "node1", 0, "/dev/ttyUSB0")
			}},
			{Name: "replug-as-ttyUSB1-via-link", Fn: func(r *hil.Run) (string, error) {
				if err := want(r, "node2", 0, "/dev/ttyUSB1"); err != nil {
					return "", fmt.Errorf("with the old node held: %v", err)
				}
				return ftdiLink + " → ttyUSB1", nil
			}},
			{Name: "reconnect-resumes-whole-frames", Fn: checkReconnect},
		},
	}
}

func plugFTDI(r *hil.Run) error {
	return r.VM.Plug(map[string]string{"driver": "usb-serial", "chardev": "usb0", "id": "ftdi0", "serial": ftdiSerial})
}

// checkReconnect: the sender resumed after the unplug and finished; the
// host's listen --expect counter with 16-byte frames (each frame is the
// whole counter cycle 0..15) saw no corrupt frame and no discontinuity, so
// no frame was split: frames lost at the unplug are whole frames, counted
// as sent minus received.
func checkReconnect(r *hil.Run) (string, error) {
	b, err := r.GuestBlock("reco")
	if err != nil {
		return "", err
	}
	if b.RC != 0 {
		return "", fmt.Errorf("send --reconnect: exit %d, want 0:\n%s", b.RC, b.Text())
	}
	var sum map[string]any
	for _, l := range b.Lines {
		if strings.HasPrefix(strings.TrimSpace(l), "{") && json.Unmarshal([]byte(l), &sum) == nil {
			break
		}
	}
	if sum == nil {
		return "", fmt.Errorf("send --reconnect printed no JSON summary:\n%s", b.Text())
	}
	if rc, _ := sum["reconnects"].(float64); rc != 1 {
		return "", fmt.Errorf("summary reconnects = %v, want 1:\n%s", sum["reconnects"], b.Text())
	}
	want, _ := strconv.Atoi(recoFrames)
	sent, _ := sum["frames"].(float64)
	if int(sent) != want {
		return "", fmt.Errorf("summary frames = %v, want %d:\n%s", sum["frames"], want, b.Text())
	}
	h, err := r.HostBlock("listen2")
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`: (\d+) frames, (\d+) bytes; counter stream verified`).FindStringSubmatch(h.Text())
	if h.RC != 0 || m == nil {
		return "", fmt.Errorf("host listen (16-byte counter frames): exit %d, want 0 with the stream verified:\n%s", h.RC, h.Text())
	}
	got, _ := strconv.Atoi(m[1])
	if got > want || got < want/2 {
		return "", fmt.Errorf("host received %d frames of %d sent", got, want)
	}
	return fmt.Sprintf("%d sent, %d received whole and in order, %d lost at the unplug, resent %v", want, got, want-got, sum["resent"]), nil
}

// arm64PL011: the aarch64 virt machine's PL011 (amba-pl011, a Pi's ttyAMA0
// driver) under TCG, frames both ways. The console is a PCI 16550, so the
// PL011 is free for the test.
func arm64PL011() hil.Scenario {
	const n = "5000"
	return hil.Scenario{
		Name: "arm64-pl011", Arch: "arm64", Timeout: 5 * time.Minute,
		Devices: func(m *hil.Machine) {
			m.Ptys = []string{"pl011"}
			m.Extra = []string{"-serial", "chardev:pl011"}
		},
		Script: `
udev_start
devices_ready /dev/ttyAMA0
run driver readlink /sys/class/tty/ttyAMA0/device/driver
run stat_ama0 stat -c '%U %G %a' /dev/ttyAMA0
run link_ama0 readlink -f /dev/framesend/ttyAMA0
run framesend_links ls /dev/framesend
run stat_s0 stat -c '%U %G %a' /dev/ttyS0
sync_host g2h
wait_host g2h
run send framesend send --port /dev/ttyAMA0 --count ` + n + `
start listen framesend listen --port /dev/ttyAMA0 --expect counter --count ` + n + ` --quiet --timeout 30s
wait_open /dev/ttyAMA0 listen
sync_host h2g
finish listen
`,
		Host: func(ctx context.Context, r *hil.Run) error {
			if err := r.Sync(ctx, "g2h"); err != nil {
				return err
			}
			r.VM.Flush("pl011")
			h, err := r.Start("listen", "listen", "--port", r.VM.Pty("pl011"), "--expect", "counter", "--count", n, "--quiet", "--timeout", "30s")
			if err != nil {
				return err
			}
			time.Sleep(300 * time.Millisecond)
			if err := r.Go("g2h"); err != nil {
				return err
			}
			h.Wait(2 * time.Minute)
			if err := r.Sync(ctx, "h2g"); err != nil {
				return err
			}
			h, err = r.Start("send", "send", "--port", r.VM.Pty("pl011"), "--count", n)
			if err != nil {
				return err
			}
			return h.Wait(2 * time.Minute)
		},
		Checks: []hil.Check{
			{Name: "driver-amba-pl011", Fn: func(r *hil.Run) (string, error) {
				b, err := r.GuestBlock("driver")
				if err != nil {
					return "", err
				}
				if filepath.Base(b.Text()) != "uart-pl011" {
					return "", fmt.Errorf("ttyAMA0's driver = %q, want uart-pl011", b.Text())
				}
				return "ttyAMA0 bound by uart-pl011 (amba-pl011.c)", nil
			}},
			{Name: "udev-pl011-dialout-link", Fn: func(r *hil.Run) (string, error) {
				if err := want(r, "stat_ama0", 0, "root dialout 660"); err != nil {
					return "", err
				}
				if err := want(r, "link_ama0", 0, "/dev/ttyAMA0"); err != nil {
					return "", err
				}
				return "/dev/ttyAMA0 root:dialout 0660, /dev/framesend/ttyAMA0 → ttyAMA0 (the Pi UART rule, matched by driver uart-pl011)", nil
			}},
			{Name: "udev-pci-16550-untouched", Fn: func(r *hil.Run) (string, error) {
				if err := want(r, "framesend_links", 0, "ttyAMA0"); err != nil {
					return "", fmt.Errorf("/dev/framesend holds more than the PL011: %v", err)
				}
				b, err := r.GuestBlock("stat_s0")
				if err != nil {
					return "", err
				}
				if strings.Contains(b.Text(), "dialout") {
					return "", fmt.Errorf("the console's ttyS0 (a PCI 16550) is %q: the rules gave it group dialout", b.Text())
				}
				return "ttyS0 (PCI 16550, the console) stays " + b.Text(), nil
			}},
			{Name: "frames-guest-to-host", Fn: framesCheckN("send", "listen", true, 5000)},
			{Name: "frames-host-to-guest", Fn: framesCheckN("listen", "send", false, 5000)},
		},
	}
}

// x86Line: what the real drivers do with settings and lines. framesend
// reads the settings back after setting them, so a rate the driver did not
// take is an error naming the rate it runs at; DTR and RTS set at open are
// seen back through the 16550's internal loopback (DSR follows DTR, CTS
// follows RTS); ftdi_sio has no RS-485 mode.
func x86Line() hil.Scenario {
	return hil.Scenario{
		Name: "x86-line-settings", Arch: "amd64", Devices: x86Machine,
		Script: `
udev_start
devices_ready /dev/ttyUSB0 /dev/ttyS1
run baud_16550_115200 framesend send --port /dev/ttyS1 --baud 115200 --count 10
run stty_s1 stty -F /dev/ttyS1 9600
run baud_16550_921600 framesend send --port /dev/ttyS1 --baud 921600 --count 10
run baud_ftdi_3M framesend send --port /dev/ttyUSB0 --baud 3000000 --count 10
run baud_ftdi_4M framesend send --port /dev/ttyUSB0 --baud 4000000 --count 10
run rs485_ftdi framesend send --port /dev/ttyUSB0 --rs485 --count 1
run lines_dtr modemlines /dev/ttyS1 framesend send --port /dev/ttyS1 --dtr on --rts off --hupcl=false --count 1
run lines_rts modemlines /dev/ttyS1 framesend send --port /dev/ttyS1 --dtr off --rts on --hupcl=false --count 1
run loopback_16550 modemlines /dev/ttyS1 framesend loopback --port /dev/ttyS1 --count 2000 --window 8
run reset_seq_16550 modemlines /dev/ttyS1 framesend send --port /dev/ttyS1 --reset-seq 'D0|R1|W0.05|D1|R0' --hupcl=false --count 1
run break_16550 modemlines /dev/ttyS1 framesend send --port /dev/ttyS1 --break 20ms --frame-break 1ms --mark-after-break 100us --count 3
run hung_drain_16550 modemlines /dev/ttyS1 framesend send --port /dev/ttyS1 --baud 9600 --count 10 --flow rtscts --rts off --write-timeout 1s --batch 1
`,
		Checks: []hil.Check{
			{Name: "16550-115200-taken", Fn: exitWith("baud_16550_115200", 0, "")},
			{Name: "16550-921600-refused", Fn: exitWith("baud_16550_921600", 1, "/dev/ttyS1 runs at 9600 baud, not 921600")},
			{Name: "ft232b-3000000-taken", Fn: exitWith("baud_ftdi_3M", 0, "")},
			{Name: "ft232b-4000000-refused", Fn: exitWith("baud_ftdi_4M", 1, "/dev/ttyUSB0 runs at 9600 baud, not 4000000")},
			{Name: "rs485-on-ftdi_sio-refused", Fn: exitWith("rs485_ftdi", 1, "no RS-485 mode")},
			{Name: "dtr-on-rts-off-seen-back", Fn: linesCheck("lines_dtr", "lines DTR=1 RTS=0 DSR=1 CTS=0 LOOP=1")},
			{Name: "dtr-off-rts-on-seen-back", Fn: linesCheck("lines_rts", "lines DTR=0 RTS=1 DSR=0 CTS=1 LOOP=1")},
			// The UART's loopback also turns what it sends back into what it
			// receives: framesend loopback on a real 8250, with no wiring.
			{Name: "loopback-through-the-uart", Fn: exitWith("loopback_16550", 0, "2000 of 2000 frames came back")},
			// The reset sequence's last steps (DTR on, RTS off) are what the
			// UART holds when the frames go out.
			{Name: "reset-seq-on-the-16550", Fn: linesCheck("reset_seq_16550", "lines DTR=1 RTS=0 DSR=1 CTS=0 LOOP=1")},
			{Name: "break-and-frame-break-on-the-8250", Fn: exitWith("break_16550", 0, "sent 3 frames")},
			// With RTS off in loopback, CTS stays low and the UART never
			// sends: the drain must give up after --write-timeout, naming CTS.
			{Name: "hung-drain-ends-naming-cts", Fn: hungDrainCheck("hung_drain_16550", 10)},
		},
	}
}

// exitWith: guest block name exited rc, and printed text if text is set.
func exitWith(name string, rc int, text string) func(r *hil.Run) (string, error) {
	return func(r *hil.Run) (string, error) {
		b, err := r.GuestBlock(name)
		if err != nil {
			return "", err
		}
		if b.RC != rc || !strings.Contains(b.Text(), text) {
			return "", fmt.Errorf("%s: exit %d, %q; want exit %d saying %q", name, b.RC, b.Text(), rc, text)
		}
		l := lastLine(b)
		for _, line := range b.Lines {
			if text != "" && strings.Contains(line, text) {
				l = strings.TrimSpace(line)
			}
		}
		if l != "" {
			return fmt.Sprintf("exit %d: %s", rc, l), nil
		}
		return fmt.Sprintf("exit %d", rc), nil
	}
}

func linesCheck(name, lines string) func(r *hil.Run) (string, error) {
	return func(r *hil.Run) (string, error) {
		b, err := r.GuestBlock(name)
		if err != nil {
			return "", err
		}
		if b.RC != 0 || !strings.Contains(b.Text(), lines) {
			return "", fmt.Errorf("%s: exit %d, %q; want exit 0 and %q", name, b.RC, b.Text(), lines)
		}
		return lines + " (TIOCM_LOOP, then TIOCMGET)", nil
	}
}

// hungDrainCheck: guest block name exited 1 with the stall error naming
// CTS held low, within limit seconds (its --write-timeout plus slack).
func hungDrainCheck(name string, limit float64) func(r *hil.Run) (string, error) {
	return func(r *hil.Run) (string, error) {
		b, err := r.GuestBlock(name)
		if err != nil {
			return "", err
		}
		for _, want := range []string{"the device stopped accepting data", "holding CTS low", "--write-timeout"} {
			if b.RC != 1 || !strings.Contains(b.Text(), want) {
				return "", fmt.Errorf("%s: exit %d, %q; want exit 1 saying %q", name, b.RC, b.Text(), want)
			}
		}
		if b.Seconds > limit {
			return "", fmt.Errorf("%s: gave up after %.1fs, want within %.0fs", name, b.Seconds, limit)
		}
		l := lastLine(b)
		for _, line := range b.Lines {
			if strings.Contains(line, "holding CTS low") {
				l = strings.TrimSpace(line)
			}
		}
		return fmt.Sprintf("exit 1 after %.1fs: %s", b.Seconds, l), nil
	}
}

// x86Smoketest runs hil/smoketest, the check for real hardware, on the real
// drivers: the FT232 and the 16550 wired to each other through the host
// (a null-modem cable made of their two ptys).
func x86Smoketest() hil.Scenario {
	return hil.Scenario{
		Name: "x86-smoketest", Arch: "amd64", Devices: x86Machine,
		Script: `
udev_start
devices_ready /dev/ttyUSB0 /dev/ttyS1
sync_host wired
wait_host wired
run smoketest smoketest -framesend framesend -port ` + ftdiByID + ` -far /dev/ttyS1 -frames 2000
`,
		Host: func(ctx context.Context, r *hil.Run) error {
			if err := r.Sync(ctx, "wired"); err != nil {
				return err
			}
			r.VM.Flush("usb0")
			r.VM.Flush("uart1")
			if err := r.VM.Bridge("usb0", "uart1"); err != nil {
				return err
			}
			return r.Go("wired")
		},
		Checks: []hil.Check{
			{Name: "adapter-and-16550-crossed", Fn: func(r *hil.Run) (string, error) {
				b, err := r.GuestBlock("smoketest")
				if err != nil {
					return "", err
				}
				passed := strings.Count(b.Text(), "PASS  ")
				if b.RC != 0 || passed != 5 || !strings.Contains(b.Text(), "all checks passed") {
					return "", fmt.Errorf("smoketest: exit %d, %d checks passed, want exit 0 and 5:\n%s", b.RC, passed, b.Text())
				}
				return fmt.Sprintf("%d smoke checks passed (ports, doctor, frames both ways, busy)", passed), nil
			}},
		},
	}
}

// raspi3bMiniUART: QEMU's Raspberry Pi 3B board with the Pi's own device
// tree (from Debian's kernel package): its mini-UART, bound by the
// bcm2835-aux-uart driver, is ttyS1 there (the PL011 is the console).
// Real udev applies the Pi UART rule; the driver drops the parity, data
// bits and stop bits a mini-UART lacks, and framesend's read-back says so.
func raspi3bMiniUART() hil.Scenario {
	const n = "2000"
	return hil.Scenario{
		Name: "raspi3b-miniuart", Arch: "arm64", Timeout: 2 * time.Minute,
		Board: &hil.Board{
			Type:   "raspi3b",
			DTB:    "broadcom/bcm2837-rpi-3-b.dtb",
			Append: "console=ttyAMA0 panic=-1 quiet",
		},
		Devices: func(m *hil.Machine) {
			m.Ptys = []string{"mini"}
			m.Extra = []string{"-serial", "chardev:mini"}
		},
		Script: `
udev_start
devices_ready /dev/ttyS1
run driver readlink /sys/class/tty/ttyS1/device/driver
run stat_mini stat -c '%U %G %a' /dev/ttyS1
run link_mini readlink -f /dev/framesend/ttyS1
run parity framesend send --port /dev/ttyS1 --parity even --count 1
run databits framesend send --port /dev/ttyS1 --data-bits 6 --count 1
run stopbits framesend send --port /dev/ttyS1 --stop-bits 2 --count 1
mkfifo /tmp/counter
start send sh -c 'exec framesend send --port /dev/ttyS1 --source stdin --count ` + n + ` 0<>/tmp/counter'
wait_open /dev/ttyS1 send
sync_host g2h
sleep 2
cat /etc/hil/counter.bin >/tmp/counter
finish send
start listen framesend listen --port /dev/ttyS1 --expect counter --count ` + n + ` --quiet --timeout 30s
wait_open /dev/ttyS1 listen
sync_host h2g
finish listen
`,
		// QEMU's mini-UART model sends the baud divisor the driver writes
		// as a byte on the line, so the guest's sender configures the port
		// first and takes its counter bytes from a FIFO only once the host
		// listens. The board's console (the PL011) is not a tty the guest
		// can read, so the guest gives the host 2 s to start its listener.
		Files: map[string][]byte{"counter.bin": counterBytes(2000 * 7)},
		Host: func(ctx context.Context, r *hil.Run) error {
			if err := r.Sync(ctx, "g2h"); err != nil {
				return err
			}
			r.VM.Flush("mini") // the divisor bytes of the sender's open
			h, err := r.Start("listen", "listen", "--port", r.VM.Pty("mini"), "--expect", "counter", "--count", n, "--quiet")
			if err != nil {
				return err
			}
			if err := r.Sync(ctx, "h2g"); err != nil {
				h.Stop(5 * time.Second)
				return err
			}
			h.Stop(5 * time.Second) // it has its frames, or it never will
			h, err = r.Start("send", "send", "--port", r.VM.Pty("mini"), "--count", n)
			if err != nil {
				return err
			}
			return h.Wait(2 * time.Minute)
		},
		Checks: []hil.Check{
			{Name: "driver-bcm2835-aux-uart", Fn: func(r *hil.Run) (string, error) {
				b, err := r.GuestBlock("driver")
				if err != nil {
					return "", err
				}
				if filepath.Base(b.Text()) != "bcm2835-aux-uart" {
					return "", fmt.Errorf("ttyS1's driver = %q, want bcm2835-aux-uart", b.Text())
				}
				return "ttyS1 is the Pi's mini-UART (8250_bcm2835aux)", nil
			}},
			{Name: "udev-miniuart-dialout-link", Fn: func(r *hil.Run) (string, error) {
				if err := want(r, "stat_mini", 0, "root dialout 660"); err != nil {
					return "", err
				}
				if err := want(r, "link_mini", 0, "/dev/ttyS1"); err != nil {
					return "", err
				}
				return "/dev/ttyS1 root:dialout 0660, /dev/framesend/ttyS1 → ttyS1", nil
			}},
			{Name: "parity-refused", Fn: exitWith("parity", 1, "parity")},
			{Name: "6-data-bits-refused", Fn: exitWith("databits", 1, "data bits")},
			{Name: "2-stop-bits-refused", Fn: exitWith("stopbits", 1, "stop bits")},
			{Name: "frames-guest-to-host", Fn: framesCheckN("send", "listen", true, 2000)},
			{Name: "frames-host-to-guest", Fn: framesCheckN("listen", "send", false, 2000)},
		},
	}
}

// counterBytes is what framesend's counter source sends: byte k is k mod 16.
func counterBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 16)
	}
	return b
}
