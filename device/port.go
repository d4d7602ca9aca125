//go:build linux

package device

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"go.bug.st/serial"
	"golang.org/x/sys/unix"

	"github.com/framesend/framesend/internal/precise"
)

// Port is an open serial port. It holds two descriptors of the device:
// go.bug.st/serial's, which configured the line and serves Read, and
// framesend's own, non-blocking (see lineFD), which serves Write (with
// deadlines), the drain, the flock and every ioctl that go.bug.st/serial
// does not make.
type Port struct {
	path     string
	config   Config
	port     serial.Port
	file     *lineFD // framesend's descriptor; holds the flock if any
	line     line
	closed   atomic.Bool
	settings Settings
	notes    []string
	byteTime time.Duration
	pty      bool // a pseudo-terminal's device side
	timerWas int  // an FTDI latency timer before it was lowered, or 0

	lastBreak BreakTiming // set by the goroutine that sends
	markUntil time.Time   // the mark after a frame's break ends then (Write waits for it)
	rt        int         // real-time priority for shaping: 0 not asked, 1 granted, -1 refused
	sysRoot   string      // where sysfs is found: "/" but in tests

	// lineFree is when the bytes written so far have left the UART at the
	// earliest: they cannot go faster than the line carries them. Used by
	// the goroutine that writes.
	lineFree time.Time
}

// Open validates c, opens the serial device at path in raw mode with c's
// settings, reads the settings back from the driver, and takes the port for
// this process alone: an exclusive flock, which holds for root too,
// besides go.bug.st/serial's TIOCEXCL, which root ignores. If another
// process holds the port, the *Error is ErrBusy and names it; if the driver
// did not take a setting, it is ErrSetting and wraps a *SettingError.
// Errors are *Error values naming path.
func Open(path string, c Config) (*Port, error) { return open(path, c, true) }

// OpenShared is Open without the flock and without go.bug.st/serial's
// TIOCEXCL, for a port shared on purpose: other processes, framesend or
// not, root or not, may then open the port too.
func OpenShared(path string, c Config) (*Port, error) { return open(path, c, false) }

func open(path string, c Config, lock bool) (*Port, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	_, serr := os.Stat(path)
	switch real, _ := filepath.EvalSymlinks(path); {
	case errors.Is(serr, syscall.ELOOP):
		return nil, &Error{Op: "open", Path: path, Class: ErrNotFound, Err: &cause{"its symbolic links loop back on themselves and lead to no device", serr}}
	case real == "/dev/ptmx" || real == "/dev/pts/ptmx":
		return nil, &Error{Op: "open", Path: path, Class: ErrNotSerial, Err: errors.New("it is the pseudo-terminal multiplexer: each open makes a new pseudo-terminal that nobody reads; name the pseudo-terminal itself, such as socat's link or /dev/pts/N")}
	}
	// A directory opens with EISDIR and a missing node with ENOENT inside
	// go.bug.st/serial; a regular file would be accepted by open(2) and only
	// fail at the first ioctl, so it is refused by its mode up front.
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() && fi.Mode()&os.ModeCharDevice == 0 {
		return nil, &Error{Op: "open", Path: path, Class: ErrNotSerial, Err: fmt.Errorf("%s is a %s", path, describeMode(fi.Mode()))}
	}
	// framesend's own descriptor is opened first, before
	// go.bug.st/serial sets TIOCEXCL (after which no second open would
	// succeed for a user). A flock on any descriptor of the device
	// excludes every other one.
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.EBUSY) {
			return nil, busy(path)
		}
		return nil, classify("open", path, err)
	}
	if lock {
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			unix.Close(fd)
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, busy(path)
			}
			return nil, classify("lock", path, err)
		}
	}
	// Non-blocking, so that writes can honour a deadline (see lineFD).
	file, err := newLineFD(fd)
	if err != nil {
		unix.Close(fd)
		return nil, classify("open", path, err)
	}
	l := fdLine{control: file.control}
	p, err := serial.Open(path, c.mode())
	if err != nil {
		file.Close()
		if e := classify("open", path, err); errors.Is(e, ErrBusy) {
			return nil, busy(path)
		}
		return nil, classify("open", path, err)
	}
	// go.bug.st/serial has set TIOCEXCL, which refuses every later open
	// by a user other than root: without the lock the port is shared, as
	// OpenShared promises, so that is undone.
	if !lock {
		if err := l.ioctlInt(unix.TIOCNXCL, 0); err != nil {
			p.Close()
			file.Close()
			return nil, classify("open", path, err)
		}
	}
	// Every open(2) of a tty raises DTR and RTS (the kernel's
	// tty_port_block_til_ready), go.bug.st/serial's open included: set them
	// again, or they stay as that second open left them (seen on the 8250
	// driver in make hil).
	if err := setLines(l, c.DTR, c.RTS); err != nil {
		p.Close()
		file.Close()
		return nil, &Error{Op: "configure", Path: path, Class: classOfControl(err), Err: err}
	}
	port := &Port{path: path, config: c, port: p, file: file, line: l, byteTime: c.ByteTime(), pty: isPTY(file.control), sysRoot: "/"}
	if err := port.configure(); err != nil {
		port.Close()
		return nil, err
	}
	return port, nil
}

