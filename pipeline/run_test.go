package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/framesend/framesend/pipeline"
	"github.com/framesend/framesend/pipeline/pipelinetest"
	"github.com/framesend/framesend/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counterBytes is the original program's stream: byte k is k mod 16.
func counterBytes(n int) []byte { return pipeline.AppendCounter(nil, 0, n) }

func config(fs int, count int64) pipeline.Config {
	c := pipeline.DefaultConfig()
	c.FrameSize = fs
	c.Count = count
	return c
}

func TestCounterFramesInOrder(t *testing.T) {
	for _, fs := range []int{1, 2, 7, 13, 100, 4096} {
		for _, batch := range []int{0, 1, 3, 200} {
			t.Run(fmt.Sprintf("fs=%d/batch=%d", fs, batch), func(t *testing.T) {
				count := int64(20000 / fs)
				cfg := config(fs, count)
				cfg.Batch = batch
				cfg.QueueBytes = 3 * pipeline.BlockSize
				rec := &pipelinetest.Recorder{}
				st, err := pipeline.Run(context.Background(), rec, cfg)
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				if got, want := rec.Bytes(), counterBytes(int(count)*fs); !bytes.Equal(got, want) {
					t.Fatalf("wrote %d bytes, want the %d-byte counter stream (first difference at %d)", len(got), len(want), firstDiff(got, want))
				}
				if st.Frames != count || st.Bytes != count*int64(fs) {
					t.Errorf("stats = %d frames %d bytes, want %d and %d", st.Frames, st.Bytes, count, count*int64(fs))
				}
				maxW := batch * fs
				if batch == 0 {
					maxW = max(fs, pipeline.WriteSize/fs*fs)
				}
				for i, n := range rec.Writes() {
					if n%fs != 0 || n > maxW || n == 0 {
						t.Fatalf("write %d took %d bytes: want a whole number of %d-byte frames, at most %d bytes", i, n, fs, maxW)
					}
				}
				if int64(len(rec.Writes())) != st.Writes {
					t.Errorf("stats.Writes = %d, want %d", st.Writes, len(rec.Writes()))
				}
			})
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestShortWritesAreCompleted(t *testing.T) {
	for _, max := range []int{1, 3, 6, 8} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			rec := &pipelinetest.Recorder{MaxWrite: max}
			cfg := config(7, 3000)
			st, err := pipeline.Run(context.Background(), rec, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := rec.Bytes(), counterBytes(7*3000); !bytes.Equal(got, want) {
				t.Fatalf("stream differs at byte %d of %d", firstDiff(got, want), len(want))
			}
			if st.Frames != 3000 {
				t.Errorf("frames = %d, want 3000", st.Frames)
			}
			if want := int64(len(rec.Writes())); st.Writes != want {
				t.Errorf("writes = %d, want %d", st.Writes, want)
			}
		})
	}
}

func TestWriteErrorStopsRun(t *testing.T) {
	boom := errors.New("device disappeared")
	rec := &pipelinetest.Recorder{FailAfter: 7*50 + 3, Err: boom}
	st, err := pipeline.Run(context.Background(), rec, config(7, 0))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	if st.Frames != 50 {
		t.Errorf("frames = %d, want 50 (the whole frames before the failure)", st.Frames)
	}
}

type zeroWriter struct{}

func (zeroWriter) Write(p []byte) (int, error) { return 0, nil }

func TestWriterThatTakesNothing(t *testing.T) {
	_, err := pipeline.Run(context.Background(), zeroWriter{}, config(7, 10))
	if !errors.Is(err, pipeline.ErrNoProgress) {
		t.Fatalf("err = %v, want ErrNoProgress", err)
	}
}

func TestCancelLeavesWholeFrames(t *testing.T) {
	for _, max := range []int{0, 5} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rec := &pipelinetest.Recorder{MaxWrite: max}
			rec.OnWrite = func(total int) {
				if total > 100_000 {
					cancel()
				}
			}
			cfg := config(7, 0)
			cfg.Batch = 2
			st, err := pipeline.Run(ctx, rec, cfg)
			if err != nil {
				t.Fatalf("Run after cancel: %v, want nil", err)
			}
			got := rec.Bytes()
			if len(got)%7 != 0 {
				t.Fatalf("wrote %d bytes: not a whole number of frames", len(got))
			}
			if !bytes.Equal(got, counterBytes(len(got))) {
				t.Fatalf("stream differs at byte %d", firstDiff(got, counterBytes(len(got))))
			}
			if st.Frames != int64(len(got)/7) {
				t.Errorf("frames = %d, want %d", st.Frames, len(got)/7)
			}
			if st.Unsent != 0 || st.Cut != 0 {
				t.Errorf("unsent %d cut %d: the queue should drain in time", st.Unsent, st.Cut)
			}
		})
	}
}

