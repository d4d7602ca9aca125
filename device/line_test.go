package device

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// recorder is a line that notes every request made of it and plays the
// part of a driver: it keeps a termios, which driver may change as a real
// driver does (keeping an old speed, dropping a flag), and modem bits.
type recorder struct {
	calls  []string
	tty    unix.Termios
	driver func(asked, old unix.Termios) unix.Termios // nil: takes everything
	errs   map[uint]error
	modem  int32
	outq   []int32 // successive TIOCOUTQ answers; the last one repeats
	serial serialStruct
	rs485  serialRS485
	at     []time.Time // when each call was made
}

func newRecorder(c Config) *recorder {
	r := &recorder{errs: map[uint]error{}, modem: tiocmDTR | tiocmRTS | tiocmCTS}
	r.tty.Cflag = unix.CS8 | unix.CREAD | unix.CLOCAL | unix.HUPCL | unix.BOTHER
	r.tty.Ispeed, r.tty.Ospeed = uint32(c.Baud), uint32(c.Baud)
	switch c.DataBits {
	case 5:
		r.tty.Cflag = r.tty.Cflag&^unix.CSIZE | unix.CS5
	case 7:
		r.tty.Cflag = r.tty.Cflag&^unix.CSIZE | unix.CS7
	}
	if c.Parity != ParityNone && c.Parity != "" {
		r.tty.Cflag |= unix.PARENB
	}
	if c.StopBits == 2 {
		r.tty.Cflag |= unix.CSTOPB
	}
	return r
}

func (r *recorder) note(req uint, detail string) error {
	name := requestName(req)
	if detail != "" {
		name += " " + detail
	}
	r.calls = append(r.calls, name)
	r.at = append(r.at, time.Now())
	return r.errs[req]
}

func (r *recorder) ioctlPtr(req uint, arg unsafe.Pointer) error {
	switch req {
	case unix.TCGETS2, unix.TCGETS:
		if err := r.note(req, ""); err != nil {
			return err
		}
		t := (*unix.Termios)(arg)
		speeds := [2]uint32{t.Ispeed, t.Ospeed}
		*t = r.tty
		if req == unix.TCGETS { // struct termios has no speed fields
			t.Ispeed, t.Ospeed = speeds[0], speeds[1]
		}
	case unix.TCSETS2, unix.TCSETS:
		t := *(*unix.Termios)(arg)
		if err := r.note(req, settingsOf(&t).String()); err != nil {
			return err
		}
		if req == unix.TCSETS {
			t.Ispeed, t.Ospeed = r.tty.Ispeed, r.tty.Ospeed
			if b, ok := baudOf[t.Cflag&unix.CBAUD]; ok {
				t.Ispeed, t.Ospeed = uint32(b), uint32(b)
			}
		}
		if r.driver != nil {
			t = r.driver(t, r.tty)
		}
		r.tty = t
	case unix.TIOCMGET:
		if err := r.note(req, ""); err != nil {
			return err
		}
		*(*int32)(arg) = r.modem
	case unix.TIOCMSET, unix.TIOCMBIS, unix.TIOCMBIC:
		v := *(*int32)(arg)
		if err := r.note(req, lineNames(v)); err != nil {
			return err
		}
		switch req {
		case unix.TIOCMSET:
			r.modem = v
		case unix.TIOCMBIS:
			r.modem |= v
		default:
			r.modem &^= v
		}
	case unix.TIOCOUTQ:
		if err := r.note(req, ""); err != nil {
			return err
		}
		n := int32(0)
		if len(r.outq) > 0 {
			n = r.outq[0]
			if len(r.outq) > 1 {
				r.outq = r.outq[1:]
			}
		}
		*(*int32)(arg) = n
	case unix.TIOCSRS485:
		s := *(*serialRS485)(arg)
		if err := r.note(req, fmt.Sprintf("flags=%#x before=%d after=%d", s.Flags, s.DelayRTSBeforeSend, s.DelayRTSAfterSend)); err != nil {
			return err
		}
		r.rs485 = s
	case unix.TIOCGSERIAL:
		if err := r.note(req, ""); err != nil {
			return err
		}
		*(*serialStruct)(arg) = r.serial
	case unix.TIOCSSERIAL:
		s := *(*serialStruct)(arg)
		if err := r.note(req, fmt.Sprintf("flags=%#x", s.Flags)); err != nil {
			return err
		}
		r.serial = s
	default:
		return r.note(req, "?")
	}
	return nil
}

