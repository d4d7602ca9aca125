package source

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// pollable returns stdin in a form whose reads a stop can interrupt. A pipe,
// FIFO or terminal is opened again through /proc/self/fd, which makes an
// open file description of framesend's own, and that one is made
// non-blocking so Go's poller serves it. The shell's description is never
// changed, so nothing is left to restore however framesend ends (a second
// Ctrl-C, kill -9). Where stdin cannot be opened again (a socket, or a
// system without /proc), it is read as it is, blocking: a stop then waits
// for the read in progress. The returned func releases what was opened; it
// must be called.
func pollable(stdin io.Reader) (io.Reader, func()) {
	f, ok := stdin.(*os.File)
	if !ok {
		return stdin, func() {}
	}
	if fi, err := f.Stat(); err != nil || fi.Mode().IsRegular() {
		return stdin, func() {}
	}
	path := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return stdin, func() {}
	}
	nb := os.NewFile(uintptr(fd), f.Name())
	return nb, func() { nb.Close() }
}