// slowWriter takes every write after a delay, in fake time under synctest.
type slowWriter struct {
	delay time.Duration
	rec   pipelinetest.Recorder
	calls atomic.Int64
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(w.delay)
	w.calls.Add(1)
	return w.rec.Write(p)
}

func TestDrainTimeoutCountsUnsent(t *testing.T) {
	defer pipeline.UseRuntimeTimers()()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		w := &slowWriter{delay: 10 * time.Millisecond}
		cfg := config(7, 0)
		cfg.Batch = 1
		cfg.QueueBytes = 8 * pipeline.BlockSize
		cfg.DrainTimeout = 200 * time.Millisecond
		go func() {
			time.Sleep(time.Second)
			cancel()
		}()
		st, err := pipeline.Run(ctx, w, cfg)
		if err != nil {
			t.Fatal(err)
		}
		got := w.rec.Bytes()
		if !bytes.Equal(got, counterBytes(len(got))) || len(got)%7 != 0 {
			t.Fatalf("wrote %d bytes, not a whole counter prefix", len(got))
		}
		// 100 writes before the stop, 20 more in the drain time.
		if st.Frames < 115 || st.Frames > 125 {
			t.Errorf("frames = %d, want about 120 (1.2 s at 10 ms a frame)", st.Frames)
		}
		if st.UnsentReason != "drain timeout" {
			t.Errorf("unsent reason %q, want drain timeout", st.UnsentReason)
		}
		if st.Unsent == 0 {
			t.Errorf("unsent = 0, want the frames still queued at the drain timeout")
		}
		// The packager makes whole blocks of whole frames; every byte of
		// them is either sent or counted.
		block := int64(pipeline.BlockSize / 7 * 7)
		if produced := st.Bytes + st.Unsent*7 + st.Cut; produced%block != 0 {
			t.Errorf("sent+unsent+cut = %d bytes, not a whole number of %d-byte counter blocks", produced, block)
		}
	})
}

