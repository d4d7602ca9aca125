//go:build linux

package device

import (
	"fmt"
	"strings"
	"time"

	"go.bug.st/serial"
)

// Parity is a serial line's parity setting.
type Parity string

// The parity settings a port can take.
const (
	ParityNone  Parity = "none"
	ParityOdd   Parity = "odd"
	ParityEven  Parity = "even"
	ParityMark  Parity = "mark"
	ParitySpace Parity = "space"
)

var parities = map[Parity]serial.Parity{
	ParityNone:  serial.NoParity,
	ParityOdd:   serial.OddParity,
	ParityEven:  serial.EvenParity,
	ParityMark:  serial.MarkParity,
	ParitySpace: serial.SpaceParity,
}

// MaxBaud is the highest baud rate Config accepts. The fastest USB-serial
// chips framesend targets (FTDI FT232H, CP2105) top out at 12 Mbaud.
const MaxBaud = 12_000_000

// Config is a serial line's settings. The zero value is not valid; start
// from DefaultConfig.
type Config struct {
	Baud     int    // bits per second, 1 to MaxBaud
	DataBits int    // 5 to 8
	Parity   Parity // none, odd, even, mark or space
	StopBits int    // 1 or 2

	Flow       Flow  // none ("" too), rtscts or xonxoff
	DTR, RTS   Level // set at open, before the line is configured
	KeepLines  bool  // clear HUPCL: leave DTR and RTS as they are on close
	RS485      RS485 // the kernel's RS-485 mode, if Enabled
	LowLatency bool  // ASYNC_LOW_LATENCY, and an FTDI's latency timer at 1 ms

	// Shaping of every frame (see Port.BeforeFrame and Port.AfterFrame).
	FrameBreak     time.Duration // a BREAK this long before each frame
	MarkAfterBreak time.Duration // then the line idle (mark) this long
	Gap            time.Duration // the line idle at least this long after each frame
}

// DefaultConfig returns 115200 8N1, the setting most devices ship with.
func DefaultConfig() Config {
	return Config{Baud: 115200, DataBits: 8, Parity: ParityNone, StopBits: 1}
}

// Validate reports the first setting that is out of range. go.bug.st/serial
// passes unknown baud rates to the kernel unchecked (even -1), so the range
// is checked here.
func (c Config) Validate() error {
	switch {
	case c.Baud <= 0 || c.Baud > MaxBaud:
		return fmt.Errorf("baud %d is out of range: use a positive rate up to %d, such as 9600 or 115200", c.Baud, MaxBaud)
	case c.DataBits < 5 || c.DataBits > 8:
		return fmt.Errorf("data-bits %d is out of range: use 5, 6, 7 or 8", c.DataBits)
	case c.StopBits != 1 && c.StopBits != 2:
		return fmt.Errorf("stop-bits %d is not supported: use 1 or 2", c.StopBits)
	}
	if _, ok := parities[c.Parity]; !ok {
		return fmt.Errorf("parity %q is not supported: use none, odd, even, mark or space", string(c.Parity))
	}
	if _, err := ParseFlow(string(c.flow())); err != nil {
		return err
	}
	switch {
	case c.FrameBreak < 0:
		return fmt.Errorf("frame-break %v is negative: use a duration such as 100us", c.FrameBreak)
	case c.MarkAfterBreak < 0:
		return fmt.Errorf("mark-after-break %v is negative: use a duration such as 12us", c.MarkAfterBreak)
	case c.MarkAfterBreak > 0 && c.FrameBreak == 0:
		return fmt.Errorf("mark-after-break needs --frame-break: the mark follows a break")
	case c.Gap < 0:
		return fmt.Errorf("gap %v is negative: use a duration such as 2ms, or character times such as 3.5c", c.Gap)
	}
	return c.RS485.validate()
}

// flow is c.Flow with the zero value meaning none.
func (c Config) flow() Flow {
	if c.Flow == "" {
		return FlowNone
	}
	return c.Flow
}

// ByteTime is how long one character takes on the line at c's settings.
func (c Config) ByteTime() time.Duration {
	if c.Baud <= 0 {
		return 0
	}
	return time.Duration(float64(c.BitsPerByte()) / float64(c.Baud) * float64(time.Second))
}

// ParseParity turns a user's word for a parity into a Parity.
func ParseParity(s string) (Parity, error) {
	p := Parity(strings.ToLower(strings.TrimSpace(s)))
	if _, ok := parities[p]; !ok {
		return "", fmt.Errorf("parity %q is not supported: use none, odd, even, mark or space", s)
	}
	return p, nil
}

// BitsPerByte returns how many bits one byte takes on the wire with c: a start
// bit, the data bits, a parity bit if any, and the stop bits.
func (c Config) BitsPerByte() int {
	bits := 1 + c.DataBits + c.StopBits
	if c.Parity != ParityNone && c.Parity != "" {
		bits++
	}
	return bits
}

// String gives the setting in the usual short form, such as "115200 8N1".
func (c Config) String() string {
	p := "N"
	if c.Parity != "" {
		p = strings.ToUpper(string(c.Parity)[:1])
	}
	return fmt.Sprintf("%d %d%s%d", c.Baud, c.DataBits, p, c.StopBits)
}

func (c Config) mode() *serial.Mode {
	stop := serial.OneStopBit
	if c.StopBits == 2 {
		stop = serial.TwoStopBits
	}
	return &serial.Mode{BaudRate: c.Baud, DataBits: c.DataBits, Parity: parities[c.Parity], StopBits: stop}
}
