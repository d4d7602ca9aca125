package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/framesend/framesend/pipeline"
	"github.com/framesend/framesend/pipeline/pipelinetest"
	"github.com/framesend/framesend/source"
)

// sized is a datagram source of n datagrams of size bytes each, one per
// block, as fast as it can.
type sized struct{ n, size, next int }

func (s *sized) Fill(ctx context.Context, b *pipeline.Block) error {
	if s.next == s.n {
		return io.EOF
	}
	d := b.DatagramSpare()[:s.size]
	for i := range d {
		d[i] = byte(s.next)
	}
	b.CommitDatagram(s.size)
	s.next++
	return nil
}

// A stop leaves datagrams on the queue, in the sender's hands and in the
// packager's. Under AlignDatagram each one counts as the frames it becomes,
// not as its length over the frame size: a 5-byte datagram in 4-byte frames
// is two frames padded, or one frame and a 1-byte short tail dropped.
func TestUnsentCountsTheFramesOfEachDatagram(t *testing.T) {
	for _, partial := range []pipeline.Partial{pipeline.PartialPad, pipeline.PartialDrop} {
		t.Run(string(partial), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				w := &slowWriter{delay: 10 * time.Millisecond}
				cfg := config(4, 0)
				cfg.Source = &sized{n: 1 << 30, size: 5}
				cfg.Align, cfg.Partial = pipeline.AlignDatagram, partial
				cfg.QueueBytes = 4 * 8 // four datagrams
				cfg.Batch = 2
				cfg.DrainTimeout = 0
				go func() {
					time.Sleep(500 * time.Millisecond)
					cancel()
				}()
				st, err := pipeline.Run(ctx, w, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if st.Unsent == 0 {
					t.Fatalf("unsent = 0: the stop should leave datagrams queued (%+v)", st)
				}
				perDatagram := int64(2)
				if partial == pipeline.PartialDrop {
					perDatagram = 1
					// Each datagram's 1-byte tail is dropped as a short
					// frame if it was framed, cut if it was not.
					if st.Short+st.Cut != st.Datagrams {
						t.Errorf("short %d + cut %d bytes = %d, want a 1-byte tail for each of the %d datagrams", st.Short, st.Cut, st.Short+st.Cut, st.Datagrams)
					}
				} else if st.Cut != 0 {
					t.Errorf("cut = %d bytes, want 0: every datagram makes whole (padded) frames", st.Cut)
				}
				if got, want := st.Frames+st.Unsent, st.Datagrams*perDatagram; got != want {
					t.Errorf("frames %d + unsent %d = %d, want %d for %d datagrams of %d frames each", st.Frames, st.Unsent, got, want, st.Datagrams, perDatagram)
				}
			})
		})
	}
}