func TestPacingFollowsAbsoluteSchedule(t *testing.T) {
	defer pipeline.UseRuntimeTimers()()
	synctest.Test(t, func(t *testing.T) {
		var times []time.Duration
		start := time.Now()
		rec := &pipelinetest.Recorder{}
		rec.OnWrite = func(int) { times = append(times, time.Since(start)) }
		cfg := config(7, 1000)
		cfg.Rate = 1000
		st, err := pipeline.Run(context.Background(), rec, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(times) != 1000 {
			t.Fatalf("writes = %d, want 1000 (one frame per write when paced)", len(times))
		}
		for k, at := range times {
			if want := time.Duration(k) * time.Millisecond; at != want {
				t.Fatalf("frame %d written at %v, want %v", k, at, want)
			}
		}
		if r := st.Rate(); r < 999 || r > 1001.1 {
			t.Errorf("rate = %.2f, want 1000", r)
		}
	})
}

// lateWriter is slow once, as if the device stalled.
type lateWriter struct {
	pipelinetest.Recorder
	n     int
	stall map[int]time.Duration
	at    []time.Duration
	start time.Time
}

func (w *lateWriter) Write(p []byte) (int, error) {
	w.at = append(w.at, time.Since(w.start))
	time.Sleep(w.stall[w.n])
	w.n++
	return w.Recorder.Write(p)
}

func TestPacingCatchesUpOrReanchors(t *testing.T) {
	defer pipeline.UseRuntimeTimers()()
	synctest.Test(t, func(t *testing.T) {
		// A 5 ms stall at frame 10 is caught up: frames 11..15 go at once
		// and frame 16 is back on the original schedule. A 500 ms stall
		// at frame 30 re-anchors: frame 31 goes at once and the next one
		// a whole interval later, not as a burst.
		w := &lateWriter{stall: map[int]time.Duration{10: 5 * time.Millisecond, 30: 500 * time.Millisecond}, start: time.Now()}
		cfg := config(7, 40)
		cfg.Rate = 1000
		if _, err := pipeline.Run(context.Background(), w, cfg); err != nil {
			t.Fatal(err)
		}
		ms := time.Millisecond
		checks := []struct {
			frame int
			at    time.Duration
		}{{10, 10 * ms}, {11, 15 * ms}, {15, 15 * ms}, {16, 16 * ms}, {30, 30 * ms}, {31, 530 * ms}, {32, 531 * ms}, {39, 538 * ms}}
		for _, c := range checks {
			if got := w.at[c.frame]; got != c.at {
				t.Errorf("frame %d written at %v, want %v", c.frame, got, c.at)
			}
		}
	})
}

func TestAlignDatagramAndPartialPolicies(t *testing.T) {
	datagrams := [][]byte{{1, 2, 3}, {4, 5, 6, 7, 8, 9, 10}, {11}, {}, {12, 13, 14, 15}}
	cases := []struct {
		align   pipeline.Align
		partial pipeline.Partial
		want    []byte
		padded  int64
		short   int64
		err     error
	}{
		{pipeline.AlignStream, pipeline.PartialPad, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0xee}, 1, 0, nil},
		{pipeline.AlignStream, pipeline.PartialDrop, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 0, 1, nil},
		{pipeline.AlignStream, pipeline.PartialError, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 0, 1, pipeline.ErrPartialFrame},
		{pipeline.AlignDatagram, pipeline.PartialPad, []byte{1, 2, 3, 0xee, 4, 5, 6, 7, 8, 9, 10, 0xee, 11, 0xee, 0xee, 0xee, 12, 13, 14, 15}, 3, 0, nil},
		{pipeline.AlignDatagram, pipeline.PartialDrop, []byte{4, 5, 6, 7, 12, 13, 14, 15}, 0, 3, nil},
		{pipeline.AlignDatagram, pipeline.PartialError, nil, 0, 1, pipeline.ErrPartialFrame},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s", c.align, c.partial), func(t *testing.T) {
			rec := &pipelinetest.Recorder{}
			cfg := config(4, 0)
			cfg.Source = &source.List{Datagrams: datagrams}
			cfg.Align, cfg.Partial, cfg.Pad = c.align, c.partial, 0xee
			st, err := pipeline.Run(context.Background(), rec, cfg)
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if got := rec.Bytes(); !bytes.Equal(got, c.want) {
				t.Errorf("wrote % x, want % x", got, c.want)
			}
			if st.Padded != c.padded || st.Short != c.short {
				t.Errorf("padded %d short %d, want %d and %d", st.Padded, st.Short, c.padded, c.short)
			}
			if st.Datagrams != int64(len(datagrams)) {
				t.Errorf("datagrams = %d, want %d", st.Datagrams, len(datagrams))
			}
		})
	}
}

// burst is a datagram source that produces n numbered 8-byte datagrams as
// fast as it can, one per block.
type burst struct{ n, next int }

func (b *burst) Fill(ctx context.Context, blk *pipeline.Block) error {
	if b.next == b.n {
		return io.EOF
	}
	d := blk.DatagramSpare()
	for i := range 8 {
		d[i] = byte(b.next >> (8 * (i % 4)))
	}
	blk.CommitDatagram(8)
	b.next++
	return nil
}

func TestOverflowDropsAreCountedExactly(t *testing.T) {
	for _, policy := range []pipeline.Overflow{pipeline.OverflowDropNewest, pipeline.OverflowDropOldest} {
		t.Run(string(policy), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := &slowWriter{delay: time.Millisecond}
				cfg := config(4, 0)
				cfg.Source = &burst{n: 5000}
				cfg.Align = pipeline.AlignDatagram
				cfg.Overflow = policy
				cfg.QueueBytes = 4 * 8 // four datagrams
				cfg.Batch = 2
				st, err := pipeline.Run(context.Background(), w, cfg)
				if err != nil {
					t.Fatal(err)
				}
				got := w.rec.Bytes()
				if len(got)%8 != 0 {
					t.Fatalf("wrote %d bytes: a datagram was split", len(got))
				}
				sent := int64(len(got) / 8)
				if st.Dropped == 0 || sent+st.Dropped != 5000 {
					t.Errorf("sent %d + dropped %d = %d, want 5000 with some dropped", sent, st.Dropped, sent+st.Dropped)
				}
				// Whatever survived is in order.
				last := -1
				for i := 0; i < len(got); i += 8 {
					k := int(got[i]) | int(got[i+1])<<8 | int(got[i+2])<<16 | int(got[i+3])<<24
					if k <= last {
						t.Fatalf("datagram %d after %d: out of order", k, last)
					}
					last = k
				}
				if policy == pipeline.OverflowDropOldest && last != 4999 {
					t.Errorf("last datagram = %d, want 4999 (drop-oldest keeps the newest)", last)
				}
			})
		})
	}
}

func TestBlockPolicyLosesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &slowWriter{delay: time.Millisecond}
		cfg := config(4, 0)
		cfg.Source = &burst{n: 500}
		cfg.Align = pipeline.AlignDatagram
		cfg.QueueBytes = 2 * 8 // two datagrams
		st, err := pipeline.Run(context.Background(), w, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if st.Dropped != 0 || st.Frames != 1000 {
			t.Errorf("dropped %d frames %d, want 0 and 1000", st.Dropped, st.Frames)
		}
		if st.QueueHigh != 16 {
			t.Errorf("queue high-water = %d bytes, want 16 (the queue's capacity)", st.QueueHigh)
		}
	})
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*pipeline.Config)
		want string
	}{
		{"frame size 0", func(c *pipeline.Config) { c.FrameSize = 0 }, "pipeline: FrameSize 0 is out of range"},
		{"frame size 5000", func(c *pipeline.Config) { c.FrameSize = 5000 }, "pipeline: FrameSize 5000"},
		{"negative count", func(c *pipeline.Config) { c.Count = -1 }, "pipeline: Count -1"},
		{"count overflowing", func(c *pipeline.Config) { c.Count = math.MaxInt64 }, "pipeline: Count 9223372036854775807 is too large: use up to 1317624576693539401 frames of 7 bytes"},
		{"negative rate", func(c *pipeline.Config) { c.Rate = -2 }, "pipeline: Rate -2"},
		{"queue 0", func(c *pipeline.Config) { c.QueueBytes = 0 }, "pipeline: QueueBytes 0"},
		{"queue 2GiB", func(c *pipeline.Config) { c.QueueBytes = 2 << 30 }, "pipeline: QueueBytes 2147483648"},
		{"batch", func(c *pipeline.Config) { c.Batch = -1 }, "pipeline: Batch -1"},
		{"batch overflowing", func(c *pipeline.Config) { c.FrameSize = 4096; c.Batch = 1 << 62 }, "pipeline: Batch 4611686018427387904"},
		{"rate 1e-10", func(c *pipeline.Config) { c.Rate = 1e-10 }, "pipeline: Rate 1e-10 is below 1e-06 frames/s (a frame every 11.6 days), the slowest rate framesend can pace: use 1e-06 to 10,000,000"},
		{"rate 1e300", func(c *pipeline.Config) { c.Rate = 1e300 }, "pipeline: Rate 1e+300 is above 10,000,000 frames/s: use 1e-06 to 10,000,000"},
		{"overflow", func(c *pipeline.Config) { c.Overflow = "spill" }, `pipeline: Overflow "spill" is not a policy`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := pipeline.DefaultConfig()
			c.mod(&cfg)
			err := cfg.Validate()
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
				t.Errorf("Validate() = %v, want an error naming %s", err, c.want)
			}
			if _, rerr := pipeline.Run(context.Background(), io.Discard, cfg); rerr == nil {
				t.Errorf("Run accepted the config")
			}
		})
	}
	if err := pipeline.DefaultConfig().Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
}

var errUnplugged = errors.New("device disappeared")

// flakyDevice fails once after failAt bytes, as an unplugged adapter
// does, and then writes to a second recorder once reconnected.
type flakyDevice struct {
	before, after pipelinetest.Recorder
	failAt        int
	failed, back  bool
	reconnectErr  error // what Reconnect returns
	reconnects    int
	waiting       func() // called while Reconnect waits, if set
}

func (d *flakyDevice) Write(p []byte) (int, error) {
	if d.back {
		return d.after.Write(p)
	}
	if d.failed {
		return 0, errUnplugged
	}
	room := d.failAt - len(d.before.Bytes())
	if len(p) <= room {
		return d.before.Write(p)
	}
	d.before.Write(p[:room])
	d.failed = true
	return room, errUnplugged
}

