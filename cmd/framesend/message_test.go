package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/framesend/framesend/device"
	"github.com/framesend/framesend/pipeline"
)

// TestConfigErrorsNameTheirFlag checks that each pipeline.Config value
// Validate can refuse reaches the user under its flag's name, not the
// library's field name.
func TestConfigErrorsNameTheirFlag(t *testing.T) {
	cases := []struct {
		mod  func(*pipeline.Config)
		want string
	}{
		{func(c *pipeline.Config) { c.FrameSize = 0 }, "--frame-size 0 is out of range: use 1 to 4096 bytes"},
		{func(c *pipeline.Config) { c.Count = -1 }, "--count -1 is negative"},
		{func(c *pipeline.Config) { c.Rate = -1 }, "--rate -1 is invalid"},
		{func(c *pipeline.Config) { c.Batch = -1 }, "--batch -1 is out of range"},
		{func(c *pipeline.Config) { c.QueueBytes = 0 }, "--queue of 0 bytes is out of range: use 1 byte to 1GiB, as a size (4MiB) or in frames (10000)"},
		{func(c *pipeline.Config) { c.DrainTimeout = -time.Second }, "--drain-timeout -1s is negative"},
		{func(c *pipeline.Config) { c.WriteTimeout = -time.Second }, "--write-timeout -1s is negative"},
		{func(c *pipeline.Config) { c.Overflow = "spill" }, `--overflow "spill" is not a policy`},
		{func(c *pipeline.Config) { c.Align = "x" }, `--align "x" is not an alignment`},
		{func(c *pipeline.Config) { c.Partial = "x" }, `--partial "x" is not a policy`},
	}
	for _, c := range cases {
		cfg := pipeline.DefaultConfig()
		c.mod(&cfg)
		err := cfg.Validate()
		if err == nil {
			t.Errorf("Validate() = nil, want an error for %q", c.want)
			continue
		}
		if got := message(usageError{err}); !strings.HasPrefix(got, c.want) {
			t.Errorf("message = %q, want it to start %q", got, c.want)
		}
	}
}