func (r *recorder) ioctlInt(req uint, v int) error {
	if req == unix.TCSBRK {
		return r.note(req, fmt.Sprint(v))
	}
	return r.note(req, "")
}

func lineNames(v int32) string {
	var n []string
	if v&tiocmDTR != 0 {
		n = append(n, "DTR")
	}
	if v&tiocmRTS != 0 {
		n = append(n, "RTS")
	}
	return strings.Join(n, "|")
}

// fakePort is a Port on a recorder, as Open leaves it once go.bug.st/serial
// has set c's speed and format.
func fakePort(path string, c Config, r *recorder) *Port {
	// The descriptor holds only the write deadline: r answers every ioctl.
	file := &lineFD{fd: -1, wake: -1}
	return &Port{path: path, config: c, file: file, line: r, byteTime: c.ByteTime(), sysRoot: "/nonexistent"}
}

func checkCalls(t *testing.T, r *recorder, want ...string) {
	t.Helper()
	if got := strings.Join(r.calls, "; "); got != strings.Join(want, "; ") {
		t.Errorf("requests:\n got  %s\n want %s", got, strings.Join(want, "; "))
	}
}

// keepSpeed is a driver that refuses speeds above top and keeps the old
// one, as the 8250 driver does above its base_baud.
func keepSpeed(top uint32) func(asked, old unix.Termios) unix.Termios {
	return func(asked, old unix.Termios) unix.Termios {
		if asked.Ospeed > top {
			asked.Ospeed, asked.Ispeed = old.Ospeed, old.Ispeed
		}
		return asked
	}
}

func TestReadBackRefusesASpeedTheDriverKept(t *testing.T) {
	c := DefaultConfig()
	c.Baud = 921600
	r := newRecorder(Config{Baud: 9600, DataBits: 8, StopBits: 1}) // the driver kept 9600
	r.serial.BaudBase = 115200
	p := fakePort("/dev/ttyS1", c, r)
	err := p.configure()
	if !errors.Is(err, ErrSetting) {
		t.Fatalf("configure = %v, want ErrSetting", err)
	}
	var se *SettingError
	if !errors.As(err, &se) || se.Asked != "921600" || se.Got != "9600" {
		t.Fatalf("SettingError = %+v, want asked 921600, got 9600", se)
	}
	want := "/dev/ttyS1 runs at 9600 baud, not 921600: its driver does not offer 921600 (this UART's top speed is 115200); use a rate the adapter supports"
	if err.Error() != want {
		t.Errorf("message:\n got  %s\n want %s", err, want)
	}
	checkCalls(t, r, "TCGETS2", "TCGETS2", "TIOCGSERIAL")
}

func TestReadBackTakesANearRateAndNotesIt(t *testing.T) {
	c := DefaultConfig()
	c.Baud = 3_000_000
	r := newRecorder(c)
	r.tty.Ospeed = 2_950_000 // a divisor's rounding, -1.7 %
	p := fakePort("/dev/ttyUSB0", c, r)
	if err := p.configure(); err != nil {
		t.Fatalf("configure = %v, want nil", err)
	}
	if got := p.Settings().Baud; got != 2_950_000 {
		t.Errorf("Settings().Baud = %d, want 2950000", got)
	}
	if len(p.Notes()) != 1 || !strings.Contains(p.Notes()[0], "runs at 2950000 baud for the 3000000 asked (-1.67%") {
		t.Errorf("notes = %q, want one naming 2950000 and -1.67%%", p.Notes())
	}
	if want := (Config{Baud: 2_950_000, DataBits: 8, StopBits: 1}).ByteTime(); p.byteTime != want {
		t.Errorf("byteTime = %v, want %v (timed at the real rate)", p.byteTime, want)
	}
}