// configure sets what go.bug.st/serial does not (flow control, HUPCL,
// RS-485, low latency) on framesend's descriptor, then reads the line back
// and checks that the driver took every setting.
func (p *Port) configure() error {
	c := p.config
	t, calls, err := getTermios(p.line)
	if err != nil {
		return &Error{Op: "configure", Path: p.path, Class: ErrNotSerial, Err: err}
	}
	want := *t
	applyLine(&want, c)
	if want != *t {
		if err := setTermios(p.line, calls, &want); err != nil {
			return &Error{Op: "configure", Path: p.path, Class: ErrNotSerial, Err: err}
		}
	}
	if c.RS485.Enabled {
		if err := setRS485(p.line, c.RS485); err != nil {
			return &Error{Op: "configure", Path: p.path, Class: classOfControl(err), Err: err}
		}
	}
	if c.LowLatency {
		if err := setLowLatency(p.line); err != nil {
			return &Error{Op: "configure", Path: p.path, Class: classOfControl(err), Err: err}
		}
		if f := latencyTimerFile(p.sysRoot, p.path); f != "" {
			if was := readLatencyTimer(f); was > 1 {
				p.timerWas = was
			}
			if err := os.WriteFile(f, []byte("1"), 0); err != nil {
				p.notes = append(p.notes, fmt.Sprintf("%s: could not set the FTDI latency timer to 1 ms (%v); it stays at %d ms", p.path, err, readLatencyTimer(f)))
			} else {
				p.notes = append(p.notes, fmt.Sprintf("%s: FTDI latency timer set to 1 ms", p.path))
			}
		}
	}
	got, _, err := getTermios(p.line)
	if err != nil {
		return &Error{Op: "configure", Path: p.path, Class: ErrNotSerial, Err: err}
	}
	p.settings = settingsOf(got)
	top := 0
	if s, err := getSerial(p.line); err == nil && s.BaudBase > 0 {
		top = int(s.BaudBase)
	}
	note, err := verify(p.path, c, p.settings, top, p.pty)
	if note != "" {
		p.notes = append(p.notes, note)
	}
	if err != nil {
		return &Error{Op: "configure", Path: p.path, Class: ErrSetting, Err: err}
	}
	if p.settings.Baud > 0 {
		c.Baud = p.settings.Baud // time the line at the speed it really runs
		p.byteTime = c.ByteTime()
	}
	return nil
}

// isPTY reports whether the descriptor is a pseudo-terminal's device side
// (/dev/pts/N: the kernel's UNIX98 pty slave majors are 136 to 143).
func isPTY(control func(func(fd uintptr)) error) bool {
	var st unix.Stat_t
	var serr error = unix.ENOTTY
	control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) })
	if serr != nil {
		return false
	}
	m := unix.Major(st.Rdev)
	return m >= 136 && m <= 143
}

