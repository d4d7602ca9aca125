// Package device opens and configures serial ports for framesend through
// go.bug.st/serial, and classifies what goes wrong with them.
//
// Every error returned by this package names the port's path and wraps one of
// the sentinel errors below, so callers can use errors.Is to choose a message
// and an exit code without looking at errno values themselves.
package device

import (
	"fmt"
	"strings"

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
	return nil
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
	if c.Parity != ParityNone {
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
