//go:build linux

package device_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/framesend/framesend/device"
)

// TestConfigErrorsNameFieldAndValue checks that every setting Validate
// refuses comes back as a *device.ConfigError naming the field, the value
// and, where another setting is missing, that one, in the package's words
// with no command-line flag in them.
func TestConfigErrorsNameFieldAndValue(t *testing.T) {
	cases := []struct {
		mod                 func(*device.Config)
		field, value, needs string
		msg                 string
	}{
		{func(c *device.Config) { c.Baud = 0 }, "Baud", "0", "", "device: Baud 0 is out of range: use a positive rate up to 12000000"},
		{func(c *device.Config) { c.Baud = device.MaxBaud + 1 }, "Baud", "12000001", "", "device: Baud 12000001 is out of range"},
		{func(c *device.Config) { c.DataBits = 9 }, "DataBits", "9", "", "device: DataBits 9 is out of range: use 5, 6, 7 or 8"},
		{func(c *device.Config) { c.StopBits = 3 }, "StopBits", "3", "", "device: StopBits 3 is not supported: use 1 or 2"},
		{func(c *device.Config) { c.Parity = "purple" }, "Parity", `"purple"`, "", `device: Parity "purple" is not supported`},
		{func(c *device.Config) { c.Flow = "cts" }, "Flow", `"cts"`, "", `device: Flow "cts" is not supported: use none, rtscts or xonxoff`},
		{func(c *device.Config) { c.FrameBreak = -time.Microsecond }, "FrameBreak", "-1µs", "", "device: FrameBreak -1µs is negative"},
		{func(c *device.Config) { c.FrameBreak, c.MarkAfterBreak = time.Millisecond, -time.Microsecond }, "MarkAfterBreak", "-1µs", "", "device: MarkAfterBreak -1µs is negative"},
		{func(c *device.Config) { c.MarkAfterBreak = 12 * time.Microsecond }, "MarkAfterBreak", "12µs", "FrameBreak", "device: MarkAfterBreak 12µs needs FrameBreak: the mark follows a break"},
		{func(c *device.Config) { c.Gap = -time.Millisecond }, "Gap", "-1ms", "", "device: Gap -1ms is negative"},
		{func(c *device.Config) { c.RS485.RTSOnSend = true }, "RS485.RTSOnSend", "true", "RS485.Enabled", "device: RS485.RTSOnSend true needs RS485.Enabled"},
		{func(c *device.Config) { c.RS485.RTSAfterSend = true }, "RS485.RTSAfterSend", "true", "RS485.Enabled", ""},
		{func(c *device.Config) { c.RS485.RXDuringTX = true }, "RS485.RXDuringTX", "true", "RS485.Enabled", ""},
		{func(c *device.Config) { c.RS485.DelayBefore = time.Millisecond }, "RS485.DelayBefore", "1ms", "RS485.Enabled", ""},
		{func(c *device.Config) { c.RS485.DelayAfter = time.Millisecond }, "RS485.DelayAfter", "1ms", "RS485.Enabled", ""},
		{func(c *device.Config) { c.RS485 = device.RS485{Enabled: true, DelayBefore: -time.Millisecond} }, "RS485.DelayBefore", "-1ms", "", "device: RS485.DelayBefore -1ms is negative"},
		{func(c *device.Config) { c.RS485 = device.RS485{Enabled: true, DelayAfter: 1500 * time.Microsecond} }, "RS485.DelayAfter", "1.5ms", "", "is not whole milliseconds"},
		{func(c *device.Config) { c.RS485 = device.RS485{Enabled: true, DelayAfter: time.Second} }, "RS485.DelayAfter", "1s", "", "is above the kernel's 100ms"},
	}
	for _, c := range cases {
		cfg := device.DefaultConfig()
		c.mod(&cfg)
		err := cfg.Validate()
		var cerr *device.ConfigError
		if !errors.As(err, &cerr) {
			t.Errorf("Validate() = %v, want a *ConfigError on %s", err, c.field)
			continue
		}
		if cerr.Field != c.field || cerr.Value != c.value || cerr.Needs != c.needs {
			t.Errorf("ConfigError = %+v, want field %s, value %s, needs %q", cerr, c.field, c.value, c.needs)
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("message = %q, want it to contain %q", err, c.msg)
		}
		if strings.Contains(err.Error(), "--") {
			t.Errorf("message = %q names a command-line flag", err)
		}
	}
	if err := device.DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v, want nil", err)
	}
}

func TestParseErrorsAreConfigErrors(t *testing.T) {
	for _, c := range []struct {
		parse func(string) error
		field string
	}{
		{func(s string) error { _, err := device.ParseParity(s); return err }, "Parity"},
		{func(s string) error { _, err := device.ParseFlow(s); return err }, "Flow"},
	} {
		var cerr *device.ConfigError
		if err := c.parse("purple"); !errors.As(err, &cerr) || cerr.Field != c.field || cerr.Value != `"purple"` {
			t.Errorf("parse(purple) = %v, want a *ConfigError on %s with value \"purple\"", err, c.field)
		}
	}
}