// The live queue depth follows the queue: once the run is over nothing is
// waiting on it, whatever the run left there (counted as unsent).
func TestLiveQueuedFollowsTheQueue(t *testing.T) {
	cases := []struct {
		name string
		cfg  func(*pipeline.Config)
	}{
		{"count reached", func(c *pipeline.Config) { c.Count = 10 }},
		{"source ended", func(c *pipeline.Config) {
			c.Source = &sized{n: 5000, size: 3}
			c.Align = pipeline.AlignDatagram
		}},
		{"drop-oldest", func(c *pipeline.Config) {
			c.Source = &sized{n: 5000, size: 3}
			c.Align, c.Overflow, c.QueueBytes = pipeline.AlignDatagram, pipeline.OverflowDropOldest, 40
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := config(4, 0)
			cfg.Live = &pipeline.Live{}
			c.cfg(&cfg)
			rec := &pipelinetest.Recorder{}
			var during []int64
			rec.OnWrite = func(int) { during = append(during, cfg.Live.Queued()) }
			st, err := pipeline.Run(context.Background(), rec, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if q := cfg.Live.Queued(); q != 0 {
				t.Errorf("after the run: queued = %d bytes, want 0 (unsent %d frames)", q, st.Unsent)
			}
			for i, q := range during {
				if q < 0 || q > int64(cfg.QueueBytes) {
					t.Fatalf("write %d: queued = %d bytes, outside 0..%d", i, q, cfg.QueueBytes)
				}
			}
		})
	}
}

// A partial-frame error ends the run; the datagrams after the short one
// were never written and count as unsent frames, not as cut bytes (which
// are those of a frame a stop left unfinished).
func TestPartialErrorCountsLaterDatagramsAsUnsent(t *testing.T) {
	rec := &pipelinetest.Recorder{}
	cfg := config(4, 0)
	cfg.Source = &source.List{Datagrams: [][]byte{make([]byte, 8), make([]byte, 5), make([]byte, 8), make([]byte, 8)}}
	cfg.Align, cfg.Partial = pipeline.AlignDatagram, pipeline.PartialError
	st, err := pipeline.Run(context.Background(), rec, cfg)
	if !errors.Is(err, pipeline.ErrPartialFrame) {
		t.Fatalf("Run = %v, want ErrPartialFrame", err)
	}
	if st.Frames != 3 || st.Short != 1 {
		t.Errorf("frames %d, short %d; want 3 (two, then one of the short datagram) and 1", st.Frames, st.Short)
	}
	if st.Unsent != 4 || st.Cut != 0 {
		t.Errorf("unsent %d frames, cut %d bytes; want the 4 frames of the last two datagrams and 0", st.Unsent, st.Cut)
	}
	if st.UnsentReason != "the run failed" {
		t.Errorf("unsent reason %q, want %q", st.UnsentReason, "the run failed")
	}
}

// The sender frames nothing past Count: a short datagram after the
// count's last frame is not padded, dropped or an error; it and the rest
// are unsent, and none of them is acknowledged. The packager reads no
// more than the count needs where it can tell (stream alignment, or
// datagram alignment when nothing is dropped, or short tails are not).
func TestNothingPastTheCountIsFramed(t *testing.T) {
	small := [][]byte{{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11}, {12, 13, 14, 15}, {16, 17, 18, 19, 20, 21}}
	large := [][]byte{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {11, 12}}
	cases := []struct {
		datagrams [][]byte
		align     pipeline.Align
		partial   pipeline.Partial
		unsent    int64 // frames
		cut       int64 // bytes
		acked     []int
	}{
		{small, pipeline.AlignDatagram, pipeline.PartialPad, 0, 0, []int{0, 1}},
		{small, pipeline.AlignDatagram, pipeline.PartialDrop, 2, 5, []int{0, 1}},
		{small, pipeline.AlignDatagram, pipeline.PartialError, 0, 0, []int{0, 1}},
		{small, pipeline.AlignStream, pipeline.PartialPad, 0, 0, []int{0, 1}},
		{small, pipeline.AlignStream, pipeline.PartialError, 0, 0, []int{0, 1}},
		{large, pipeline.AlignDatagram, pipeline.PartialPad, 1, 0, nil},
		{large, pipeline.AlignDatagram, pipeline.PartialDrop, 0, 4, nil},
		{large, pipeline.AlignDatagram, pipeline.PartialError, 0, 2, nil},
		{large, pipeline.AlignStream, pipeline.PartialPad, 0, 2, nil},
		{large, pipeline.AlignStream, pipeline.PartialError, 0, 2, nil},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d-byte/%s/%s", len(c.datagrams[0]), c.align, c.partial), func(t *testing.T) {
			rec := &pipelinetest.Recorder{}
			src := newAckSource(c.datagrams, rec)
			cfg := config(4, 2)
			cfg.Source, cfg.Align, cfg.Partial = src, c.align, c.partial
			st, err := pipeline.Run(context.Background(), rec, cfg)
			if err != nil {
				t.Fatalf("Run = %v, want nil: what is short is past the count", err)
			}
			if got := rec.Bytes(); !slices.Equal(got, []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
				t.Errorf("wrote % x, want the first two frames", got)
			}
			if st.Padded != 0 || st.Short != 0 {
				t.Errorf("padded %d, short %d; want 0 and 0", st.Padded, st.Short)
			}
			reason := ""
			if c.unsent > 0 || c.cut > 0 {
				reason = "count reached"
			}
			if st.Unsent != c.unsent || st.Cut != c.cut || st.UnsentReason != reason {
				t.Errorf("unsent %d frames (%q), cut %d bytes; want %d (%q) and %d", st.Unsent, st.UnsentReason, st.Cut, c.unsent, reason, c.cut)
			}
			if !slices.Equal(src.fired, c.acked) {
				t.Errorf("acked datagrams %v, want %v, those wholly written", src.fired, c.acked)
			}
		})
	}
}

