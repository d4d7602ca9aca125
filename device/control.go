//go:build linux

package device

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/framesend/framesend/internal/precise"
)

// ErrUnsupported is the class of a line control the port's driver does not
// have: modem lines on a pseudo-terminal, RS-485 on a USB adapter, low
// latency on a driver without serial_struct.
var ErrUnsupported = errors.New("not supported by the port's driver")

// Level is the state framesend puts a modem control line (DTR, RTS) in.
type Level int8

// The levels: LevelKeep leaves the line as the open left it.
const (
	LevelKeep Level = iota
	LevelOff
	LevelOn
)

// ParseLevel turns "on" or "off" into a Level; "" is LevelKeep.
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return LevelKeep, nil
	case "on", "1", "high", "true":
		return LevelOn, nil
	case "off", "0", "low", "false":
		return LevelOff, nil
	}
	return LevelKeep, fmt.Errorf("%q is not a line level: use on or off", s)
}

func (l Level) String() string {
	switch l {
	case LevelOn:
		return "on"
	case LevelOff:
		return "off"
	}
	return "unchanged"
}

// Flow is a serial line's flow control.
type Flow string

// The flow controls a port can take.
const (
	FlowNone    Flow = "none"
	FlowRTSCTS  Flow = "rtscts"
	FlowXONXOFF Flow = "xonxoff"
)

// ParseFlow turns a user's word for a flow control into a Flow. An unknown
// word is a *ConfigError on Flow.
func ParseFlow(s string) (Flow, error) {
	f := Flow(strings.ToLower(strings.TrimSpace(s)))
	switch f {
	case FlowNone, FlowRTSCTS, FlowXONXOFF:
		return f, nil
	}
	return "", configError("Flow", s, "is not supported: use none, rtscts or xonxoff")
}

// Modem control bits (asm-generic/termios.h). TIOCM_LOOP is not in x/sys.
const (
	tiocmDTR  = unix.TIOCM_DTR
	tiocmRTS  = unix.TIOCM_RTS
	tiocmCTS  = unix.TIOCM_CTS
	tiocmLoop = 0x8000
)

// setLines raises or lowers DTR and RTS as asked, leaving LevelKeep lines
// alone. TIOCMBIS and TIOCMBIC change only the bits named, so one line is
// never glitched while the other is set.
func setLines(l line, dtr, rts Level) error {
	var on, off int32
	for _, x := range []struct {
		lv  Level
		bit int32
	}{{dtr, tiocmDTR}, {rts, tiocmRTS}} {
		switch x.lv {
		case LevelOn:
			on |= x.bit
		case LevelOff:
			off |= x.bit
		}
	}
	if off != 0 {
		if err := l.ioctlPtr(unix.TIOCMBIC, unsafe.Pointer(&off)); err != nil {
			return modemErr(err)
		}
	}
	if on != 0 {
		if err := l.ioctlPtr(unix.TIOCMBIS, unsafe.Pointer(&on)); err != nil {
			return modemErr(err)
		}
	}
	return nil
}

func modemErr(err error) error {
	return unsupported(ControlModemLines, "it has no modem control lines (DTR, RTS): a pseudo-terminal or a socat pair has none", err)
}

// modemBits reads the modem lines (TIOCMGET).
func modemBits(l line) (int, error) {
	var bits int32
	if err := l.ioctlPtr(unix.TIOCMGET, unsafe.Pointer(&bits)); err != nil {
		return 0, modemErr(err)
	}
	return int(bits), nil
}

// Control names a line control a driver may lack.
type Control string

// The line controls a port's driver may refuse.
const (
	ControlModemLines Control = "modem lines" // setting or reading DTR, RTS, CTS
	ControlRS485      Control = "RS-485"      // the kernel's RS-485 mode
	ControlLowLatency Control = "low latency" // ASYNC_LOW_LATENCY
	ControlBreak      Control = "break"       // a BREAK on demand (TIOCSBRK)
)

// An UnsupportedError is a line control the port's driver refused (the
// *Error around it has class ErrUnsupported). Its message says why in the
// driver's terms; Control says which control, so that a command line can
// name the option that asked for it.
type UnsupportedError struct {
	Control Control
	msg     string
	err     error
}

func (e *UnsupportedError) Error() string { return e.msg }

// Unwrap gives what the kernel answered, such as ENOTTY.
func (e *UnsupportedError) Unwrap() error { return e.err }

// unsupported returns an *UnsupportedError for c, saying msg, when err is
// how the kernel refuses a request the driver does not have: ENOTTY,
// EINVAL, or ENOSYS under qemu-user. Other errors (nil too) come back as
// they are.
func unsupported(c Control, msg string, err error) error {
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return &UnsupportedError{Control: c, msg: msg, err: err}
	}
	return err
}

