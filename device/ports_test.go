package device_test

import (
	"github.com/framesend/framesend/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framesend/framesend/device"
)

// copyTree copies a fake system from testdata into a temporary folder,
// where a test may change it.
func copyTree(t *testing.T, name string) string {
	t.Helper()
	dst := t.TempDir()
	if out, err := exec.Command("cp", "-a", filepath.Join("testdata", name)+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v %s", name, err, out)
	}
	return dst
}

var root = device.Identity{UID: 0}

func TestListPC(t *testing.T) {
	ports, err := device.List("testdata/pc", root)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, p := range ports {
		paths = append(paths, p.Path)
	}
	if want := []string{"/dev/ttyUSB0", "/dev/ttyUSB1", "/dev/ttyUSB2"}; !slices.Equal(paths, want) {
		t.Fatalf("ports = %v, want %v (no ttyS0 placeholder, no virtual tty0)", paths, want)
	}
	ftdi := ports[0]
	if ftdi.VID != "0403" || ftdi.PID != "6001" || ftdi.Serial != "A50285BI" || ftdi.Driver != "ftdi_sio" || ftdi.Product != "FT232R USB UART" || ftdi.Manufacturer != "FTDI" {
		t.Errorf("FTDI = %+v", ftdi)
	}
	if !slices.Equal(ftdi.ByID, []string{"/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"}) ||
		!slices.Equal(ftdi.ByPath, []string{"/dev/serial/by-path/pci-0000:00:14.0-usb-0:1:1.0-port0"}) {
		t.Errorf("FTDI links = %v %v", ftdi.ByID, ftdi.ByPath)
	}
	if ftdi.Note != "" {
		t.Errorf("FTDI has a serial number but got a note: %q", ftdi.Note)
	}
	for _, ch := range ports[1:] {
		if ch.VID != "1a86" || ch.Driver != "ch341-uart" || ch.Serial != "" || !strings.Contains(ch.Note, "by-path") {
			t.Errorf("CH340 = %+v, want 1a86, ch341-uart, no serial and a note about by-path", ch)
		}
	}
	if len(ports[1].ByID) != 0 || len(ports[2].ByID) != 1 {
		t.Errorf("CH340 by-id links = %v and %v, want none and one", ports[1].ByID, ports[2].ByID)
	}
}

func TestListPi(t *testing.T) {
	ports, err := device.List("testdata/pi", root)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 2 {
		t.Fatalf("ports = %+v, want ttyAMA0 and ttyS0", ports)
	}
	amA, s0 := ports[0], ports[1]
	if amA.Path != "/dev/ttyAMA0" || amA.Driver != "uart-pl011" || !slices.Equal(amA.Aliases, []string{"/dev/serial1"}) {
		t.Errorf("ttyAMA0 = %+v", amA)
	}
	if s0.Path != "/dev/ttyS0" || s0.Driver != "bcm2835-aux-uart" || !slices.Equal(s0.Aliases, []string{"/dev/serial0"}) {
		t.Errorf("ttyS0 = %+v", s0)
	}
}

func TestListEmpty(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sys/class/tty"), 0o755)
	ports, err := device.List(dir, root)
	if err != nil || len(ports) != 0 {
		t.Errorf("List = %v, %v; want no ports", ports, err)
	}
}