func (d *flakyDevice) Reconnect(ctx context.Context, err error) error {
	d.reconnects++
	if !errors.Is(err, errUnplugged) {
		return err
	}
	if d.waiting != nil {
		d.waiting()
		<-ctx.Done()
		return ctx.Err()
	}
	if d.reconnectErr != nil {
		return d.reconnectErr
	}
	d.back = true
	return nil
}

func TestReconnectResumesAtTheFailedFrame(t *testing.T) {
	for _, batch := range []int{0, 1, 5} {
		t.Run(fmt.Sprint(batch), func(t *testing.T) {
			d := &flakyDevice{failAt: 7*1000 + 3} // mid-frame 1000
			cfg := config(7, 3000)
			cfg.Batch = batch
			st, err := pipeline.Run(context.Background(), d, cfg)
			if err != nil {
				t.Fatal(err)
			}
			before, after := d.before.Bytes(), d.after.Bytes()
			if !bytes.Equal(before, counterBytes(7*1000+3)) {
				t.Fatalf("old device got %d bytes, want the first 7003", len(before))
			}
			if want := counterBytes(7 * 3000)[7*1000:]; !bytes.Equal(after, want) {
				t.Fatalf("new device got %d bytes, want frames 1000 to 2999 (%d bytes)", len(after), len(want))
			}
			if st.Frames != 3000 || st.Reconnects != 1 || st.Resent != 1 {
				t.Errorf("frames %d reconnects %d resent %d, want 3000, 1, 1", st.Frames, st.Reconnects, st.Resent)
			}
		})
	}
}

func TestReconnectGivesUp(t *testing.T) {
	timeout := errors.New("not back within 1s")
	d := &flakyDevice{failAt: 70, reconnectErr: timeout}
	st, err := pipeline.Run(context.Background(), d, config(7, 100))
	if !errors.Is(err, timeout) {
		t.Fatalf("err = %v, want the reconnect's error", err)
	}
	if st.Frames != 10 || st.Unsent == 0 {
		t.Errorf("frames %d unsent %d: want 10 written and the rest counted unsent", st.Frames, st.Unsent)
	}
}

func TestStopWhileWaitingForTheDevice(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := &flakyDevice{failAt: 70, waiting: cancel} // the stop comes during the wait
	st, err := pipeline.Run(ctx, d, config(7, 100))
	if err != nil {
		t.Fatalf("a stop during an outage: err = %v, want nil", err)
	}
	if d.reconnects != 1 || st.Frames != 10 || st.Unsent != 90 {
		t.Errorf("reconnects %d frames %d unsent %d, want 1, 10 and 90", d.reconnects, st.Frames, st.Unsent)
	}
	if want := "90 frames unsent (stopped while waiting for the device)"; !strings.Contains(st.String(), want) {
		t.Errorf("summary %q lacks %q", st, want)
	}
}

// ackSource gives datagrams that want acknowledgements, in 1 KiB blocks,
// and records, for each ack, how many bytes the writer had taken when it
// fired.
type ackSource struct {
	ackList
	fired []int // datagram index order
	at    []int // bytes written when each fired
}

func newAckSource(datagrams [][]byte, rec *pipelinetest.Recorder) *ackSource {
	a := &ackSource{}
	a.ackList = ackList{datagrams: datagrams, block: 1024, ack: func(i int) {
		a.fired = append(a.fired, i)
		a.at = append(a.at, len(rec.Bytes()))
	}}
	return a
}

