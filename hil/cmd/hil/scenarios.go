package main

import (
	"github.com/framesend/framesend/hil"
)

// packages are the Debian packages each architecture's guest is built from
// (besides the kernel).
func packages(arch string) []string {
	if arch == "amd64" {
		return []string{"busybox-static", "udev"}
	}
	return []string{"busybox-static"}
}

// guests are the guest images: the modules each loads at boot, and on
// amd64 real udev with the project's rules.
func guests() map[string]hil.Guest {
	return map[string]hil.Guest{
		"amd64": {Modules: []string{"xhci_pci", "ftdi_sio"}, Udev: true, Rules: []string{"udev/99-framesend.rules"}},
		"arm64": {},
	}
}

func scenarios() []hil.Scenario {
	return []hil.Scenario{
		{Name: "smoke", Arch: "amd64", Devices: x86Devices, Script: `
udev_start
run ls ls -l /dev/ /dev/serial/by-id /dev/framesend
run ports framesend ports --json
`},
	}
}

func x86Devices(m *hil.Machine) {
	m.Ptys = []string{"usb0", "uart1"}
	m.Devices = []string{
		"qemu-xhci,id=xhci",
		"usb-serial,chardev=usb0,id=ftdi0,serial=A50285BI",
		"isa-serial,index=1,chardev=uart1",
	}
}
