//go:build linux

package device

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"go.bug.st/serial"
)

// The classes of port failure. Every error from Open and from a Port's
// methods wraps exactly one of these (see Error).
var (
	ErrNotFound   = errors.New("no such device")
	ErrPermission = errors.New("permission denied")
	ErrBusy       = errors.New("port busy")
	ErrNotSerial  = errors.New("not a serial device")
	ErrGone       = errors.New("device disappeared")
	ErrClosed     = errors.New("port already closed")
	// ErrSetting is a setting the driver did not take (the error also
	// wraps a *SettingError saying what it set instead).
	ErrSetting = errors.New("setting not taken by the driver")
	// ErrStalled is a write or drain that the device did not let finish
	// by the write deadline (it also wraps os.ErrDeadlineExceeded).
	ErrStalled = errors.New("the device stopped accepting data")
)

// ErrNotBack is wrapped, with the error that took the device away, by a
// Reconnecting port whose device did not come back within its timeout.
var ErrNotBack = errors.New("did not come back")

// Error is a port failure: what was being done (Op), on which path, its
// class (one of the Err* sentinels) and the underlying cause. errors.Is sees
// both the class and the cause.
type Error struct {
	Op    string // "open", "write", "read", "drain", "configure"
	Path  string
	Class error
	Err   error
	// Holder names the process holding a busy port, such as
	// "PID 1234 (framesend)", or says why it cannot be named.
	Holder string
}

func (e *Error) Error() string {
	if e.Class == ErrBusy && e.Holder != "" {
		return fmt.Sprintf("port busy: %s is held by %s", e.Path, e.Holder)
	}
	if e.Class == ErrSetting || e.Class == ErrUnsupported {
		// The cause is a whole sentence naming the port and the fix.
		var u *UnsupportedError
		if errors.As(e.Err, &u) {
			return fmt.Sprintf("%s %s: %s", e.Op, e.Path, u.msg)
		}
		return e.Err.Error()
	}
	if e.Err == nil || e.Err == e.Class || e.Err.Error() == "" {
		return fmt.Sprintf("%s %s: %v", e.Op, e.Path, e.Class)
	}
	return fmt.Sprintf("%s %s: %v (%v)", e.Op, e.Path, e.Class, e.Err)
}

// Unwrap gives errors.Is and errors.As both the class and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Class}
	}
	return []error{e.Class, e.Err}
}

// classify turns what go.bug.st/serial or the kernel returned into an
// *Error. Errors that fit no class keep their cause and get the class of the
// operation's most likely meaning: a failed open is "not a serial device",
// a failed write or read on an open port means the device went away.
func classify(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	return &Error{Op: op, Path: path, Class: classOf(op, err), Err: plainCause(err)}
}

// cause is an error shown in framesend's words, still wrapping the
// original for errors.Is and errors.As.
type cause struct {
	msg string
	err error
}

func (c *cause) Error() string { return c.msg }
func (c *cause) Unwrap() error { return c.err }

// plainCause keeps go.bug.st/serial's wording out of messages ("Invalid
// serial port: error getting term settings: …"): what the kernel said
// stays, or what it means when that says nothing useful.
func plainCause(err error) error {
	var pe *serial.PortError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code() {
	case serial.InvalidSerialPort:
		return &cause{"it is not a terminal: it has no line settings to set", err}
	case serial.PortBusy, serial.PermissionDenied, serial.PortNotFound, serial.PortClosed:
		return &cause{"", err} // the class says it all
	}
	msg := pe.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return &cause{msg, err}
}

func classOf(op string, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return ErrStalled
	}
	var pe *serial.PortError
	if errors.As(err, &pe) {
		switch pe.Code() {
		case serial.PortBusy:
			return ErrBusy
		case serial.PermissionDenied:
			return ErrPermission
		case serial.PortNotFound:
			return ErrNotFound
		case serial.PortClosed:
			if op == "open" {
				return ErrNotSerial
			}
			return ErrGone
		case serial.InvalidSerialPort:
			return ErrNotSerial
		}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOENT:
			return ErrNotFound
		case syscall.EACCES, syscall.EPERM:
			return ErrPermission
		case syscall.EBUSY:
			return ErrBusy
		case syscall.EISDIR, syscall.ENOTTY, syscall.EINVAL:
			return ErrNotSerial
		case syscall.EIO, syscall.ENXIO, syscall.ENODEV, syscall.EPIPE:
			if op == "open" {
				return ErrNotFound
			}
			return ErrGone
		}
	}
	if op == "open" {
		return ErrNotSerial
	}
	return ErrGone
}