// RS485 is the kernel's RS-485 mode (TIOCSRS485): the driver drives RTS as
// the transceiver's driver enable around each transmission.
type RS485 struct {
	Enabled      bool
	RTSOnSend    bool          // RTS high while sending (the usual wiring)
	RTSAfterSend bool          // RTS high after sending
	DelayBefore  time.Duration // RTS asserted this long before the first bit, whole ms
	DelayAfter   time.Duration // and held this long after the last, whole ms
	RXDuringTX   bool          // keep receiving while sending (hear the own echo)
}

// serialRS485 is struct serial_rs485 (linux/serial.h), which x/sys does
// not declare: flags, the two delays in milliseconds, and padding (address
// fields in newer kernels) that framesend leaves zero.
type serialRS485 struct {
	Flags              uint32
	DelayRTSBeforeSend uint32
	DelayRTSAfterSend  uint32
	Padding            [5]uint32
}

// The serial_rs485 flags (linux/serial.h).
const (
	serRS485Enabled      = 1 << 0
	serRS485RTSOnSend    = 1 << 1
	serRS485RTSAfterSend = 1 << 2
	serRS485RXDuringTX   = 1 << 4
)

// MaxRS485Delay is the longest RTS delay the kernel keeps (serial_core
// clamps longer ones to it).
const MaxRS485Delay = 100 * time.Millisecond

// validate reports the first setting out of range, or set without
// Enabled, as a *ConfigError on "RS485." and the field.
func (r RS485) validate() error {
	if !r.Enabled {
		for _, f := range []struct {
			name  string
			set   bool
			value any
		}{
			{"RTSOnSend", r.RTSOnSend, r.RTSOnSend},
			{"RTSAfterSend", r.RTSAfterSend, r.RTSAfterSend},
			{"DelayBefore", r.DelayBefore != 0, r.DelayBefore},
			{"DelayAfter", r.DelayAfter != 0, r.DelayAfter},
			{"RXDuringTX", r.RXDuringTX, r.RXDuringTX},
		} {
			if f.set {
				return &ConfigError{Field: "RS485." + f.name, Value: fmt.Sprint(f.value), Needs: "RS485.Enabled", Reason: "it applies to the kernel's RS-485 mode only"}
			}
		}
		return nil
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"RS485.DelayBefore", r.DelayBefore}, {"RS485.DelayAfter", r.DelayAfter}} {
		switch {
		case d.d < 0:
			return configError(d.name, d.d, "is negative: use 0 or whole milliseconds such as 1ms")
		case d.d%time.Millisecond != 0:
			return configError(d.name, d.d, "is not whole milliseconds: the kernel counts RS-485 delays in ms (use 0, 1ms, 2ms, …)")
		case d.d > MaxRS485Delay:
			return configError(d.name, d.d, "is above the kernel's %v", MaxRS485Delay)
		}
	}
	return nil
}

func (r RS485) raw() serialRS485 {
	s := serialRS485{
		Flags:              serRS485Enabled,
		DelayRTSBeforeSend: uint32(r.DelayBefore / time.Millisecond),
		DelayRTSAfterSend:  uint32(r.DelayAfter / time.Millisecond),
	}
	if r.RTSOnSend {
		s.Flags |= serRS485RTSOnSend
	}
	if r.RTSAfterSend {
		s.Flags |= serRS485RTSAfterSend
	}
	if r.RXDuringTX {
		s.Flags |= serRS485RXDuringTX
	}
	return s
}

// setRS485 turns the kernel's RS-485 mode on with r's settings.
func setRS485(l line, r RS485) error {
	s := r.raw()
	if err := l.ioctlPtr(unix.TIOCSRS485, unsafe.Pointer(&s)); err != nil {
		return unsupported(ControlRS485, "its driver has no RS-485 mode (USB-RS-485 adapters drive their transceiver themselves and need none; on a UART, enable RS-485 in the device tree or use a HAT whose driver offers it)", fmt.Errorf("TIOCSRS485: %w", err))
	}
	return nil
}

// serialStruct is struct serial_struct (linux/serial.h), which x/sys does
// not declare. Go lays the fields out as C does on every Linux target
// framesend builds for (the pointer and the long are uintptr-sized).
type serialStruct struct {
	Type          int32
	Line          int32
	Port          uint32
	IRQ           int32
	Flags         int32
	XmitFIFOSize  int32
	CustomDivisor int32
	BaudBase      int32
	CloseDelay    uint16
	IOType        int8
	ReservedChar  [1]int8
	Hub6          int32
	ClosingWait   uint16
	ClosingWait2  uint16
	IOMemBase     uintptr
	IOMemRegShift uint16
	PortHigh      uint32
	IOMapBase     uintptr
}

// asyncLowLatency is ASYNC_LOW_LATENCY (linux/tty_flags.h).
const asyncLowLatency = 1 << 13

func getSerial(l line) (*serialStruct, error) {
	var s serialStruct
	if err := l.ioctlPtr(unix.TIOCGSERIAL, unsafe.Pointer(&s)); err != nil {
		return nil, err
	}
	return &s, nil
}

// setLowLatency sets ASYNC_LOW_LATENCY: the driver hands received bytes on
// at once instead of batching them.
func setLowLatency(l line) error { return lowLatency(l, true) }