// TestDeviceConfigErrorsNameTheirFlag checks that each device.Config value
// Validate can refuse reaches the user under its flag's name, and that
// every field of device.Config that Validate checks has a flag in
// deviceFlags.
func TestDeviceConfigErrorsNameTheirFlag(t *testing.T) {
	cases := []struct {
		mod  func(*device.Config)
		want string
	}{
		{func(c *device.Config) { c.Baud = 0 }, "--baud 0 is out of range: use a positive rate up to 12000000"},
		{func(c *device.Config) { c.DataBits = 9 }, "--data-bits 9 is out of range: use 5, 6, 7 or 8"},
		{func(c *device.Config) { c.Parity = "purple" }, `--parity "purple" is not supported: use none, odd, even, mark or space`},
		{func(c *device.Config) { c.StopBits = 3 }, "--stop-bits 3 is not supported: use 1 or 2"},
		{func(c *device.Config) { c.Flow = "cts" }, `--flow "cts" is not supported: use none, rtscts or xonxoff`},
		{func(c *device.Config) { c.FrameBreak = -time.Microsecond }, "--frame-break -1µs is negative"},
		{func(c *device.Config) { c.FrameBreak, c.MarkAfterBreak = time.Millisecond, -time.Microsecond }, "--mark-after-break -1µs is negative"},
		{func(c *device.Config) { c.MarkAfterBreak = time.Microsecond }, "--mark-after-break needs --frame-break: the mark follows a break"},
		{func(c *device.Config) { c.Gap = -time.Millisecond }, "--gap -1ms is negative: use a duration such as 2ms, or character times such as 3.5c"},
		{func(c *device.Config) { c.RS485.RTSOnSend = true }, "--rs485-rts-on-send needs --rs485"},
		{func(c *device.Config) { c.RS485.RTSAfterSend = true }, "--rs485-rts-after-send needs --rs485"},
		{func(c *device.Config) { c.RS485.RXDuringTX = true }, "--rs485-rx-during-tx needs --rs485"},
		{func(c *device.Config) { c.RS485.DelayBefore = time.Millisecond }, "--rs485-delay-before needs --rs485"},
		{func(c *device.Config) { c.RS485.DelayAfter = time.Millisecond }, "--rs485-delay-after needs --rs485"},
		{func(c *device.Config) { c.RS485 = device.RS485{Enabled: true, DelayBefore: -time.Millisecond} }, "--rs485-delay-before -1ms is negative"},
		{func(c *device.Config) { c.RS485 = device.RS485{Enabled: true, DelayAfter: time.Second} }, "--rs485-delay-after 1s is above the kernel's 100ms"},
	}
	for _, c := range cases {
		cfg := device.DefaultConfig()
		c.mod(&cfg)
		err := cfg.Validate()
		if err == nil {
			t.Errorf("Validate() = nil, want an error for %q", c.want)
			continue
		}
		if got := message(usageError{err}); !strings.HasPrefix(got, c.want) {
			t.Errorf("message = %q, want it to start %q", got, c.want)
		}
	}
	// Fields no Validate check refuses: any value is a setting.
	unchecked := map[string]bool{"DTR": true, "RTS": true, "KeepLines": true, "LowLatency": true, "RS485": true}
	fields := map[string]bool{}
	for _, field := range configFields(reflect.TypeFor[device.Config](), "") {
		fields[field] = true
		if _, ok := deviceFlags[field]; !ok && !unchecked[field] {
			t.Errorf("device.Config field %s has no flag in deviceFlags", field)
		}
	}
	for field := range deviceFlags {
		if !fields[field] {
			t.Errorf("deviceFlags names %s, which is not a device.Config field", field)
		}
	}
}

// configFields lists the fields of a struct type, those of nested structs
// as "Outer.Inner".
func configFields(t reflect.Type, prefix string) []string {
	var names []string
	for f := range t.Fields() {
		names = append(names, prefix+f.Name)
		if f.Type.Kind() == reflect.Struct {
			names = append(names, configFields(f.Type, prefix+f.Name+".")...)
		}
	}
	return names
}

// TestUnsupportedControlsNameTheirFlags checks that every line control a
// driver may refuse gets a hint naming the flags that asked for it.
func TestUnsupportedControlsNameTheirFlags(t *testing.T) {
	for _, c := range []device.Control{device.ControlModemLines, device.ControlRS485, device.ControlLowLatency, device.ControlBreak} {
		hint := unsupportedHints[c]
		if !strings.Contains(hint, "--") {
			t.Errorf("control %q: hint %q names no flag", c, hint)
		}
	}
}

// TestSettingErrorsNameTheirFix checks the command-line advice added to
// settings a driver did not take.
func TestSettingErrorsNameTheirFix(t *testing.T) {
	for _, c := range []struct {
		se   *device.SettingError
		want string
	}{
		{&device.SettingError{Path: "/dev/ttyS1", What: "baud", Asked: "921600", Got: "9600", Hint: "use a rate the adapter supports"},
			"/dev/ttyS1 runs at 9600 baud, not 921600: use a rate the adapter supports (framesend doctor --port /dev/ttyS1 shows the port's settings)"},
		{&device.SettingError{Path: "/dev/ttyS1", What: "flow control", Asked: "rtscts", Got: "none", Hint: "wire and use another"},
			"/dev/ttyS1 has flow control none, not rtscts: wire and use another (--flow none|rtscts|xonxoff)"},
	} {
		err := failure{&device.Error{Op: "configure", Path: c.se.Path, Class: device.ErrSetting, Err: c.se}}
		if got := message(err); got != c.want {
			t.Errorf("message =\n %q, want\n %q", got, c.want)
		}
	}
}