func TestAcksFireOnlyOnceWritten(t *testing.T) {
	var datagrams [][]byte
	for i := range 200 {
		datagrams = append(datagrams, bytes.Repeat([]byte{byte(i)}, 1+i%9))
	}
	for _, align := range []pipeline.Align{pipeline.AlignDatagram, pipeline.AlignStream} {
		t.Run(string(align), func(t *testing.T) {
			rec := &pipelinetest.Recorder{MaxWrite: 5}
			src := newAckSource(datagrams, rec)
			cfg := config(4, 0)
			cfg.Source, cfg.Align, cfg.Batch = src, align, 2
			if _, err := pipeline.Run(context.Background(), rec, cfg); err != nil {
				t.Fatal(err)
			}
			if len(src.fired) != len(datagrams) {
				t.Fatalf("%d acks fired, want %d", len(src.fired), len(datagrams))
			}
			// Where each datagram ends in the stream the writer got.
			pos := 0
			for k, i := range src.fired {
				if i != k {
					t.Fatalf("ack %d fired for datagram %d: out of order", k, i)
				}
				pos += len(datagrams[i])
				if align == pipeline.AlignDatagram && pos%4 != 0 {
					pos += 4 - pos%4 // its padding
				}
				if src.at[k] < pos {
					t.Fatalf("datagram %d acked with %d bytes written, before its end at %d", i, src.at[k], pos)
				}
			}
		})
	}
	// A run that stops early acks only what it wrote.
	rec := &pipelinetest.Recorder{}
	src := newAckSource(datagrams, rec)
	cfg := config(4, 10) // 10 frames of 4 bytes
	cfg.Source, cfg.Align = src, pipeline.AlignDatagram
	if _, err := pipeline.Run(context.Background(), rec, cfg); err != nil {
		t.Fatal(err)
	}
	if len(src.fired) == 0 || len(src.fired) >= len(datagrams) {
		t.Fatalf("%d acks after 10 frames, want some but not all", len(src.fired))
	}
	// Each ack is for a datagram that is wholly in what was written, at
	// its place, and fired once it was; every datagram wholly written is
	// acknowledged.
	written := rec.Bytes()
	if len(written) != 40 {
		t.Fatalf("%d bytes written, want the 40 of 10 frames", len(written))
	}
	pos, whole := 0, 0
	for i, d := range datagrams {
		end := pos + len(d)
		if end > len(written) {
			break
		}
		if !bytes.Equal(written[pos:end], d) {
			t.Fatalf("datagram %d not at bytes %d..%d of what was written", i, pos, end)
		}
		whole++
		if k := slices.Index(src.fired, i); k < 0 {
			t.Errorf("datagram %d wholly written (bytes %d..%d) but never acknowledged", i, pos, end)
		} else if src.at[k] < end {
			t.Errorf("datagram %d acknowledged with %d bytes written, before its end at %d", i, src.at[k], end)
		}
		pos = end + (4-end%4)%4 // its padding
	}
	for k, i := range src.fired {
		if i >= whole {
			t.Errorf("ack %d fired for datagram %d, which was not wholly written (%d were)", k, i, whole)
		}
	}
}

// countingSource is a stream source that fills every block and counts the
// bytes it handed over.
type countingSource struct{ n int64 }

func (c *countingSource) Fill(ctx context.Context, b *pipeline.Block) error {
	s := b.Spare()
	for i := range s {
		s[i] = byte(c.n + int64(i))
	}
	b.Commit(len(s))
	c.n += int64(len(s))
	return nil
}

// TestStopWithAFullQueueCountsEveryByte stops a run while the packager waits
// on a full queue with a block in hand: that block's bytes were read from the
// source and must be written or counted, never lost.
func TestStopWithAFullQueueCountsEveryByte(t *testing.T) {
	for _, drain := range []time.Duration{0, 50 * time.Millisecond, time.Hour} {
		t.Run(fmt.Sprint("drain ", drain), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				w := &slowWriter{delay: 10 * time.Millisecond}
				src := &countingSource{}
				cfg := config(7, 0)
				cfg.Source = src
				cfg.Rate = 1000             // small blocks, 10 ms of frames each
				cfg.QueueBytes = 2 * 7 * 10 // two blocks of 10 ms
				cfg.DrainTimeout = drain
				go func() {
					time.Sleep(500 * time.Millisecond)
					cancel()
				}()
				st, err := pipeline.Run(ctx, w, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if accounted := st.Bytes + st.Unsent*7 + st.Cut; accounted != src.n {
					t.Errorf("source gave %d bytes; written %d + unsent %d frames + cut %d = %d",
						src.n, st.Bytes, st.Unsent, st.Cut, accounted)
				}
			})
		})
	}
	t.Run("datagrams", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			w := &slowWriter{delay: 10 * time.Millisecond}
			cfg := config(4, 0)
			cfg.Source = &burst{n: 1 << 30}
			cfg.Align = pipeline.AlignDatagram
			cfg.QueueBytes = 2 * 8 // two datagrams
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
			// Each datagram is two frames.
			if st.Datagrams*2 != st.Frames+st.Unsent || st.Cut != 0 {
				t.Errorf("datagrams %d (= %d frames), but frames %d + unsent %d, cut %d",
					st.Datagrams, st.Datagrams*2, st.Frames, st.Unsent, st.Cut)
			}
		})
	})
}