// A stop whose drain gives up on a write the device does not take still
// reports everything the run did: datagrams in, drops, the queue's
// high-water mark, and every datagram written or unsent (as udp at 115200
// with --drain-timeout 0s does from the command line).
func TestStopGivingUpOnAPendingWriteKeepsTheCounts(t *testing.T) {
	w := &deadlineWriter{limit: 4000}
	cfg := config(4, 0)
	cfg.Source = &sized{n: 1 << 30, size: 7} // two frames, one padded
	cfg.Align, cfg.Overflow = pipeline.AlignDatagram, pipeline.OverflowDropNewest
	cfg.QueueBytes = 400
	cfg.DrainTimeout = 0
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		w.waitFull()
		time.Sleep(50 * time.Millisecond) // the packager drops as the queue stays full
		cancel()
	}()
	st, err := pipeline.Run(ctx, w, cfg)
	var se *pipeline.StallError
	if !errors.As(err, &se) || !se.DuringStop {
		t.Fatalf("Run = %v, want a *StallError during the stop", err)
	}
	if st.Datagrams == 0 || st.Dropped == 0 || st.QueueHigh == 0 {
		t.Errorf("datagrams %d, dropped %d, queue high %d: want all above 0", st.Datagrams, st.Dropped, st.QueueHigh)
	}
	if got, want := st.Frames+st.Unsent, 2*(st.Datagrams-st.Dropped); got != want || st.Cut != 0 {
		t.Errorf("frames %d + unsent %d = %d, cut %d; want %d (two frames for each of %d datagrams in, %d dropped) and 0",
			st.Frames, st.Unsent, got, st.Cut, want, st.Datagrams, st.Dropped)
	}
	if st.Frames != 1000 {
		t.Errorf("frames = %d, want the 1000 the device took", st.Frames)
	}
}

