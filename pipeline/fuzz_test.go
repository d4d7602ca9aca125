package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/framesend/framesend/pipeline"
	"github.com/framesend/framesend/pipeline/pipelinetest"
)

func formatHex(b []byte) []byte {
	var out []byte
	for i, c := range b {
		if i%3 == 0 {
			out = fmt.Appendf(out, "0x%02X ", c)
		} else {
			out = fmt.Appendf(out, "%02x\t", c)
		}
	}
	return out
}

// Any line either parses, and then its bytes written back out parse to the
// same bytes, or is refused with a token that is really in the line.
func FuzzParseHexLine(f *testing.F) {
	for _, s := range []string{"01 02 0x03", "0xZZ", "# comment", "ff 0XfF # x", "0x", "1", "abc", "\t0a\v0b\f"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got, tok, col := pipeline.ParseHexLine(nil, line)
		if tok == "" && col != 0 {
			t.Fatalf("%q: no bad token, yet a column (%d): the parse stopped early", line, col)
		}
		if tok != "" {
			if col < 1 || col > len(line) || !bytes.HasPrefix(line[col-1:], []byte(tok)) {
				t.Fatalf("bad token %q at column %d is not in %q", tok, col, line)
			}
			return
		}
		again, tok, _ := pipeline.ParseHexLine(nil, formatHex(got))
		if tok != "" || !bytes.Equal(again, got) {
			t.Fatalf("round trip of % x gave % x (token %q)", got, again, tok)
		}
	})
}

// Any bytes, written as hex text, parse back to themselves.
func FuzzHexRoundTrip(f *testing.F) {
	f.Add([]byte{0, 1, 0xff, '#', ' '})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, tok, col := pipeline.ParseHexLine(nil, formatHex(data))
		if tok != "" || !bytes.Equal(got, data) {
			t.Fatalf("% x: parsed % x, bad token %q at %d", data, got, tok, col)
		}
	})
}

// The sender gives out exactly the bytes it was given, in whole frames, for
// any split of the input into datagrams, any frame size, batch and short
// writes.
func FuzzSenderFraming(f *testing.F) {
	f.Add([]byte("the quick brown fox jumps over the lazy dog"), uint16(7), uint8(0), uint8(0), uint64(1))
	f.Add(bytes.Repeat([]byte{0xaa}, 5000), uint16(4096), uint8(3), uint8(5), uint64(2))
	f.Add([]byte{}, uint16(1), uint8(1), uint8(1), uint64(3))
	f.Fuzz(func(t *testing.T, data []byte, fs uint16, batch, maxWrite uint8, seed uint64) {
		size := int(fs)%pipeline.MaxFrameSize + 1
		r := rand.New(rand.NewPCG(seed, 0))
		var datagrams [][]byte
		for p := data; len(p) > 0; {
			n := min(len(p), r.IntN(2*size+1)+1)
			datagrams = append(datagrams, p[:n])
			p = p[n:]
		}
		cfg := pipeline.DefaultConfig()
		cfg.FrameSize = size
		cfg.Batch = int(batch) % 8
		cfg.Partial = pipeline.PartialDrop
		cfg.QueueBytes = (1 + int(seed%4)) * size
		cfg.Source = &pipeline.List{Datagrams: datagrams}
		rec := &pipelinetest.Recorder{MaxWrite: int(maxWrite)}
		st, err := pipeline.Run(context.Background(), rec, cfg)
		if err != nil {
			t.Fatal(err)
		}
		whole := len(data) / size * size
		if got := rec.Bytes(); !bytes.Equal(got, data[:whole]) {
			t.Fatalf("sent %d bytes, want the first %d of the %d given", len(got), whole, len(data))
		}
		if st.Frames != int64(whole/size) {
			t.Fatalf("frames = %d, want %d", st.Frames, whole/size)
		}
		if want := int64(0); len(data) != whole {
			want = 1
			if st.Short != want {
				t.Fatalf("short = %d, want %d", st.Short, want)
			}
		}
	})
}

// The receiving framer gives every whole frame for any chunking.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("0123456789abcdef"), uint16(7), uint64(1))
	f.Fuzz(func(t *testing.T, data []byte, fs uint16, seed uint64) {
		size := int(fs)%pipeline.MaxFrameSize + 1
		r := rand.New(rand.NewPCG(seed, 1))
		fr := pipeline.NewFramer(size)
		var got []byte
		for p := data; len(p) > 0; {
			n := min(len(p), r.IntN(3*size)+1)
			fr.Feed(p[:n], func(frame []byte) {
				if len(frame) != size {
					t.Fatalf("frame of %d bytes, want %d", len(frame), size)
				}
				got = append(got, frame...)
			})
			p = p[n:]
		}
		whole := len(data) / size * size
		if !bytes.Equal(got, data[:whole]) || fr.Pending() != len(data)-whole {
			t.Fatalf("framed %d bytes, %d pending; want %d and %d", len(got), fr.Pending(), whole, len(data)-whole)
		}
	})
}