func TestReadBackComparesEverySetting(t *testing.T) {
	dropFlag := func(cflag, iflag uint32) func(asked, old unix.Termios) unix.Termios {
		return func(asked, old unix.Termios) unix.Termios {
			asked.Cflag &^= cflag
			asked.Iflag &^= iflag
			return asked
		}
	}
	tests := []struct {
		name   string
		c      Config
		ttyCfg Config // what go.bug.st/serial's set left
		driver func(asked, old unix.Termios) unix.Termios
		want   string // "" for no error
	}{
		{"all taken", Config{Baud: 115200, DataBits: 8, Parity: ParityEven, StopBits: 2, Flow: FlowRTSCTS}, Config{Baud: 115200, DataBits: 8, Parity: ParityEven, StopBits: 2}, nil, ""},
		{"parity ignored", Config{Baud: 115200, DataBits: 8, Parity: ParityEven, StopBits: 1}, Config{Baud: 115200, DataBits: 8, StopBits: 1}, nil, "/dev/ttyS0 has parity none, not even: "},
		{"two stop bits ignored", Config{Baud: 115200, DataBits: 8, Parity: ParityNone, StopBits: 2}, Config{Baud: 115200, DataBits: 8, StopBits: 1}, nil, "/dev/ttyS0 has stop bits 1, not 2: "},
		{"7 data bits ignored", Config{Baud: 115200, DataBits: 7, Parity: ParityNone, StopBits: 1}, Config{Baud: 115200, DataBits: 8, StopBits: 1}, nil, "/dev/ttyS0 has data bits 8, not 7: "},
		{"rtscts dropped", Config{Baud: 115200, DataBits: 8, Parity: ParityNone, StopBits: 1, Flow: FlowRTSCTS}, Config{Baud: 115200, DataBits: 8, StopBits: 1}, dropFlag(unix.CRTSCTS, 0), "/dev/ttyS0 has flow control none, not rtscts: "},
		{"xonxoff taken", Config{Baud: 9600, DataBits: 8, Parity: ParityNone, StopBits: 1, Flow: FlowXONXOFF}, Config{Baud: 9600, DataBits: 8, StopBits: 1}, nil, ""},
		{"xonxoff dropped", Config{Baud: 9600, DataBits: 8, Parity: ParityNone, StopBits: 1, Flow: FlowXONXOFF}, Config{Baud: 9600, DataBits: 8, StopBits: 1}, dropFlag(0, unix.IXOFF), "/dev/ttyS0 has flow control none, not xonxoff: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder(tt.ttyCfg)
			r.driver = tt.driver
			p := fakePort("/dev/ttyS0", tt.c, r)
			err := p.configure()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("configure = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want) || !errors.Is(err, ErrSetting)):
				t.Fatalf("configure = %v, want ErrSetting starting %q", err, tt.want)
			}
			if err == nil && p.Settings().Flow != tt.c.flow() {
				t.Errorf("flow read back = %s, want %s", p.Settings().Flow, tt.c.flow())
			}
		})
	}
}

func TestReadBackOnAPseudoTerminalNotesDataBitsAndParity(t *testing.T) {
	c := Config{Baud: 9600, DataBits: 7, Parity: ParityEven, StopBits: 2}
	r := newRecorder(Config{Baud: 9600, DataBits: 8, StopBits: 2}) // a pty resets CSIZE and PARENB
	p := fakePort("/dev/pts/3", c, r)
	p.pty = true
	if err := p.configure(); err != nil {
		t.Fatalf("configure = %v, want nil", err)
	}
	if len(p.Notes()) != 1 || !strings.Contains(p.Notes()[0], "pseudo-terminal") {
		t.Errorf("notes = %q, want one about the pseudo-terminal", p.Notes())
	}
}

// Under qemu-user, TCGETS2 and TCSETS2 give ENOSYS: the standard pair must
// do, with the speed read from CBAUD.
func TestTermiosFallsBackWhereTCGETS2IsMissing(t *testing.T) {
	c := DefaultConfig()
	c.Flow = FlowRTSCTS
	r := newRecorder(c)
	r.tty.Cflag = r.tty.Cflag&^unix.CBAUD | unix.B115200
	r.tty.Ispeed, r.tty.Ospeed = 0, 0 // not seen through TCGETS
	r.errs[unix.TCGETS2] = unix.ENOSYS
	r.errs[unix.TCSETS2] = unix.ENOSYS
	p := fakePort("/dev/pts/1", c, r)
	if err := p.configure(); err != nil {
		t.Fatalf("configure = %v, want nil", err)
	}
	checkCalls(t, r, "TCGETS2", "TCGETS", "TCSETS 115200 8N1, flow rtscts", "TCGETS2", "TCGETS", "TIOCGSERIAL")
	if got := p.Settings(); got.Baud != 115200 || got.Flow != FlowRTSCTS {
		t.Errorf("settings = %v, want 115200 8N1, flow rtscts", got)
	}
}

