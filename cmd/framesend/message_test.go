package main

import (
	"strings"
	"testing"
	"time"

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
