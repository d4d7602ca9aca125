#!/bin/sh
# Builds the fake sysfs and /dev trees the ports and doctor tests read: a PC
# with an FTDI adapter and two CH340s, and a Raspberry Pi 4 with ttyAMA0,
# ttyS0 and the serial0/serial1 links. They are committed; run this again
# (from this folder) only to change them. Device nodes are plain files: the
# tests never open them, and turn them into FIFOs to prove it.
set -eu
cd "$(dirname "$0")"
rm -rf pc pi

# usbtty ROOT BUSPORT TTY VID PID SERIAL MANUFACTURER PRODUCT DRIVER
usbtty() {
	r=$1; port=$2; tty=$3
	usb=$r/sys/devices/pci0000:00/0000:00:14.0/usb1/$port
	mkdir -p "$usb/$port:1.0/$tty/tty/$tty" "$r/sys/bus/usb-serial/drivers/$9" "$r/sys/class/tty" "$r/dev"
	printf '%s\n' "$4" > "$usb/idVendor"
	printf '%s\n' "$5" > "$usb/idProduct"
	[ -n "$6" ] && printf '%s\n' "$6" > "$usb/serial"
	printf '%s\n' "$7" > "$usb/manufacturer"
	printf '%s\n' "$8" > "$usb/product"
	ln -s "../../../$tty" "$usb/$port:1.0/$tty/tty/$tty/device"
	ln -s "../../../../../../../../bus/usb-serial/drivers/$9" "$usb/$port:1.0/$tty/driver"
	ln -s "../../devices/pci0000:00/0000:00:14.0/usb1/$port/$port:1.0/$tty/tty/$tty" "$r/sys/class/tty/$tty"
	: > "$r/dev/$tty"
}

# platformtty ROOT DEVICE TTY DRIVER TYPE
platformtty() {
	r=$1; d=$r/sys/devices/platform/soc/$2
	mkdir -p "$d/tty/$3" "$r/sys/bus/platform/drivers/$4" "$r/sys/class/tty" "$r/dev"
	ln -s "../../../$2" "$d/tty/$3/device"
	ln -s "../../../../bus/platform/drivers/$4" "$d/driver"
	printf '%s\n' "$5" > "$d/tty/$3/type"
	ln -s "../../devices/platform/soc/$2/tty/$3" "$r/sys/class/tty/$3"
	: > "$r/dev/$3"
}

# The PC.
usbtty pc 1-1 ttyUSB0 0403 6001 A50285BI FTDI "FT232R USB UART" ftdi_sio
usbtty pc 1-2 ttyUSB1 1a86 7523 "" "QinHeng Electronics" "USB Serial" ch341-uart
usbtty pc 1-3 ttyUSB2 1a86 7523 "" "QinHeng Electronics" "USB Serial" ch341-uart
# An 8250 placeholder with no UART (type 0), and a virtual console.
mkdir -p pc/sys/devices/pnp0/00:00/tty/ttyS0 pc/sys/devices/virtual/tty/tty0
ln -s ../../../00:00 pc/sys/devices/pnp0/00:00/tty/ttyS0/device
echo 0 > pc/sys/devices/pnp0/00:00/tty/ttyS0/type
ln -s ../../devices/pnp0/00:00/tty/ttyS0 pc/sys/class/tty/ttyS0
ln -s ../../devices/virtual/tty/tty0 pc/sys/class/tty/tty0
: > pc/dev/ttyS0
mkdir -p pc/dev/serial/by-id pc/dev/serial/by-path
ln -s ../../ttyUSB0 pc/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0
ln -s ../../ttyUSB2 pc/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0
ln -s ../../ttyUSB0 pc/dev/serial/by-path/pci-0000:00:14.0-usb-0:1:1.0-port0
ln -s ../../ttyUSB1 pc/dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0
ln -s ../../ttyUSB2 pc/dev/serial/by-path/pci-0000:00:14.0-usb-0:3:1.0-port0
mkdir -p pc/proc pc/usr/bin
echo "BOOT_IMAGE=/boot/vmlinuz root=/dev/sda1 ro quiet" > pc/proc/cmdline
: > pc/usr/bin/brltty

# The Pi 4: Bluetooth on the PL011, so serial0 is the mini-UART.
platformtty pi fe201000.serial ttyAMA0 uart-pl011 91
platformtty pi fe215040.serial ttyS0 bcm2835-aux-uart 4
ln -s ttyS0 pi/dev/serial0
ln -s ttyAMA0 pi/dev/serial1
mkdir -p pi/proc/device-tree pi/etc/systemd/system/getty.target.wants pi/etc/udev/rules.d
printf 'Raspberry Pi 4 Model B Rev 1.4\000' > pi/proc/device-tree/model
echo "coherent_pool=1M console=serial0,115200 console=tty1 root=PARTUUID=1234-02 rootwait" > pi/proc/cmdline
ln -s /lib/systemd/system/serial-getty@.service pi/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service
: > pi/etc/udev/rules.d/99-framesend.rules
