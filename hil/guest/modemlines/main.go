// Command modemlines runs in the test guest: it opens a 16550's port, puts
// the UART in its internal loopback (TIOCM_LOOP: the modem status inputs
// follow the control outputs, CTS = RTS and DSR = DTR), runs a command (a
// framesend that sets DTR and RTS) while it keeps the port open, then
// prints the lines the UART reports back (TIOCMGET) and exits with the
// command's status.
//
//	modemlines /dev/ttyS1 framesend send --port /dev/ttyS1 --dtr on --rts off --count 1
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// tiocmLoop is TIOCM_LOOP (asm-generic/termios.h), which x/sys lacks: the
// 8250 driver maps it to the UART's MCR LOOP bit.
const tiocmLoop = 0x8000

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: modemlines PORT COMMAND [ARG...]")
		os.Exit(2)
	}
	fd, err := unix.Open(os.Args[1], unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "modemlines: open %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCMBIS, tiocmLoop); err != nil {
		fmt.Fprintf(os.Stderr, "modemlines: TIOCM_LOOP on %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	code := 0
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			fmt.Fprintf(os.Stderr, "modemlines: %v\n", err)
			os.Exit(1)
		}
		code = ee.ExitCode()
	}
	m, err := unix.IoctlGetInt(fd, unix.TIOCMGET)
	if err != nil {
		fmt.Fprintf(os.Stderr, "modemlines: TIOCMGET: %v\n", err)
		os.Exit(1)
	}
	bit := func(b int) int {
		if m&b != 0 {
			return 1
		}
		return 0
	}
	// Drop what the UART still holds (a drain framesend gave up on), so the
	// last close does not wait for it.
	unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCOFLUSH)
	fmt.Printf("lines DTR=%d RTS=%d DSR=%d CTS=%d LOOP=%d\n", bit(unix.TIOCM_DTR), bit(unix.TIOCM_RTS), bit(unix.TIOCM_DSR), bit(unix.TIOCM_CTS), bit(tiocmLoop))
	os.Exit(code)
}