// piecesSource gives datagrams as an MQTT source does: a datagram larger
// than a block goes in pieces, acknowledged after its last one.
type piecesSource struct {
	datagrams [][]byte
	next, off int
	rec       *pipelinetest.Recorder
	at        []int // bytes written when each ack fired
}

func (p *piecesSource) BlockSize() int { return pipeline.MaxDatagram }

func (p *piecesSource) Fill(ctx context.Context, b *pipeline.Block) error {
	for p.next < len(p.datagrams) {
		rest := p.datagrams[p.next][p.off:]
		if b.Len() > 0 && !b.Fits(len(rest)) {
			return nil
		}
		spare := b.DatagramSpare()
		if len(rest) > len(spare) {
			b.CommitDatagramPart(copy(spare, rest))
			p.off += len(spare)
			return nil
		}
		b.CommitDatagramAck(copy(spare, rest), func() { p.at = append(p.at, len(p.rec.Bytes())) })
		p.next, p.off = p.next+1, 0
	}
	return io.EOF
}

func TestDatagramLargerThanABlock(t *testing.T) {
	big := randomish(150_000)
	for _, align := range []pipeline.Align{pipeline.AlignDatagram, pipeline.AlignStream} {
		t.Run(string(align), func(t *testing.T) {
			rec := &pipelinetest.Recorder{MaxWrite: 1000}
			src := &piecesSource{datagrams: [][]byte{{1, 2, 3, 4, 5}, big, {6, 7, 8}}, rec: rec}
			cfg := config(4, 0)
			cfg.Source, cfg.Align, cfg.Pad = src, align, 0xee
			cfg.QueueBytes = 1000 // far less than the datagram: it still goes
			st, err := pipeline.Run(context.Background(), rec, cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := append(append([]byte{1, 2, 3, 4, 5}, big...), 6, 7, 8)
			ends := []int{5, 150_005, 150_008}
			if align == pipeline.AlignDatagram {
				want = append(append([]byte{1, 2, 3, 4, 5, 0xee, 0xee, 0xee}, big...), 6, 7, 8, 0xee)
				ends = []int{8, 150_008, 150_012}
			}
			if got := rec.Bytes(); !bytes.Equal(got, want) {
				t.Fatalf("wrote %d bytes, want %d (first difference at %d)", len(got), len(want), firstDiff(got, want))
			}
			if st.Datagrams != 3 {
				t.Errorf("datagrams = %d, want 3 (the large one counts once)", st.Datagrams)
			}
			if len(src.at) != 3 {
				t.Fatalf("%d acks, want 3", len(src.at))
			}
			for i, at := range src.at {
				if at < ends[i] {
					t.Errorf("datagram %d acknowledged with %d bytes written, before its end at %d", i, at, ends[i])
				}
			}
		})
	}
}

func randomish(n int) []byte {
	b := make([]byte, n)
	x := uint32(1)
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// gatedWriter takes nothing until open is closed, like a device that
// stalls during a burst and then reads again.
type gatedWriter struct {
	open chan struct{}
	rec  pipelinetest.Recorder
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	<-w.open
	return w.rec.Write(p)
}

// trickle gives n numbered 8-byte datagrams one per Fill, as a datagram
// source does when datagrams arrive one at a time, and closes done after
// the last.
type trickle struct {
	burst
	done chan struct{}
}

func (s *trickle) Fill(ctx context.Context, b *pipeline.Block) error {
	err := s.burst.Fill(ctx, b)
	if err == io.EOF {
		close(s.done)
	}
	return err
}

func TestBurstWithinTheQueueIsNotDropped(t *testing.T) {
	// 100,000 datagrams of 8 bytes (800 KB) into a stalled device: the
	// default queue of 1 MiB holds them all, however they arrive.
	src := &trickle{burst: burst{n: 100_000}, done: make(chan struct{})}
	w := &gatedWriter{open: src.done}
	cfg := config(8, 0)
	cfg.Source, cfg.Align, cfg.Overflow = src, pipeline.AlignDatagram, pipeline.OverflowDropNewest
	st, err := pipeline.Run(context.Background(), w, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Dropped != 0 || st.Frames != 100_000 {
		t.Fatalf("dropped %d, frames %d: want 0 and 100000", st.Dropped, st.Frames)
	}
	got := w.rec.Bytes()
	for k := range 100_000 {
		if int(got[8*k])|int(got[8*k+1])<<8|int(got[8*k+2])<<16 != k {
			t.Fatalf("datagram %d is % x: out of order", k, got[8*k:8*k+8])
		}
	}
	if st.QueueHigh > pipeline.DefaultQueueBytes || st.QueueHigh < 700_000 {
		t.Errorf("queue high-water %d bytes, want most of the 800,000 and at most the room", st.QueueHigh)
	}
}

func TestPaddingDoesNotGrowTheSenderBuffer(t *testing.T) {
	// 8192 one-byte datagrams, each padded to a 4096-byte frame: 32 MiB
	// of frames from 8 KiB of datagrams, written without holding more than
	// a block's worth at once.
	d := make([][]byte, 1<<13)
	for i := range d {
		d[i] = []byte{byte(i)}
	}
	cfg := config(4096, 0)
	cfg.Source, cfg.Align = &source.List{Datagrams: d}, pipeline.AlignDatagram
	w := &countingWriter{}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	st, err := pipeline.Run(context.Background(), w, cfg)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if st.Frames != 1<<13 || w.n != 1<<25 || st.Padded != 1<<13 {
		t.Fatalf("frames %d, bytes %d, padded %d; want 8192 frames of 4096 bytes, all padded", st.Frames, w.n, st.Padded)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("the run allocated %d MiB: the sender's buffer grew with the padding", grew>>20)
	}
}

// TestUnsentSaysWhy: frames read but not written because the count was
// reached are not blamed on a drain timeout.
func TestUnsentSaysWhy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &slowWriter{delay: time.Millisecond}
		cfg := config(4, 3) // three frames; each datagram is two
		cfg.Source = &burst{n: 100}
		cfg.Align = pipeline.AlignDatagram
		st, err := pipeline.Run(context.Background(), w, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if st.Frames != 3 || st.Unsent == 0 || st.UnsentReason != "count reached" {
			t.Errorf("frames %d unsent %d (%q), want 3 and some unsent because the count was reached", st.Frames, st.Unsent, st.UnsentReason)
		}
		if s := st.String(); strings.Contains(s, "drain timeout") || !strings.Contains(s, "unsent (count reached)") {
			t.Errorf("summary %q", s)
		}
	})
}

func TestSummaryWording(t *testing.T) {
	cases := []struct {
		st         pipeline.Stats
		want, nope []string
	}{
		{pipeline.Stats{Frames: 1, Bytes: 1, Writes: 1, Elapsed: time.Second, Active: time.Second, Datagrams: 1, Reconnects: 1},
			[]string{"1 frame, 1 byte in 1.000 s (1 frames/s), 1 write,", "1 datagram in", "1 reconnect"}, []string{"1 frames,", "1 writes", "1 datagrams", "1 reconnects"}},
		{pipeline.Stats{Frames: 364, Bytes: 2548, Writes: 364, Elapsed: 3 * time.Second, Active: 364 * time.Millisecond},
			[]string{"(1000 frames/s while writing, 121 frames/s over the run)"}, nil},
		{pipeline.Stats{Frames: 4095, Bytes: 4095, Writes: 1, Elapsed: 10 * time.Second},
			[]string{"4095 frames, 4095 bytes in 10.000 s (0 frames/s while writing, 410 frames/s over the run)"}, []string{"0 writes"}},
		{pipeline.Stats{Frames: 2, Unsent: 5, UnsentReason: "drain timeout", Elapsed: time.Second, Active: time.Second},
			[]string{"5 frames unsent (drain timeout)"}, nil},
	}
	for _, c := range cases {
		s := c.st.String()
		for _, w := range c.want {
			if !strings.Contains(s, w) {
				t.Errorf("%q lacks %q", s, w)
			}
		}
		for _, w := range c.nope {
			if strings.Contains(s, w) {
				t.Errorf("%q has %q", s, w)
			}
		}
	}
}