func TestHangUpOnCloseIsSetOrCleared(t *testing.T) {
	for _, keep := range []bool{false, true} {
		c := DefaultConfig()
		c.KeepLines = keep
		r := newRecorder(c)
		r.tty.Cflag &^= unix.HUPCL
		p := fakePort("/dev/ttyUSB0", c, r)
		if err := p.configure(); err != nil {
			t.Fatalf("configure = %v", err)
		}
		if got := r.tty.Cflag&unix.HUPCL != 0; got == keep {
			t.Errorf("KeepLines %v: HUPCL = %v, want %v", keep, got, !keep)
		}
	}
}

func TestSetLinesChangesOnlyTheLinesAsked(t *testing.T) {
	tests := []struct {
		dtr, rts Level
		want     []string
		modem    int32
	}{
		{LevelOn, LevelOff, []string{"TIOCMBIC RTS", "TIOCMBIS DTR"}, tiocmDTR | tiocmCTS},
		{LevelOff, LevelKeep, []string{"TIOCMBIC DTR"}, tiocmRTS | tiocmCTS},
		{LevelKeep, LevelKeep, nil, tiocmDTR | tiocmRTS | tiocmCTS},
		{LevelOff, LevelOff, []string{"TIOCMBIC DTR|RTS"}, tiocmCTS},
	}
	for _, tt := range tests {
		r := newRecorder(DefaultConfig())
		if err := setLines(r, tt.dtr, tt.rts); err != nil {
			t.Fatalf("setLines(%v, %v) = %v", tt.dtr, tt.rts, err)
		}
		checkCalls(t, r, tt.want...)
		if r.modem != tt.modem {
			t.Errorf("setLines(%v, %v): modem bits %#x, want %#x", tt.dtr, tt.rts, r.modem, tt.modem)
		}
	}
}

func TestModemLinesOnAPseudoTerminalAreUnsupported(t *testing.T) {
	r := newRecorder(DefaultConfig())
	r.errs[unix.TIOCMBIS] = unix.ENOTTY
	p := fakePort("/dev/pts/4", DefaultConfig(), r)
	err := p.SetLines(LevelOn, LevelKeep)
	if !errors.Is(err, ErrUnsupported) || !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("SetLines = %v, want ErrUnsupported wrapping ENOTTY", err)
	}
	if want := "modem lines /dev/pts/4: it has no modem control lines"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message = %q, want it to start %q", err, want)
	}
}

func TestRS485IsSetWithItsFlagsAndDelays(t *testing.T) {
	c := DefaultConfig()
	c.RS485 = RS485{Enabled: true, RTSOnSend: true, RXDuringTX: true, DelayBefore: 2 * time.Millisecond, DelayAfter: time.Millisecond}
	r := newRecorder(c)
	p := fakePort("/dev/ttyAMA0", c, r)
	if err := p.configure(); err != nil {
		t.Fatalf("configure = %v", err)
	}
	want := serialRS485{Flags: serRS485Enabled | serRS485RTSOnSend | serRS485RXDuringTX, DelayRTSBeforeSend: 2, DelayRTSAfterSend: 1}
	if r.rs485 != want {
		t.Errorf("serial_rs485 = %+v, want %+v", r.rs485, want)
	}
	if unsafe.Sizeof(serialRS485{}) != 32 {
		t.Errorf("sizeof serial_rs485 = %d, want 32", unsafe.Sizeof(serialRS485{}))
	}
}

func TestRS485RefusedByAUSBAdapterSaysSo(t *testing.T) {
	c := DefaultConfig()
	c.RS485 = RS485{Enabled: true, RTSOnSend: true}
	r := newRecorder(c)
	r.errs[unix.TIOCSRS485] = unix.ENOTTY
	err := fakePort("/dev/ttyUSB0", c, r).configure()
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("configure = %v, want ErrUnsupported", err)
	}
	if want := "configure /dev/ttyUSB0: its driver has no RS-485 mode (USB-RS-485 adapters drive their transceiver themselves"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message = %q, want it to start %q", err, want)
	}
}

func TestRS485Validation(t *testing.T) {
	tests := []struct {
		r    RS485
		want string
	}{
		{RS485{RTSOnSend: true}, "device: RS485.RTSOnSend true needs RS485.Enabled"},
		{RS485{DelayAfter: time.Millisecond}, "device: RS485.DelayAfter 1ms needs RS485.Enabled"},
		{RS485{Enabled: true, DelayBefore: -time.Millisecond}, "negative"},
		{RS485{Enabled: true, DelayAfter: 1500 * time.Microsecond}, "not whole milliseconds"},
		{RS485{Enabled: true, DelayAfter: 200 * time.Millisecond}, "above the kernel's 100ms"},
		{RS485{Enabled: true, DelayAfter: 100 * time.Millisecond}, ""},
	}
	for _, tt := range tests {
		err := tt.r.validate()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("validate(%+v) = %v, want %q", tt.r, err, tt.want)
		}
	}
}