// A datagram in pieces under a policy that may drop a piece ends the run
// with a *ConfigError on Overflow, naming the value and the fix in the
// library's words.
func TestSplitDatagramNeedsOverflowBlock(t *testing.T) {
	rec := &pipelinetest.Recorder{}
	cfg := config(4, 0)
	cfg.Source = &piecesSource{datagrams: [][]byte{randomish(150_000)}, rec: rec}
	cfg.Align, cfg.Overflow = pipeline.AlignDatagram, pipeline.OverflowDropNewest
	_, err := pipeline.Run(context.Background(), rec, cfg)
	var cerr *pipeline.ConfigError
	if !errors.As(err, &cerr) || cerr.Field != "Overflow" || cerr.Value != `"drop-newest"` {
		t.Fatalf("Run = %v, want a *ConfigError on Overflow \"drop-newest\"", err)
	}
	want := `pipeline: Overflow "drop-newest" may drop part of a datagram larger than a queue block (65536 bytes): use block`
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

// The partial-frame error names the package, the frame and the policy; a
// command line words the fix in its own flags.
func TestPartialFrameErrorSaysWhatEnded(t *testing.T) {
	cfg := config(7, 0)
	cfg.Source = &source.List{Datagrams: [][]byte{make([]byte, 13)}}
	cfg.Partial = pipeline.PartialError
	_, err := pipeline.Run(context.Background(), &pipelinetest.Recorder{}, cfg)
	var perr *pipeline.PartialFrameError
	if !errors.As(err, &perr) || !errors.Is(err, pipeline.ErrPartialFrame) || perr.Bytes != 6 || perr.FrameSize != 7 {
		t.Fatalf("Run = %v, want a *PartialFrameError of 6 bytes in 7", err)
	}
	want := `pipeline: short frame: the data ended 6 bytes into a 7-byte frame, under Partial "error"`
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

// A datagram that ends in a short frame PartialDrop drops is done with
// once the frames before it are written, under either alignment, and is
// acknowledged then: holding its ack would have an MQTT broker deliver it
// again only to have its tail dropped again.
func TestAckForADatagramEndingInADroppedShortFrame(t *testing.T) {
	for _, align := range []pipeline.Align{pipeline.AlignStream, pipeline.AlignDatagram} {
		t.Run(string(align), func(t *testing.T) {
			rec := &pipelinetest.Recorder{}
			src := newAckSource([][]byte{{1, 2, 3, 4}, {5, 6, 7}}, rec)
			cfg := config(4, 0)
			cfg.Source, cfg.Align, cfg.Partial = src, align, pipeline.PartialDrop
			st, err := pipeline.Run(context.Background(), rec, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if st.Frames != 1 || st.Short != 1 {
				t.Errorf("frames %d, short %d; want 1 and 1", st.Frames, st.Short)
			}
			if !slices.Equal(src.fired, []int{0, 1}) {
				t.Fatalf("acked %v, want [0 1]", src.fired)
			}
			if src.at[1] < 4 {
				t.Errorf("datagram 1 acked with %d bytes written, before the frame before it (4 bytes)", src.at[1])
			}
		})
	}
}

// The largest count a frame size allows (Validate refuses one whose bytes
// overflow an int64) is a count like any other: the run sends what the
// source has.
func TestLargestCountSendsTheSource(t *testing.T) {
	rec := &pipelinetest.Recorder{}
	cfg := config(7, math.MaxInt64/7)
	cfg.Source = &source.List{Datagrams: [][]byte{counterBytes(7), counterBytes(7), counterBytes(7)}}
	cfg.Align = pipeline.AlignDatagram
	st, err := pipeline.Run(context.Background(), rec, cfg)
	if err != nil || st.Frames != 3 {
		t.Fatalf("Run = %d frames, %v; want 3, nil", st.Frames, err)
	}
}

// failing is a stream source that gives data, then fails.
type failing struct {
	data []byte
	err  error
}

var errSourceFailed = errors.New("source read failed")

func (f *failing) Fill(ctx context.Context, b *pipeline.Block) error {
	if len(f.data) == 0 {
		return f.err
	}
	n := copy(b.Spare(), f.data)
	b.Commit(n)
	f.data = f.data[n:]
	return nil
}

// A source that fails in the middle of a frame did not end: its last bytes
// are not a short tail to pad, drop or report as a short frame. They are
// cut, and Run returns the source's error.
func TestSourceFailingInsideAFrame(t *testing.T) {
	for _, partial := range []pipeline.Partial{pipeline.PartialPad, pipeline.PartialDrop, pipeline.PartialError} {
		t.Run(string(partial), func(t *testing.T) {
			rec := &pipelinetest.Recorder{}
			cfg := config(4, 0)
			cfg.Source = &failing{data: counterBytes(10), err: errSourceFailed}
			cfg.Partial = partial
			st, err := pipeline.Run(context.Background(), rec, cfg)
			if !errors.Is(err, errSourceFailed) {
				t.Errorf("Run = %v, want the source's error", err)
			}
			if got := len(rec.Bytes()); got != 8 {
				t.Errorf("wrote %d bytes, want the 8 of the two whole frames", got)
			}
			if st.Frames != 2 || st.Padded != 0 || st.Short != 0 || st.Cut != 2 {
				t.Errorf("frames %d, padded %d, short %d, cut %d; want 2, 0, 0, 2", st.Frames, st.Padded, st.Short, st.Cut)
			}
		})
	}
}
