package pipeline

import (
	"errors"
	"fmt"
	"strings"
)

// Framer cuts a byte stream into frames of a fixed size, across reads of
// any length.
type Framer struct {
	size    int
	partial []byte
}

// NewFramer returns a Framer for frames of size bytes.
func NewFramer(size int) *Framer {
	return &Framer{size: size, partial: make([]byte, 0, size)}
}

// Feed calls frame for every frame completed by p, in order. The slice
// passed to frame is only valid during the call.
func (f *Framer) Feed(p []byte, frame func([]byte)) {
	if len(f.partial) > 0 {
		n := copy(f.partial[len(f.partial):f.size], p)
		f.partial = f.partial[:len(f.partial)+n]
		p = p[n:]
		if len(f.partial) < f.size {
			return
		}
		frame(f.partial)
		f.partial = f.partial[:0]
	}
	for len(p) >= f.size {
		frame(p[:f.size])
		p = p[f.size:]
	}
	f.partial = append(f.partial, p...)
}

// Pending returns how many bytes wait for the rest of their frame.
func (f *Framer) Pending() int { return len(f.partial) }

// Mismatch is where a checked stream first differed from what was expected.
type Mismatch struct {
	Frame  int64 // frame number, from 0
	Offset int   // byte offset within the frame
	Got    byte
	Want   byte
}

func (m Mismatch) String() string {
	return fmt.Sprintf("frame #%d byte %d: got %02x, want %02x", m.Frame, m.Offset, m.Got, m.Want)
}

// CounterCheck verifies frames of the counter stream (byte k is k mod 16),
// starting at byte 0. A frame whose bytes do not count up by one is
// corrupt; a frame that counts up but starts at the wrong value is a
// discontinuity (frames or bytes missing, or out of place), after which the
// check follows the stream from where it now is. Frame boundaries themselves
// cannot be checked: any run of the counter counts up.
type CounterCheck struct {
	Frames          int64
	Corrupt         int64     // frames whose bytes do not count up
	Discontinuities int64     // frames that start at the wrong place
	First           *Mismatch // the first difference of either kind
	next            byte
}

// Check verifies one frame and reports whether it was the one expected.
func (c *CounterCheck) Check(frame []byte) bool {
	n := c.Frames
	c.Frames++
	want := c.next
	ok := true
	for i, b := range frame {
		if b != (want+byte(i))&15 {
			ok = false
			break
		}
	}
	c.next = (want + byte(len(frame))) & 15
	if ok {
		return true
	}
	counts := true
	for i := 1; i < len(frame); i++ {
		if frame[i] != (frame[i-1]+1)&15 {
			counts = false
			break
		}
	}
	if counts {
		c.Discontinuities++
		c.next = (frame[0] + byte(len(frame))) & 15
	} else {
		c.Corrupt++
	}
	if c.First == nil {
		for i, b := range frame {
			if w := (want + byte(i)) & 15; b != w {
				c.First = &Mismatch{Frame: n, Offset: i, Got: b, Want: w}
				break
			}
		}
	}
	return false
}

// OK reports whether every frame checked was the one expected.
func (c *CounterCheck) OK() bool { return c.Corrupt == 0 && c.Discontinuities == 0 }

// Verdict is nil if every frame checked was the one expected and no bytes
// are left over (trailing: bytes at the end that do not fill a frame);
// otherwise it says what was wrong.
func (c *CounterCheck) Verdict(trailing int) error {
	var problems []string
	if !c.OK() {
		problems = append(problems, c.String())
	}
	if trailing > 0 {
		problems = append(problems, fmt.Sprintf("%d trailing bytes do not fill a frame", trailing))
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

// String summarises the check in a few words.
func (c *CounterCheck) String() string {
	if c.OK() {
		return fmt.Sprintf("counter stream verified (%s in order)", count(c.Frames, "frame", "frames"))
	}
	return fmt.Sprintf("counter stream broken: %s, %s; first at %v", count(c.Corrupt, "corrupt frame", "corrupt frames"), count(c.Discontinuities, "discontinuity", "discontinuities"), c.First)
}