func TestLowLatencySetsTheFlag(t *testing.T) {
	c := DefaultConfig()
	c.LowLatency = true
	r := newRecorder(c)
	r.serial = serialStruct{Type: 4, BaudBase: 115200, Flags: 0x40}
	if err := fakePort("/dev/ttyS1", c, r).configure(); err != nil {
		t.Fatalf("configure = %v", err)
	}
	if want := int32(0x40 | asyncLowLatency); r.serial.Flags != want {
		t.Errorf("serial_struct flags = %#x, want %#x", r.serial.Flags, want)
	}
	want := map[uintptr]uintptr{8: 72, 4: 60}[unsafe.Sizeof(uintptr(0))]
	if got := unsafe.Sizeof(serialStruct{}); got != want {
		t.Errorf("sizeof serial_struct = %d, want %d", got, want)
	}
}

// TestDrainKeepsTheWriteDeadline checks that Drain, and a BREAK's drain,
// end at the deadline SetWriteDeadline gave the writes.
func TestDrainKeepsTheWriteDeadline(t *testing.T) {
	for _, op := range []struct {
		name string
		f    func(*Port) error
	}{{"Drain", (*Port).Drain}, {"Break", func(p *Port) error { return p.Break(time.Millisecond) }}} {
		r := newRecorder(DefaultConfig())
		r.outq = []int32{64} // the device never takes the last 64 bytes
		p := fakePort("/dev/ttyUSB0", DefaultConfig(), r)
		if err := p.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- op.f(p) }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrStalled) {
				t.Errorf("%s after SetWriteDeadline = %v, want ErrStalled", op.name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s went on 5s past a deadline 50ms away", op.name) // it never returns: the recorder's queue never empties
		}
	}
}

func TestDrainEndsAtTheDeadlineWhenTheDeviceHangs(t *testing.T) {
	r := newRecorder(DefaultConfig())
	r.outq = []int32{64} // the device never takes the last 64 bytes
	p := fakePort("/dev/ttyUSB0", DefaultConfig(), r)
	start := time.Now()
	err := p.DrainBy(start.Add(50 * time.Millisecond))
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("DrainBy = %v, want ErrStalled", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("hang-guard: DrainBy took %v, over 40 times its 50ms deadline", took)
	}
	for _, c := range r.calls {
		if c == "TCSBRK 1" {
			t.Errorf("tcdrain was called although the queue never emptied: %v", r.calls)
		}
	}
}

func TestDrainWaitsForTheQueueThenTheUART(t *testing.T) {
	r := newRecorder(DefaultConfig())
	r.outq = []int32{30, 12, 0}
	p := fakePort("/dev/ttyUSB0", DefaultConfig(), r)
	if err := p.Drain(); err != nil {
		t.Fatalf("Drain = %v", err)
	}
	checkCalls(t, r, "TIOCOUTQ", "TIOCOUTQ", "TIOCOUTQ", "TCSBRK 1")
}

func TestFrameBreakAndMarkAreTimed(t *testing.T) {
	c := Config{Baud: 250000, DataBits: 8, Parity: ParityNone, StopBits: 2, FrameBreak: 2 * time.Millisecond, MarkAfterBreak: time.Millisecond}
	r := newRecorder(c)
	p := fakePort("/dev/ttyUSB0", c, r)
	if !p.ShapeFrames() {
		t.Fatal("ShapeFrames = false with a frame break")
	}
	if err := p.BeforeFrame(); err != nil {
		t.Fatalf("BeforeFrame = %v", err)
	}
	checkCalls(t, r, "TIOCOUTQ", "TCSBRK 1", "TIOCSBRK", "TIOCCBRK")
	if brk := r.at[3].Sub(r.at[2]); brk < c.FrameBreak {
		t.Errorf("break lasted %v, want at least %v", brk, c.FrameBreak)
	}
	if got := p.LastBreak().Break; got < c.FrameBreak {
		t.Errorf("LastBreak().Break = %v, want at least %v", got, c.FrameBreak)
	}
	// The mark is kept by the frame's Write, up to its write(2).
	if got := p.markUntil.Sub(p.LastBreak().End); got != c.MarkAfterBreak {
		t.Errorf("mark ends %v after the break, want %v", got, c.MarkAfterBreak)
	}
}