// lowLatency sets or clears ASYNC_LOW_LATENCY.
func lowLatency(l line, on bool) error {
	s, err := getSerial(l)
	if err == nil {
		if on {
			s.Flags |= asyncLowLatency
		} else {
			s.Flags &^= asyncLowLatency
		}
		err = l.ioctlPtr(unix.TIOCSSERIAL, unsafe.Pointer(s))
	}
	return unsupported(ControlLowLatency, "its driver has no low-latency setting (serial_struct): a pseudo-terminal has none", err)
}

// SetLowLatency turns the driver's low-latency mode on or off, and on an
// FTDI adapter sets its latency timer to 1 ms (on) or back to what it was
// before it was lowered, 16 ms if that is not known (off). It returns a note
// on the latency timer, if the port has one.
func (p *Port) SetLowLatency(on bool) (string, error) {
	if p.closed.Load() {
		return "", &Error{Op: "configure", Path: p.path, Class: ErrClosed}
	}
	if err := lowLatency(p.line, on); err != nil {
		return "", &Error{Op: "configure", Path: p.path, Class: classOfControl(err), Err: err}
	}
	f := latencyTimerFile(p.sysRoot, p.path)
	if f == "" {
		return "", nil
	}
	ms := 1
	if !on {
		ms = 16
		if p.timerWas > 0 {
			ms = p.timerWas
		}
	} else if was := readLatencyTimer(f); was > 1 {
		p.timerWas = was
	}
	if err := os.WriteFile(f, []byte(strconv.Itoa(ms)), 0); err != nil {
		return fmt.Sprintf("%s: could not set the FTDI latency timer to %d ms (%v); it stays at %d ms", p.path, ms, err, readLatencyTimer(f)), nil
	}
	return fmt.Sprintf("%s: FTDI latency timer set to %d ms", p.path, ms), nil
}

// Break sends a BREAK (the line held at space) for d: TIOCSBRK, a precise
// wait, TIOCCBRK. Unlike tcsendbreak (250 ms or more), d may be as short as
// DMX512's 88 µs. The bytes written before are drained first, so the break
// never cuts into them.
func (p *Port) Break(d time.Duration) error {
	if p.closed.Load() {
		return &Error{Op: "break", Path: p.path, Class: ErrClosed}
	}
	if err := p.drainBy(p.writeDeadline()); err != nil {
		return err
	}
	return p.breakNow(d)
}

// BreakTiming is how the last BREAK went. Break runs from the return of
// TIOCSBRK (the driver sets the break as the call's last act, after any
// bytes still queued have gone) to the return of TIOCCBRK; End is that
// return; Mark runs from End to just before the write(2) of the frame that
// followed (zero until it is written).
type BreakTiming struct {
	Break time.Duration
	End   time.Time
	Mark  time.Duration
}

// LastBreak returns the timing of the last BREAK the port sent. Call it
// from the goroutine that sends.
func (p *Port) LastBreak() BreakTiming { return p.lastBreak }

func (p *Port) breakNow(d time.Duration) error {
	if err := p.line.ioctlInt(unix.TIOCSBRK, 0); err != nil {
		err = breakErr(err)
		return &Error{Op: "break", Path: p.path, Class: classOfControl(err), Err: err}
	}
	start := time.Now()
	precise.SleepSpin(d)
	if err := p.line.ioctlInt(unix.TIOCCBRK, 0); err != nil {
		err = breakErr(err)
		return &Error{Op: "break", Path: p.path, Class: classOfControl(err), Err: err}
	}
	p.lineFree = time.Now()
	p.lastBreak = BreakTiming{Break: p.lineFree.Sub(start), End: p.lineFree}
	return nil
}

func breakErr(err error) error {
	return unsupported(ControlBreak, "its driver cannot send a BREAK on demand (TIOCSBRK; qemu-user does not emulate it either)", err)
}

// outq reads how many bytes the kernel holds for the device (TIOCOUTQ).
func outq(l line) (int, error) {
	var n int32
	if err := l.ioctlPtr(unix.TIOCOUTQ, unsafe.Pointer(&n)); err != nil {
		return 0, err
	}
	return int(n), nil
}

// sysfsTTY returns the /sys/class/tty directory of the tty at path (links
// such as /dev/serial/by-id/… followed), or "" if there is none.
func sysfsTTY(root, path string) string {
	real, err := filepath.EvalSymlinks(filepath.Join(root, path))
	if err != nil {
		return ""
	}
	dir := filepath.Join(root, "sys/class/tty", filepath.Base(real))
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	return dir
}

// latencyTimerFile is an FTDI adapter's latency timer in sysfs, or "" if
// the port is not one.
func latencyTimerFile(root, path string) string {
	dir := sysfsTTY(root, path)
	if dir == "" {
		return ""
	}
	f := filepath.Join(dir, "device/latency_timer")
	if _, err := os.Stat(f); err != nil {
		return ""
	}
	return f
}

// readLatencyTimer returns an FTDI's latency timer in ms, or -1.
func readLatencyTimer(file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}