// classOfControl is the class of a failed line control: unsupported by the
// driver, or the device gone.
func classOfControl(err error) error {
	var u *UnsupportedError
	if errors.As(err, &u) {
		return ErrUnsupported
	}
	return classOf("configure", err)
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

// Settings returns the line's settings as read back from the driver after
// they were applied.
func (p *Port) Settings() Settings { return p.settings }

// Notes returns what Open found worth telling without failing: a speed the
// driver rounded within BaudTolerance, the FTDI latency timer.
func (p *Port) Notes() []string { return p.notes }

// Write writes all of b unless the write deadline passes or the device
// fails first, and returns how much the kernel took. It blocks while the
// device's buffer is full. A write ended by the deadline is an *Error of
// class ErrStalled that also wraps os.ErrDeadlineExceeded. It never writes
// after Close.
func (p *Port) Write(b []byte) (int, error) {
	if p.closed.Load() {
		return 0, &Error{Op: "write", Path: p.path, Class: ErrClosed}
	}
	if !p.ShapeFrames() {
		// Unshaped, nothing reads lineFree or markUntil: no clock per write.
		n, err := p.file.Write(b)
		return n, classify("write", p.path, err)
	}
	if !p.markUntil.IsZero() {
		precise.SleepSpin(time.Until(p.markUntil))
		p.markUntil = time.Time{}
		p.lastBreak.Mark = time.Since(p.lastBreak.End)
	}
	start := time.Now()
	n, err := p.file.Write(b)
	if n > 0 {
		if p.lineFree.Before(start) {
			p.lineFree = start
		}
		p.lineFree = p.lineFree.Add(time.Duration(n) * p.byteTime)
	}
	return n, classify("write", p.path, err)
}

// SetWriteDeadline bounds Write, Drain, Break and the shaping around a
// frame: past t they give up with ErrStalled. The zero time waits for
// ever. It may be called from any goroutine, also during a Write.
func (p *Port) SetWriteDeadline(t time.Time) error {
	if p.closed.Load() {
		return &Error{Op: "write", Path: p.path, Class: ErrClosed}
	}
	p.file.SetWriteDeadline(t)
	return nil
}

// writeDeadline is the deadline SetWriteDeadline set last, which the
// descriptor keeps for its writes.
func (p *Port) writeDeadline() time.Time { return p.file.writeDeadline() }

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
// device, or until the write deadline (see SetWriteDeadline). USB adapters
// may still hold bytes in their own buffer.
func (p *Port) Drain() error { return p.DrainBy(p.writeDeadline()) }

// DrainBy is Drain with its own deadline; the zero time waits for ever.
// It watches the kernel's output queue (TIOCOUTQ) rather than blocking in
// tcdrain, which nothing can interrupt: a device that stops taking data
// (flow control held, a hung adapter) ends it at the deadline with an
// *Error of class ErrStalled.
func (p *Port) DrainBy(deadline time.Time) error {
	if p.closed.Load() {
		return &Error{Op: "drain", Path: p.path, Class: ErrClosed}
	}
	return p.drainBy(deadline)
}

func (p *Port) drainBy(deadline time.Time) error {
	for {
		n, err := outq(p.line)
		if err != nil {
			return classify("drain", p.path, err)
		}
		if n == 0 {
			break
		}
		now := time.Now()
		if !deadline.IsZero() && !now.Before(deadline) {
			return &Error{Op: "drain", Path: p.path, Class: ErrStalled, Err: fmt.Errorf("%d bytes still wait for the device: %w", n, os.ErrDeadlineExceeded)}
		}
		// Sleep about as long as the queue takes on the line, within
		// bounds that keep a drain both cheap and prompt.
		wait := min(max(time.Duration(n)*p.byteTime, 50*time.Microsecond), 5*time.Millisecond)
		if !deadline.IsZero() {
			wait = min(wait, deadline.Sub(now))
		}
		time.Sleep(wait)
	}
	// The kernel's queue is empty; tcdrain now waits only for the UART's
	// own FIFO, which the driver bounds by a few character times.
	if err := p.line.ioctlInt(unix.TCSBRK, 1); err != nil {
		return classify("drain", p.path, err)
	}
	return nil
}

// settle starts the shaping around a frame (op names it in errors): on the
// shaping thread (see ShapeFrames), it blocks until the bytes written so far
// have left the line: the kernel's queue drained and, since bytes cannot
// leave faster than the line carries them, at least their line time after
// they were written.
func (p *Port) settle(op string) error {
	if p.closed.Load() {
		return &Error{Op: op, Path: p.path, Class: ErrClosed}
	}
	if p.rt == 0 {
		p.rt = -1
		if precise.RealTime() {
			p.rt = 1
		}
	}
	if err := p.drainBy(p.writeDeadline()); err != nil {
		return err
	}
	precise.SleepSpin(time.Until(p.lineFree))
	return nil
}

// ShapeFrames reports whether the port shapes the line around each frame
// (a BREAK before it, an idle gap after it), so that the sender writes one
// frame per call and calls BeforeFrame and AfterFrame around each.
//
// The first call of BeforeFrame or AfterFrame wires the calling goroutine to
// its thread for good and asks real-time priority for that thread (granted
// to root or with CAP_SYS_NICE; see RealTime), so that breaks, marks and
// gaps keep to the microsecond on a busy machine. Call them from the
// goroutine that writes, which should end when the sending does.
func (p *Port) ShapeFrames() bool { return p.config.FrameBreak > 0 || p.config.Gap > 0 }

// RealTime reports whether the thread shaping the frames got real-time
// priority (false before the first shaped frame, or if refused).
func (p *Port) RealTime() bool { return p.rt > 0 }

// BeforeFrame sends the BREAK and the mark-after-break that precede every
// frame (DMX512), once the previous frame has left the line.
func (p *Port) BeforeFrame() error {
	if p.config.FrameBreak <= 0 {
		return nil
	}
	if err := p.settle("break"); err != nil {
		return err
	}
	if err := p.breakNow(p.config.FrameBreak); err != nil {
		return err
	}
	// The mark ends in Write, just before the frame's write(2), so that
	// what the sender does in between is part of the mark, not added to it.
	p.markUntil = p.lastBreak.End.Add(p.config.MarkAfterBreak)
	return nil
}

// AfterFrame keeps the line idle for the gap after a frame: it waits until
// the frame has left the line (one drain per frame), then the gap.
func (p *Port) AfterFrame() error {
	if p.config.Gap <= 0 {
		return nil
	}
	if err := p.settle("drain"); err != nil {
		return err
	}
	precise.SleepSpin(p.config.Gap)
	p.lineFree = time.Now()
	return nil
}

// Lines are the modem control and status lines of a port.
type Lines struct {
	DTR, RTS bool // outputs
	CTS, DSR bool // inputs
	Loop     bool // the UART's internal loopback (TIOCM_LOOP)
}

// Lines reads the modem lines (TIOCMGET). A pseudo-terminal has none: the
// error is then ErrUnsupported.
func (p *Port) Lines() (Lines, error) {
	if p.closed.Load() {
		return Lines{}, &Error{Op: "modem lines", Path: p.path, Class: ErrClosed}
	}
	b, err := modemBits(p.line)
	if err != nil {
		return Lines{}, &Error{Op: "modem lines", Path: p.path, Class: classOfControl(err), Err: err}
	}
	return Lines{DTR: b&tiocmDTR != 0, RTS: b&tiocmRTS != 0, CTS: b&tiocmCTS != 0, DSR: b&unix.TIOCM_DSR != 0, Loop: b&tiocmLoop != 0}, nil
}

// SetLines raises or lowers DTR and RTS; LevelKeep leaves a line alone.
func (p *Port) SetLines(dtr, rts Level) error {
	if p.closed.Load() {
		return &Error{Op: "modem lines", Path: p.path, Class: ErrClosed}
	}
	if err := setLines(p.line, dtr, rts); err != nil {
		return &Error{Op: "modem lines", Path: p.path, Class: classOfControl(err), Err: err}
	}
	return nil
}

// Close releases the port. A Write in progress ends (with an error) and
// no write reaches the descriptor afterwards. Closing twice is safe.
func (p *Port) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	err := p.port.Close()
	p.file.Close() // releases the flock
	return classify("close", p.path, err)
}