// The device nodes become FIFOs: opening one for reading blocks until a
// writer comes, so List or Doctor opening any of them would hang here.
func TestListAndDoctorOpenNoDevice(t *testing.T) {
	for _, name := range []string{"pc", "pi"} {
		r := copyTree(t, name)
		nodes, _ := filepath.Glob(filepath.Join(r, "dev/tty*"))
		for _, n := range nodes {
			os.Remove(n)
			if err := syscall.Mkfifo(n, 0o660); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan []device.Info, 1)
		go func() {
			ports, _ := device.List(r, root)
			for _, p := range ports {
				device.Doctor(device.System{Root: r, Who: root}, p.Path)
			}
			done <- ports
		}()
		select {
		case ports := <-done:
			if len(ports) < 2 {
				t.Errorf("%s: %d ports listed from FIFOs, want them all", name, len(ports))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: listing blocked: it opened a device node", name)
		}
	}
}

func TestAccess(t *testing.T) {
	testenv.Root(t, "it gives the fake nodes an owner and group")
	r := copyTree(t, "pc")
	node := filepath.Join(r, "dev/ttyUSB0")
	os.Chown(node, 0, 4242)
	os.Chmod(node, 0o660)
	cases := []struct {
		who  device.Identity
		ok   bool
		want string
	}{
		{device.Identity{UID: 0}, true, ""},
		{device.Identity{UID: 1000, Groups: []int{1000, 4242}}, true, ""},
		{device.Identity{UID: 1000, Groups: []int{1000}}, false, "you are not in group 4242: sudo usermod -aG 4242"},
	}
	for _, c := range cases {
		ok, why := device.Access(node, c.who)
		if ok != c.ok || !strings.Contains(why, c.want) {
			t.Errorf("Access(%+v) = %v %q, want %v %q", c.who, ok, why, c.ok, c.want)
		}
	}
	os.Chmod(node, 0o600)
	if ok, why := device.Access(node, device.Identity{UID: 1000, Groups: []int{4242}}); ok || !strings.Contains(why, "udev rules") {
		t.Errorf("mode 0600: %v %q, want refused with the udev rules as the fix", ok, why)
	}
	os.Chmod(node, 0o666)
	if ok, _ := device.Access(node, device.Identity{UID: 1000}); !ok {
		t.Error("a world-writable node is refused")
	}
}

func checks(t *testing.T, sys device.System, port string) map[string]device.Check {
	t.Helper()
	m := map[string]device.Check{}
	for _, c := range device.Doctor(sys, port) {
		m[c.Name] = c
	}
	return m
}

func TestDoctorPi(t *testing.T) {
	c := checks(t, device.System{Root: "testdata/pi", Who: root}, "/dev/serial0")
	if c["port"].Status != device.OK || !strings.Contains(c["port"].Detail, "/dev/serial0 → /dev/ttyS0") {
		t.Errorf("port = %+v", c["port"])
	}
	if c["console"].Status != device.Fail || !strings.Contains(c["console"].Detail, "console=serial0,115200") {
		t.Errorf("console = %+v, want a failure naming console=serial0", c["console"])
	}
	if c["pi uart"].Status != device.Warn || !strings.Contains(c["pi uart"].Detail, "mini-UART") || !strings.Contains(c["pi uart"].Fix, "disable-bt") {
		t.Errorf("pi uart = %+v", c["pi uart"])
	}
	if c["udev rules"].Status != device.OK {
		t.Errorf("udev rules = %+v", c["udev rules"])
	}

	// Without the console on the command line, the getty is what is left.
	r := copyTree(t, "pi")
	os.WriteFile(filepath.Join(r, "proc/cmdline"), []byte("console=tty1 root=PARTUUID=1234-02\n"), 0o644)
	c = checks(t, device.System{Root: r, Who: root}, "/dev/serial0")
	if c["console"].Status != device.Fail || !strings.Contains(c["console"].Fix, "systemctl disable --now serial-getty@ttyS0.service") {
		t.Errorf("console = %+v, want the getty on ttyS0", c["console"])
	}
	// ttyAMA0 is free of both.
	c = checks(t, device.System{Root: r, Who: root}, "/dev/ttyAMA0")
	if c["console"].Status != device.OK {
		t.Errorf("ttyAMA0 console = %+v", c["console"])
	}
	// Under Debian's kernel the mini-UART is ttyS1: still the mini-UART.
	os.Remove(filepath.Join(r, "dev/serial0"))
	os.Symlink("ttyS1", filepath.Join(r, "dev/serial0"))
	if c = checks(t, device.System{Root: r, Who: root}, ""); c["pi uart"].Status != device.Warn || !strings.Contains(c["pi uart"].Detail, "ttyS1, the mini-UART") {
		t.Errorf("serial0 → ttyS1: pi uart = %+v, want the mini-UART warning", c["pi uart"])
	}
	// The PL011 as serial0 is fine.
	os.Remove(filepath.Join(r, "dev/serial0"))
	os.Symlink("ttyAMA0", filepath.Join(r, "dev/serial0"))
	if c = checks(t, device.System{Root: r, Who: root}, ""); c["pi uart"].Status != device.OK {
		t.Errorf("serial0 → ttyAMA0: pi uart = %+v", c["pi uart"])
	}
}

func TestDoctorPC(t *testing.T) {
	sys := device.System{Root: "testdata/pc", Who: root}
	c := checks(t, sys, "/dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0")
	if c["port"].Status != device.OK || !strings.Contains(c["port"].Detail, "USB 1a86:7523") {
		t.Errorf("port = %+v", c["port"])
	}
	if c["brltty"].Status != device.Fail {
		t.Errorf("brltty with a CH340 = %+v, want fail", c["brltty"])
	}
	if c = checks(t, sys, "/dev/ttyUSB0"); c["brltty"].Status != device.Warn {
		t.Errorf("brltty with an FTDI = %+v, want warn", c["brltty"])
	}
	if c["udev rules"].Status != device.Warn || c["pi uart"].Name != "" {
		t.Errorf("udev rules %+v, pi uart %+v: want warn and no Pi check on a PC", c["udev rules"], c["pi uart"])
	}
	if c = checks(t, sys, "/dev/ttyUSB7"); c["port"].Status != device.Fail || !strings.Contains(c["port"].Fix, "framesend ports") {
		t.Errorf("missing port = %+v", c["port"])
	}
	if c = checks(t, sys, "/dev/serial"); c["port"].Status != device.Fail {
		t.Errorf("a directory as port = %+v", c["port"])
	}
}

func TestDoctorNewGroupNeedsNewLogin(t *testing.T) {
	testenv.Root(t, "it gives the fake node a group")
	r := copyTree(t, "pc")
	os.MkdirAll(filepath.Join(r, "etc"), 0o755)
	os.WriteFile(filepath.Join(r, "etc/group"), []byte("root:x:0:\ndialout:x:4242:pi,alice\n"), 0o644)
	node := filepath.Join(r, "dev/ttyUSB0")
	os.Chown(node, 0, 4242)
	os.Chmod(node, 0o660)
	c := checks(t, device.System{Root: r, Who: device.Identity{UID: 1000, Groups: []int{1000}}, User: "alice"}, "/dev/ttyUSB0")
	if c["access"].Status != device.Fail || !strings.Contains(c["access"].Fix, "log out and in again") {
		t.Errorf("access = %+v, want a failure saying to log in again", c["access"])
	}
	c = checks(t, device.System{Root: r, Who: device.Identity{UID: 1001, Groups: []int{1001}}, User: "bob"}, "/dev/ttyUSB0")
	if c["access"].Status != device.Fail || !strings.Contains(c["access"].Detail, "not in group dialout") || !strings.Contains(c["access"].Fix, "usermod -aG dialout") {
		t.Errorf("access = %+v, want the dialout fix", c["access"])
	}
}

func TestHoldersFindsAnotherProcess(t *testing.T) {
	f := newFake(t, devicetestOptions())
	dev, err := os.OpenFile(f.Path(), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	cmd := exec.Command(testenv.Tool(t, "sleep", "coreutils"), "10")
	cmd.Stdin = dev
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	time.Sleep(100 * time.Millisecond)
	holders, _ := device.Holders("/", f.Path())
	want := "PID " + itoa(cmd.Process.Pid) + " (sleep)"
	if !slices.Contains(holders, want) {
		t.Errorf("holders = %v, want %s among them", holders, want)
	}
}

// TestListNamesTheHardwareDriver: on Linux 6.5 and later a UART's tty hangs
// under the serial core's port and ctrl devices; the driver shown is the
// hardware's (serial, for an 8250 on PNP), not "port".
func TestListNamesTheHardwareDriver(t *testing.T) {
	dir := t.TempDir()
	mk := func(p string) { os.MkdirAll(filepath.Join(dir, p), 0o755) }
	ln := func(target, link string) {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	mk("sys/devices/pnp0/00:00/00:00:0/00:00:0.0/tty/ttyS0")
	mk("sys/bus/serial-base/drivers/port")
	mk("sys/bus/serial-base/drivers/ctrl")
	mk("sys/bus/pnp/drivers/serial")
	mk("sys/class/tty")
	mk("dev")
	os.WriteFile(filepath.Join(dir, "dev/ttyS0"), nil, 0o644)
	ln("../../../bus/pnp/drivers/serial", "sys/devices/pnp0/00:00/driver")
	ln("../../../../bus/serial-base/drivers/ctrl", "sys/devices/pnp0/00:00/00:00:0/driver")
	ln("../../../../../bus/serial-base/drivers/port", "sys/devices/pnp0/00:00/00:00:0/00:00:0.0/driver")
	ln("../../../00:00:0.0", "sys/devices/pnp0/00:00/00:00:0/00:00:0.0/tty/ttyS0/device")
	os.WriteFile(filepath.Join(dir, "sys/devices/pnp0/00:00/00:00:0/00:00:0.0/tty/ttyS0/type"), []byte("4\n"), 0o644)
	ln("../../devices/pnp0/00:00/00:00:0/00:00:0.0/tty/ttyS0", "sys/class/tty/ttyS0")
	ports, err := device.List(dir, root)
	if err != nil || len(ports) != 1 {
		t.Fatalf("List = %+v, %v; want ttyS0", ports, err)
	}
	if ports[0].Driver != "serial" {
		t.Errorf("ttyS0 driver = %q, want serial (the hardware's, not the serial core's port)", ports[0].Driver)
	}
}
