package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/framesend/framesend/pipeline"
	"github.com/framesend/framesend/pipeline/pipelinetest"
	"github.com/framesend/framesend/source"
)

// The sender gives out exactly the frames a model of the rules gives, for
// any split of the input into datagrams, either alignment, any partial-frame
// policy, pad byte, count, frame size, batch and short writes; and, for a
// source that wants them, acks fire in order and only once a datagram's
// bytes are written.
func FuzzSenderFraming(f *testing.F) {
	f.Add([]byte("the quick brown fox jumps over the lazy dog"), uint16(7), uint8(0), uint8(0), uint64(1), uint8(0), uint16(0), byte(0))
	f.Add(bytes.Repeat([]byte{0xaa}, 5000), uint16(4096), uint8(3), uint8(5), uint64(2), uint8(1), uint16(3), byte(0xee))
	f.Add([]byte{}, uint16(1), uint8(1), uint8(1), uint64(3), uint8(2), uint16(0), byte(1))
	f.Add([]byte("0123456789abcdefghij"), uint16(3), uint8(2), uint8(2), uint64(4), uint8(11), uint16(4), byte(0x55))
	f.Add([]byte("0123456789abcdefghij"), uint16(6), uint8(0), uint8(0), uint64(5), uint8(5), uint16(0), byte(0x55))
	f.Fuzz(func(t *testing.T, data []byte, fs uint16, batch, maxWrite uint8, seed uint64, mode uint8, count uint16, pad byte) {
		size := int(fs)%pipeline.MaxFrameSize + 1
		align := []pipeline.Align{pipeline.AlignStream, pipeline.AlignDatagram}[mode%2]
		partial := []pipeline.Partial{pipeline.PartialPad, pipeline.PartialDrop, pipeline.PartialError}[mode/2%3]
		acks := mode/6%2 == 1
		r := rand.New(rand.NewPCG(seed, 0))
		var datagrams [][]byte
		for p := data; len(p) > 0; {
			n := min(len(p), r.IntN(2*size+1)+1)
			datagrams = append(datagrams, p[:n])
			p = p[n:]
		}

		// The model: the frames in order, each with the datagram whose
		// last byte it ends (or -1), and whether it is a short frame.
		type frame struct {
			b     []byte
			short bool
			ends  []int // datagrams whose last byte is in this frame
		}
		var model []frame
		cut := func(b []byte, ends func(off int) []int) {
			for off := 0; off < len(b); off += size {
				end := min(off+size, len(b))
				model = append(model, frame{b: b[off:end], short: end-off < size, ends: ends(end)})
			}
		}
		if align == pipeline.AlignStream {
			var stream []byte
			var last []int // offset after each datagram
			for _, d := range datagrams {
				stream = append(stream, d...)
				last = append(last, len(stream))
			}
			prev := 0
			cut(stream, func(end int) []int {
				var e []int
				for i, l := range last {
					if l > prev && l <= end {
						e = append(e, i)
					}
				}
				prev = end
				return e
			})
		} else {
			for i, d := range datagrams {
				cut(d, func(end int) []int {
					if end == len(d) {
						return []int{i}
					}
					return nil
				})
			}
		}
		var want []byte
		var wantFrames, wantShort int64
		var wantErr bool
		ackAt := map[int]int{} // datagram → bytes written once all of it is
		// Datagrams that end in a short frame dropped: the packager, ahead
		// of the sender, may drop (and ack) them past the count too.
		dropped := map[int]bool{}
		for _, fr := range model {
			for _, i := range fr.ends {
				dropped[i] = fr.short && partial == pipeline.PartialDrop
			}
		}
		for _, fr := range model {
			if count > 0 && wantFrames == int64(count) {
				break
			}
			if fr.short {
				switch partial {
				case pipeline.PartialDrop:
					wantShort++
					continue
				case pipeline.PartialError:
					wantErr = true
				case pipeline.PartialPad:
					want = append(want, fr.b...)
					want = append(want, bytes.Repeat([]byte{pad}, size-len(fr.b))...)
					wantFrames++
				}
				if wantErr {
					break
				}
			} else {
				want = append(want, fr.b...)
				wantFrames++
			}
			for _, i := range fr.ends {
				ackAt[i] = len(want)
			}
		}

		cfg := pipeline.DefaultConfig()
		cfg.FrameSize = size
		cfg.Batch = int(batch) % 8
		cfg.Align, cfg.Partial, cfg.Pad = align, partial, pad
		cfg.Count = int64(count)
		cfg.QueueBytes = (1 + int(seed%4)) * size
		rec := &pipelinetest.Recorder{MaxWrite: int(maxWrite)}
		var fired []int
		var firedAt []int
		if acks {
			cfg.Source = &ackList{datagrams: datagrams, ack: func(i int) {
				fired = append(fired, i)
				firedAt = append(firedAt, len(rec.Bytes()))
			}}
		} else {
			cfg.Source = &source.List{Datagrams: datagrams}
		}
		st, err := pipeline.Run(context.Background(), rec, cfg)
		got := rec.Bytes()
		desc := fmt.Sprintf("%d bytes in %d datagrams, frame %d, %s, %s, count %d", len(data), len(datagrams), size, align, partial, count)
		if wantErr {
			// The packager runs ahead of the sender: with a count, the
			// short frame may be met after the count is reached.
			if !errors.Is(err, pipeline.ErrPartialFrame) && (count == 0 || err != nil) {
				t.Fatalf("%s: Run = %v, want ErrPartialFrame", desc, err)
			}
			if !bytes.HasPrefix(want, got) {
				t.Fatalf("%s: sent %d bytes, not a prefix of the %d before the short frame", desc, len(got), len(want))
			}
			return
		}
		if err != nil {
			if count > 0 && errors.Is(err, pipeline.ErrPartialFrame) && partial == pipeline.PartialError && bytes.Equal(got, want) {
				return // met the short frame just after the count, as above
			}
			t.Fatalf("%s: Run = %v", desc, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: sent %d bytes (first difference at %d), want %d", desc, len(got), firstDiffAt(got, want), len(want))
		}
		if st.Frames != wantFrames {
			t.Fatalf("%s: frames = %d, want %d", desc, st.Frames, wantFrames)
		}
		if count == 0 && st.Short != wantShort {
			t.Fatalf("%s: short = %d, want %d", desc, st.Short, wantShort)
		}
		if !acks {
			return
		}
		for k, i := range fired {
			if k > 0 && i <= fired[k-1] {
				t.Fatalf("%s: ack for datagram %d after the one for %d", desc, i, fired[k-1])
			}
			if at, ok := ackAt[i]; ok && firedAt[k] < at {
				t.Fatalf("%s: datagram %d acked with %d bytes written, before its end at %d", desc, i, firedAt[k], at)
			}
			if _, ok := ackAt[i]; !ok && !dropped[i] && count > 0 {
				t.Fatalf("%s: datagram %d acked, but the count stopped the run before its end", desc, i)
			}
		}
		// Every datagram wholly written is acked (one whose end was a
		// dropped short frame was not wholly written).
		for i := range ackAt {
			if count == 0 && !slices.Contains(fired, i) {
				t.Fatalf("%s: datagram %d was written, up to byte %d, and never acked", desc, i, ackAt[i])
			}
		}
	})
}

// ackList is source.List for a source that wants acknowledgements.
type ackList struct {
	datagrams [][]byte
	next      int
	ack       func(i int)
}

func (a *ackList) BlockSize() int {
	n := 0
	for _, d := range a.datagrams {
		n = max(n, len(d))
	}
	return n
}

func (a *ackList) Fill(ctx context.Context, b *pipeline.Block) error {
	if a.next == len(a.datagrams) {
		return io.EOF
	}
	for a.next < len(a.datagrams) && b.Fits(len(a.datagrams[a.next])) {
		i := a.next
		b.CommitDatagramAck(copy(b.DatagramSpare(), a.datagrams[i]), func() { a.ack(i) })
		a.next++
	}
	return nil
}

func firstDiffAt(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