func TestGapWaitsForTheFrameToLeaveTheLine(t *testing.T) {
	c := Config{Baud: 9600, DataBits: 8, Parity: ParityNone, StopBits: 1, Gap: 2 * time.Millisecond}
	r := newRecorder(c)
	p := fakePort("/dev/ttyUSB0", c, r)
	start := time.Now()
	p.lineFree = start.Add(7 * c.ByteTime()) // a 7-byte frame just written
	if err := p.AfterFrame(); err != nil {
		t.Fatalf("AfterFrame = %v", err)
	}
	want := 7*c.ByteTime() + c.Gap
	if took := time.Since(start); took < want {
		t.Errorf("AfterFrame returned after %v, want at least %v (the frame's line time and the gap)", took, want)
	}
	checkCalls(t, r, "TIOCOUTQ", "TCSBRK 1")
}

func TestParseResetSeq(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"D0|R1|W0.1|D1|R0|W0.05|D0", "D0|R1|W0.1|D1|R0|W0.05|D0", ""},
		{"U0,1|W0.01|U1,0", "U0,1|W0.01|U1,0", ""},
		{"", "", ""},
		{"D2", "", `step 1 "D2" needs 0 or 1`},
		{"D0||R1", "", `step 2 "" is empty`},
		{"W-1", "", "negative wait"},
		{"Wabc", "", "needs a number of seconds"},
		{"W11", "", "longer than 10s"},
		{"X1", "", "is not a step"},
		{"U1", "", "needs two bits"},
	}
	for _, tt := range tests {
		q, err := ParseResetSeq(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseResetSeq(%q) = %v, want an error with %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || q.String() != tt.want {
			t.Errorf("ParseResetSeq(%q) = %q, %v; want %q", tt.in, q, err, tt.want)
		}
	}
}

func TestResetRunsTheSequenceOnTheLines(t *testing.T) {
	q, err := ParseResetSeq("D0|R1|W0.1|D1|R0|W0.05|D0|U1,1")
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder(DefaultConfig())
	var waits []time.Duration
	if err := runReset(r, q, func(d time.Duration) { waits = append(waits, d) }); err != nil {
		t.Fatalf("runReset = %v", err)
	}
	checkCalls(t, r, "TIOCMBIC DTR", "TIOCMBIS RTS", "TIOCMBIS DTR", "TIOCMBIC RTS", "TIOCMBIC DTR", "TIOCMGET", "TIOCMSET DTR|RTS")
	if fmt.Sprint(waits) != "[100ms 50ms]" {
		t.Errorf("waits = %v, want [100ms 50ms]", waits)
	}
}

func TestBreakRefusedByTheDriverIsUnsupported(t *testing.T) {
	c := DefaultConfig()
	c.FrameBreak = 100 * time.Microsecond
	r := newRecorder(c)
	r.errs[unix.TIOCSBRK] = unix.ENOSYS
	err := fakePort("/dev/ttyAMA0", c, r).BeforeFrame()
	if !errors.Is(err, ErrUnsupported) || errors.Is(err, ErrGone) {
		t.Fatalf("BeforeFrame = %v, want ErrUnsupported (not ErrGone)", err)
	}
	if want := "break /dev/ttyAMA0: its driver cannot send a BREAK on demand"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message = %q, want it to start %q", err, want)
	}
}

func TestUnsupportedOnlyForRequestsTheDriverLacks(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{unix.ENOTTY, true},
		{unix.EINVAL, true},
		{unix.ENOSYS, true},
		{fmt.Errorf("TIOCSRS485: %w", unix.ENOTTY), true},
		{unix.EIO, false},
		{unix.EPERM, false},
	} {
		err := unsupported(ControlBreak, "no", c.err)
		var u *UnsupportedError
		if got := errors.As(err, &u); got != c.want {
			t.Errorf("unsupported(%v) = %v, want an UnsupportedError: %v", c.err, err, c.want)
		}
		if !errors.Is(err, c.err) {
			t.Errorf("unsupported(%v) = %v, which no longer wraps it", c.err, err)
		}
	}
	if err := unsupported(ControlBreak, "no", nil); err != nil {
		t.Errorf("unsupported(nil) = %v, want nil", err)
	}
}
