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
		var wantFrames, wantShort, wantPadded int64
		var wantErr bool
		// Datagram → bytes written once it is done with: all its frames
		// written, its short tail included unless the policy dropped it.
		// A datagram whose bytes past the count were never framed is not
		// done with, and is never acked.
		ackAt := map[int]int{}
		for _, fr := range model {
			if count > 0 && wantFrames == int64(count) {
				break
			}
			if fr.short {
				switch partial {
				case pipeline.PartialDrop:
					wantShort++
				case pipeline.PartialError:
					wantShort++
					wantErr = true
				case pipeline.PartialPad:
					want = append(want, fr.b...)
					want = append(want, bytes.Repeat([]byte{pad}, size-len(fr.b))...)
					wantFrames++
					wantPadded++
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
		// Nothing past the count is framed, so a short frame after it is
		// neither padded, dropped nor an error.
		if wantErr != errors.Is(err, pipeline.ErrPartialFrame) || (err != nil && !wantErr) {
			t.Fatalf("%s: Run = %v, want a partial-frame error: %v", desc, err, wantErr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: sent %d bytes (first difference at %d), want %d", desc, len(got), firstDiffAt(got, want), len(want))
		}
		if st.Frames != wantFrames || st.Short != wantShort || st.Padded != wantPadded {
			t.Fatalf("%s: frames %d, short %d, padded %d; want %d, %d, %d", desc, st.Frames, st.Short, st.Padded, wantFrames, wantShort, wantPadded)
		}

		// Every datagram read is written or counted: as the frames it
		// becomes, under AlignDatagram; as a stream of bytes, under
		// AlignStream. The packager may read past the count, never past
		// the source's end.
		if st.Datagrams > int64(len(datagrams)) || count == 0 && st.Datagrams != int64(len(datagrams)) {
			t.Fatalf("%s: %d datagrams read, of %d", desc, st.Datagrams, len(datagrams))
		}
		var frames, bytesIn int64
		for _, d := range datagrams[:st.Datagrams] {
			bytesIn += int64(len(d))
			frames += int64(len(d) / size)
			if len(d)%size != 0 && partial == pipeline.PartialPad {
				frames++
			}
		}
		wantCut := int64(-1) // not known from the stats alone
		if align == pipeline.AlignStream {
			frames, wantCut = bytesIn/int64(size)+wantPadded, bytesIn%int64(size)
			if wantPadded+wantShort > 0 {
				wantCut = 0 // the tail was framed
			}
		} else if partial == pipeline.PartialPad {
			wantCut = 0
		}
		if st.Frames+st.Unsent != frames || wantCut >= 0 && st.Cut != wantCut {
			t.Fatalf("%s: frames %d + unsent %d, cut %d bytes, for %d datagrams read (%d bytes): want %d frames in all and %d cut",
				desc, st.Frames, st.Unsent, st.Cut, st.Datagrams, bytesIn, frames, wantCut)
		}
		if (st.Unsent > 0 || st.Cut > 0) != (st.UnsentReason != "") {
			t.Fatalf("%s: unsent %d, cut %d, reason %q", desc, st.Unsent, st.Cut, st.UnsentReason)
		}
		if count == 0 && !wantErr && (st.Unsent != 0 || st.Cut != 0) {
			t.Fatalf("%s: unsent %d, cut %d, with the whole source sent", desc, st.Unsent, st.Cut)
		}

		if !acks {
			return
		}
		// Acks fire in order, once a datagram is done with, for exactly
		// the datagrams done with: under either alignment, one that ends
		// in a short frame the policy dropped is done with once the frames
		// before it are written.
		var wantFired []int
		for i := range datagrams {
			if _, ok := ackAt[i]; ok {
				wantFired = append(wantFired, i)
			}
		}
		if !slices.Equal(fired, wantFired) {
			t.Fatalf("%s: acked %v, want %v", desc, fired, wantFired)
		}
		for k, i := range fired {
			if firedAt[k] < ackAt[i] {
				t.Fatalf("%s: datagram %d acked with %d bytes written, before its end at %d", desc, i, firedAt[k], ackAt[i])
			}
		}
	})
}

// ackList is source.List for a source that wants acknowledgements: ack(i)
// runs when datagram i is acknowledged. Its blocks are block bytes, or as
// large as its largest datagram if block is 0.
type ackList struct {
	datagrams [][]byte
	block     int
	next      int
	ack       func(i int)
}

func (a *ackList) BlockSize() int {
	if a.block > 0 {
		return a.block
	}
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
