package pipeline_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/framesend/framesend/pipeline"
)

func TestFramerAnyChunking(t *testing.T) {
	data := counterBytes(10_000)
	for _, size := range []int{1, 7, 64, 4096} {
		r := rand.New(rand.NewPCG(1, uint64(size)))
		f := pipeline.NewFramer(size)
		var got []byte
		for p := data; len(p) > 0; {
			n := min(len(p), r.IntN(3*size)+1)
			f.Feed(p[:n], func(fr []byte) {
				if len(fr) != size {
					t.Fatalf("frame of %d bytes, want %d", len(fr), size)
				}
				got = append(got, fr...)
			})
			p = p[n:]
		}
		whole := len(data) / size * size
		if !bytes.Equal(got, data[:whole]) || f.Pending() != len(data)-whole {
			t.Errorf("size %d: framed %d bytes with %d pending, want %d and %d", size, len(got), f.Pending(), whole, len(data)-whole)
		}
	}
}

func checkStream(stream []byte) *pipeline.CounterCheck {
	c := &pipeline.CounterCheck{}
	f := pipeline.NewFramer(7)
	f.Feed(stream, func(fr []byte) { c.Check(fr) })
	return c
}

func TestCounterCheck(t *testing.T) {
	good := counterBytes(7 * 1000)
	if c := checkStream(good); !c.OK() || c.Frames != 1000 {
		t.Fatalf("clean stream: %v", c)
	}

	corrupt := bytes.Clone(good)
	corrupt[7*40+3] ^= 0xff
	c := checkStream(corrupt)
	if c.Corrupt != 1 || c.Discontinuities != 0 {
		t.Errorf("one corrupt byte: corrupt %d discontinuities %d, want 1 and 0", c.Corrupt, c.Discontinuities)
	}
	if c.First == nil || c.First.Frame != 40 || c.First.Offset != 3 || c.First.Want != byte((7*40+3)%16) {
		t.Errorf("first mismatch = %v, want frame 40 byte 3", c.First)
	}

	// A lost byte breaks its frame and shifts every later frame by one:
	// one corrupt frame, one discontinuity, then the check follows the
	// shifted stream.
	lost := append(bytes.Clone(good[:7*10+2]), good[7*10+3:]...)
	c = checkStream(lost)
	if c.Discontinuities != 1 || c.Corrupt != 1 {
		t.Errorf("one lost byte: discontinuities %d corrupt %d, want 1 and 1", c.Discontinuities, c.Corrupt)
	}
	if c.First == nil || c.First.Frame != 10 {
		t.Errorf("first mismatch = %v, want frame 10", c.First)
	}

	// Three whole frames missing.
	missing := append(bytes.Clone(good[:7*5]), good[7*8:]...)
	if c = checkStream(missing); c.Discontinuities != 1 || c.Frames != 997 {
		t.Errorf("three frames missing: %v", c)
	}
}
