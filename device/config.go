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

// A ConfigError is a Config value out of range, or one that needs another
// setting too. Its message names the package, the field and the value; a
// command line maps Field (and Needs) to its flags.
type ConfigError struct {
	Field  string // the Config field, as "Baud" or "RS485.DelayAfter"
	Value  string // the value given, formatted (strings are quoted)
	Reason string // what is wrong and what would do, as "is not supported: use 1 or 2"
	// Needs is the field that must be set too when that is what is wrong,
	// as "FrameBreak" for a MarkAfterBreak without one; Reason then says
	// why.
	Needs string
}

func (e *ConfigError) Error() string {
	if e.Needs != "" {
		return fmt.Sprintf("device: %s %s needs %s: %s", e.Field, e.Value, e.Needs, e.Reason)
	}
	return fmt.Sprintf("device: %s %s %s", e.Field, e.Value, e.Reason)
}

func configError(field string, value any, reason string, a ...any) error {
	v := fmt.Sprint(value)
	if s, ok := value.(string); ok {
		v = fmt.Sprintf("%q", s)
	}
	return &ConfigError{Field: field, Value: v, Reason: fmt.Sprintf(reason, a...)}
}

// Validate reports the first setting that is out of range as a
// *ConfigError. go.bug.st/serial passes unknown baud rates to the kernel
// unchecked (even -1), so the range is checked here.
func (c Config) Validate() error {
	switch {
	case c.Baud <= 0 || c.Baud > MaxBaud:
		return configError("Baud", c.Baud, "is out of range: use a positive rate up to %d, such as 9600 or 115200", MaxBaud)
	case c.DataBits < 5 || c.DataBits > 8:
		return configError("DataBits", c.DataBits, "is out of range: use 5, 6, 7 or 8")
	case c.StopBits != 1 && c.StopBits != 2:
		return configError("StopBits", c.StopBits, "is not supported: use 1 or 2")
	}
	if _, ok := parities[c.Parity]; !ok {
		return parityError(string(c.Parity))
	}
	if _, err := ParseFlow(string(c.flow())); err != nil {
		return err
	}
	switch {
	case c.FrameBreak < 0:
		return configError("FrameBreak", c.FrameBreak, "is negative: use a duration such as 100us")
	case c.MarkAfterBreak < 0:
		return configError("MarkAfterBreak", c.MarkAfterBreak, "is negative: use a duration such as 12us")
	case c.MarkAfterBreak > 0 && c.FrameBreak == 0:
		return &ConfigError{Field: "MarkAfterBreak", Value: c.MarkAfterBreak.String(), Needs: "FrameBreak", Reason: "the mark follows a break"}
	case c.Gap < 0:
		return configError("Gap", c.Gap, "is negative: use a duration such as 2ms")
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

// ParseParity turns a user's word for a parity into a Parity. An unknown
// word is a *ConfigError on Parity.
func ParseParity(s string) (Parity, error) {
	p := Parity(strings.ToLower(strings.TrimSpace(s)))
	if _, ok := parities[p]; !ok {
		return "", parityError(s)
	}
	return p, nil
}

func parityError(s string) error {
	return configError("Parity", s, "is not supported: use none, odd, even, mark or space")
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
