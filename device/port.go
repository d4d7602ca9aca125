package device

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"go.bug.st/serial"
	"golang.org/x/sys/unix"
)

// Port is an open serial port. Its Write makes one write(2) call and may be
// short with a nil error, as the kernel allows; callers that need whole
// writes loop (framesend's pipeline does).
type Port struct {
	path   string
	config Config
	port   serial.Port
	lock   int // the descriptor holding the flock, or -1
	closed atomic.Bool
}

// Open validates c, opens the serial device at path in raw mode with c's
// settings, and takes it for this process alone: an exclusive flock, which
// holds for root too, besides go.bug.st/serial's TIOCEXCL, which root
// ignores. If another process holds the port, the *Error is ErrBusy and
// names it. Errors are *Error values naming path.
func Open(path string, c Config) (*Port, error) { return open(path, c, true) }

// OpenShared is Open without the flock, for --no-lock: other framesend
// processes may then open the port too.
func OpenShared(path string, c Config) (*Port, error) { return open(path, c, false) }

func open(path string, c Config, lock bool) (*Port, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// A directory opens with EISDIR and a missing node with ENOENT inside
	// go.bug.st/serial; a regular file would be accepted by open(2) and only
	// fail at the first ioctl, so it is refused by its mode up front.
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() && fi.Mode()&os.ModeCharDevice == 0 {
		return nil, &Error{Op: "open", Path: path, Class: ErrNotSerial, Err: fmt.Errorf("%s is a %s", path, describeMode(fi.Mode()))}
	}
	lockFD := -1
	if lock {
		// The lock is taken on a descriptor of its own, before the port
		// is opened: go.bug.st/serial keeps its descriptor to itself, and
		// once it has set TIOCEXCL no second open would succeed. A flock
		// on any descriptor of the device excludes every other one.
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, syscall.EBUSY) {
				return nil, busy(path)
			}
			return nil, classify("open", path, err)
		}
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			unix.Close(fd)
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, busy(path)
			}
			return nil, classify("lock", path, err)
		}
		lockFD = fd
	}
	p, err := serial.Open(path, c.mode())
	if err != nil {
		if lockFD >= 0 {
			unix.Close(lockFD)
		}
		if e := classify("open", path, err); errors.Is(e, ErrBusy) {
			return nil, busy(path)
		}
		return nil, classify("open", path, err)
	}
	return &Port{path: path, config: c, port: p, lock: lockFD}, nil
}

func describeMode(m os.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "block device"
	}
	return "non-device file"
}

// Path returns the path the port was opened with.
func (p *Port) Path() string { return p.path }

// Config returns the settings the port was opened with.
func (p *Port) Config() Config { return p.config }

// Write makes one write(2) of b and returns how much the kernel took. It
// blocks while the device's buffer is full. It never writes after Close: the
// descriptor number may already belong to another file.
func (p *Port) Write(b []byte) (int, error) {
	if p.closed.Load() {
		return 0, &Error{Op: "write", Path: p.path, Class: ErrClosed}
	}
	for {
		n, err := p.port.Write(b)
		// go.bug.st/serial does not retry a write a signal interrupted
		// before it took anything.
		if n == 0 && errors.Is(err, syscall.EINTR) {
			continue
		}
		return n, classify("write", p.path, err)
	}
}

// Read reads what the device sent. It blocks until at least one byte
// arrives, the read timeout passes (0, nil), or the port is closed.
func (p *Port) Read(b []byte) (int, error) {
	if p.closed.Load() {
		return 0, &Error{Op: "read", Path: p.path, Class: ErrClosed}
	}
	n, err := p.port.Read(b)
	return n, classify("read", p.path, err)
}

// SetReadTimeout bounds how long Read waits for the first byte; a negative
// d waits for ever.
func (p *Port) SetReadTimeout(d time.Duration) error {
	if d < 0 {
		d = serial.NoTimeout
	}
	return classify("configure", p.path, p.port.SetReadTimeout(d))
}

// DiscardInput throws away bytes received but not yet read, such as what a
// device sent before the port was opened.
func (p *Port) DiscardInput() error {
	if p.closed.Load() {
		return &Error{Op: "flush", Path: p.path, Class: ErrClosed}
	}
	return classify("flush", p.path, p.port.ResetInputBuffer())
}

// Drain blocks until the kernel has handed every written byte to the
// device (tcdrain). USB adapters may still hold bytes in their own buffer.
func (p *Port) Drain() error {
	if p.closed.Load() {
		return &Error{Op: "drain", Path: p.path, Class: ErrClosed}
	}
	for {
		// tcdrain is not restarted after a signal (the Go runtime's
		// preemption signals included): wait again.
		err := p.port.Drain()
		if !errors.Is(err, syscall.EINTR) {
			return classify("drain", p.path, err)
		}
	}
}

// Close releases the port. It unblocks a pending Read but not a pending
// Write, so callers stop writing before they close. Closing twice is safe.
func (p *Port) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	err := p.port.Close()
	if p.lock >= 0 {
		unix.Close(p.lock) // releases the flock
	}
	return classify("close", p.path, err)
}
