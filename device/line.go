//go:build linux

package device

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// line is what framesend asks of a tty through ioctl(2): the seam between
// the port layer and the kernel. The real one (fdLine) calls the kernel on
// framesend's own descriptor; tests put a recorder in its place that notes
// every request and plays the part of a driver.
type line interface {
	// ioctlPtr makes a request whose argument points to arg.
	ioctlPtr(req uint, arg unsafe.Pointer) error
	// ioctlInt makes a request whose argument is the value v.
	ioctlInt(req uint, v int) error
}

// fdLine is a line on a descriptor. control runs f with the descriptor,
// holding it open while f runs (lineFD.control), so an ioctl never
// lands on a descriptor number that a Close has handed to another file.
type fdLine struct {
	control func(f func(fd uintptr)) error
}

func (l fdLine) ioctlPtr(req uint, arg unsafe.Pointer) error {
	return l.call(func(fd uintptr) syscall.Errno {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(arg))
		return errno
	})
}

func (l fdLine) ioctlInt(req uint, v int) error {
	return l.call(func(fd uintptr) syscall.Errno {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(v))
		return errno
	})
}

// call runs ioctl on the descriptor, again while a signal interrupts it.
func (l fdLine) call(ioctl func(fd uintptr) syscall.Errno) error {
	var errno syscall.Errno
	if err := l.control(func(fd uintptr) {
		for {
			if errno = ioctl(fd); errno != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// requestNames names the requests framesend makes, for errors and for the
// recorder's got/want messages.
var requestNames = map[uint]string{
	unix.TCGETS:      "TCGETS",
	unix.TCSETS:      "TCSETS",
	unix.TCGETS2:     "TCGETS2",
	unix.TCSETS2:     "TCSETS2",
	unix.TIOCMGET:    "TIOCMGET",
	unix.TIOCMSET:    "TIOCMSET",
	unix.TIOCMBIS:    "TIOCMBIS",
	unix.TIOCMBIC:    "TIOCMBIC",
	unix.TIOCSBRK:    "TIOCSBRK",
	unix.TIOCCBRK:    "TIOCCBRK",
	unix.TIOCOUTQ:    "TIOCOUTQ",
	unix.TCSBRK:      "TCSBRK",
	unix.TIOCGRS485:  "TIOCGRS485",
	unix.TIOCSRS485:  "TIOCSRS485",
	unix.TIOCGSERIAL: "TIOCGSERIAL",
	unix.TIOCSSERIAL: "TIOCSSERIAL",
}

func requestName(req uint) string {
	if n, ok := requestNames[req]; ok {
		return n
	}
	return fmt.Sprintf("ioctl %#x", req)
}

// termiosCalls is the pair of requests that reads and sets termios: TCGETS2
// and TCSETS2, which carry any speed, or TCGETS and TCSETS, which carry the
// standard speeds only, where the first pair is missing (qemu-user answers
// ENOSYS for it).
type termiosCalls struct{ get, set uint }

var (
	termios2 = termiosCalls{unix.TCGETS2, unix.TCSETS2}
	termios1 = termiosCalls{unix.TCGETS, unix.TCSETS}
)

// getTermios reads the tty's settings and says which pair of requests
// worked.
func getTermios(l line) (*unix.Termios, termiosCalls, error) {
	var t unix.Termios
	err := l.ioctlPtr(unix.TCGETS2, unsafe.Pointer(&t))
	if err == nil {
		return &t, termios2, nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return nil, termios2, fmt.Errorf("TCGETS2: %w", err)
	}
	t = unix.Termios{}
	if err := l.ioctlPtr(unix.TCGETS, unsafe.Pointer(&t)); err != nil {
		return nil, termios1, fmt.Errorf("TCGETS: %w", err)
	}
	// TCGETS leaves the speed fields alone: take them from CBAUD.
	t.Ispeed, t.Ospeed = 0, 0
	if b, ok := baudOf[t.Cflag&unix.CBAUD]; ok {
		t.Ispeed, t.Ospeed = uint32(b), uint32(b)
	}
	return &t, termios1, nil
}

func setTermios(l line, calls termiosCalls, t *unix.Termios) error {
	if err := l.ioctlPtr(calls.set, unsafe.Pointer(t)); err != nil {
		return fmt.Errorf("%s: %w", requestName(calls.set), err)
	}
	return nil
}

// baudOf maps the standard CBAUD codes to bits per second.
var baudOf = map[uint32]int{
	unix.B50: 50, unix.B75: 75, unix.B110: 110, unix.B134: 134, unix.B150: 150,
	unix.B200: 200, unix.B300: 300, unix.B600: 600, unix.B1200: 1200, unix.B1800: 1800,
	unix.B2400: 2400, unix.B4800: 4800, unix.B9600: 9600, unix.B19200: 19200,
	unix.B38400: 38400, unix.B57600: 57600, unix.B115200: 115200, unix.B230400: 230400,
	unix.B460800: 460800, unix.B500000: 500000, unix.B576000: 576000, unix.B921600: 921600,
	unix.B1000000: 1000000, unix.B1152000: 1152000, unix.B1500000: 1500000,
	unix.B2000000: 2000000, unix.B2500000: 2500000, unix.B3000000: 3000000,
	unix.B3500000: 3500000, unix.B4000000: 4000000,
}

// Settings is what a tty's termios says about its line, read back from the
// driver.
type Settings struct {
	Baud     int
	DataBits int
	Parity   Parity
	StopBits int
	Flow     Flow
	HangUp   bool // HUPCL: DTR and RTS drop when the last descriptor closes
}

// String gives the settings in the usual short form, with the flow control:
// "115200 8N1, flow none".
func (s Settings) String() string {
	c := Config{Baud: s.Baud, DataBits: s.DataBits, Parity: s.Parity, StopBits: s.StopBits}
	return fmt.Sprintf("%s, flow %s", c, s.Flow)
}

// settingsOf decodes a termios.
func settingsOf(t *unix.Termios) Settings {
	s := Settings{Baud: int(t.Ospeed), StopBits: 1, Flow: FlowNone, HangUp: t.Cflag&unix.HUPCL != 0}
	if t.Cflag&unix.CBAUD != unix.BOTHER {
		if b, ok := baudOf[t.Cflag&unix.CBAUD]; ok {
			s.Baud = b
		}
	}
	switch t.Cflag & unix.CSIZE {
	case unix.CS5:
		s.DataBits = 5
	case unix.CS6:
		s.DataBits = 6
	case unix.CS7:
		s.DataBits = 7
	default:
		s.DataBits = 8
	}
	switch {
	case t.Cflag&unix.PARENB == 0:
		s.Parity = ParityNone
	case t.Cflag&unix.CMSPAR != 0 && t.Cflag&unix.PARODD != 0:
		s.Parity = ParityMark
	case t.Cflag&unix.CMSPAR != 0:
		s.Parity = ParitySpace
	case t.Cflag&unix.PARODD != 0:
		s.Parity = ParityOdd
	default:
		s.Parity = ParityEven
	}
	if t.Cflag&unix.CSTOPB != 0 {
		s.StopBits = 2
	}
	switch {
	case t.Cflag&unix.CRTSCTS != 0:
		s.Flow = FlowRTSCTS
	case t.Iflag&(unix.IXON|unix.IXOFF) == unix.IXON|unix.IXOFF:
		s.Flow = FlowXONXOFF
	}
	return s
}

// applyLine sets what go.bug.st/serial does not: flow control and HUPCL.
// It leaves the speed and character format as they are, so the TCSETS
// fallback carries them unchanged.
func applyLine(t *unix.Termios, c Config) {
	t.Cflag &^= unix.CRTSCTS
	t.Iflag &^= unix.IXON | unix.IXOFF | unix.IXANY
	switch c.Flow {
	case FlowRTSCTS:
		t.Cflag |= unix.CRTSCTS
	case FlowXONXOFF:
		t.Iflag |= unix.IXON | unix.IXOFF
	}
	if c.KeepLines {
		t.Cflag &^= unix.HUPCL
	} else {
		t.Cflag |= unix.HUPCL
	}
}

// BaudTolerance is how far the speed a driver reports may be from the one
// asked and still be taken: a UART receiver samples each bit in its middle,
// so a few per cent over a character is harmless (an FTDI's fractional
// divisor rounds within this).
const BaudTolerance = 0.03

// SettingError is a setting the driver did not take: the port runs with
// Got instead of what was Asked.
type SettingError struct {
	Path  string
	What  string // "baud", "data bits", "parity", "stop bits", "flow control"
	Asked string
	Got   string
	Hint  string
}

func (e *SettingError) Error() string {
	switch e.What {
	case "baud":
		return fmt.Sprintf("%s runs at %s baud, not %s: %s", e.Path, e.Got, e.Asked, e.Hint)
	}
	return fmt.Sprintf("%s has %s %s, not %s: %s", e.Path, e.What, e.Got, e.Asked, e.Hint)
}

// verify compares what the driver set (got) with what was asked. It returns
// a note when the speed was rounded within BaudTolerance, and a
// *SettingError for the first setting not taken. topBaud is the UART's top
// speed where the driver says it (0 if not). A pseudo-terminal (pty) always
// carries 8-bit bytes without parity whatever is asked (the kernel's pty
// driver resets both), so on one those two are noted, not refused: its far
// end is software, for which they mean nothing.
func verify(path string, c Config, got Settings, topBaud int, pty bool) (note string, err error) {
	if got.Baud != c.Baud {
		off := float64(got.Baud-c.Baud) / float64(c.Baud)
		if got.Baud > 0 && off <= BaudTolerance && off >= -BaudTolerance {
			note = fmt.Sprintf("%s runs at %d baud for the %d asked (%+.2f%%, within a UART's tolerance)", path, got.Baud, c.Baud, off*100)
		} else {
			hint := fmt.Sprintf("its driver does not offer %d", c.Baud)
			if topBaud > 0 && c.Baud > topBaud {
				hint += fmt.Sprintf(" (this UART's top speed is %d)", topBaud)
			}
			hint += "; use a rate the adapter supports"
			return "", &SettingError{Path: path, What: "baud", Asked: fmt.Sprint(c.Baud), Got: fmt.Sprint(got.Baud), Hint: hint}
		}
	}
	if pty && (got.DataBits != c.DataBits || (got.Parity != c.Parity && c.Parity != "")) {
		note = fmt.Sprintf("%s is a pseudo-terminal: it carries 8-bit bytes without parity whatever is asked (%s)", path, c)
		got.DataBits, got.Parity = c.DataBits, c.Parity
	}
	const miniUART = "a Raspberry Pi's mini-UART (ttyS0, or ttyS1 under Debian's kernel) has 7 or 8 data bits, no parity and 1 stop bit only: use the PL011 (ttyAMA0, dtoverlay=disable-bt or miniuart-bt)"
	switch {
	case got.DataBits != c.DataBits:
		return note, &SettingError{Path: path, What: "data bits", Asked: fmt.Sprint(c.DataBits), Got: fmt.Sprint(got.DataBits), Hint: "its driver does not offer " + fmt.Sprint(c.DataBits) + " data bits (" + miniUART + ")"}
	case got.Parity != c.Parity && !(c.Parity == "" && got.Parity == ParityNone):
		return note, &SettingError{Path: path, What: "parity", Asked: string(c.Parity), Got: string(got.Parity), Hint: "its driver does not offer " + string(c.Parity) + " parity (" + miniUART + "; mark and space parity need CMSPAR, which some drivers lack)"}
	case got.StopBits != c.StopBits:
		return note, &SettingError{Path: path, What: "stop bits", Asked: fmt.Sprint(c.StopBits), Got: fmt.Sprint(got.StopBits), Hint: "its driver does not offer " + fmt.Sprint(c.StopBits) + " stop bits (" + miniUART + ")"}
	case got.Flow != c.flow():
		return note, &SettingError{Path: path, What: "flow control", Asked: string(c.flow()), Got: string(got.Flow), Hint: "its driver does not offer " + string(c.flow()) + " flow control; wire and use another"}
	}
	return note, nil
}
