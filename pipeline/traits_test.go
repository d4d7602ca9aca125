package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framesend/framesend/pipeline"
	"github.com/framesend/framesend/pipeline/pipelinetest"
)

// described is a datagram source over datagrams in memory that says it is
// what traits says.
type described struct {
	traits    pipeline.Traits
	datagrams [][]byte
	next      int
	ended     chan struct{} // if not nil, closed when Fill returns io.EOF
	closed    bool
}

func (d *described) Describe() pipeline.Traits { return d.traits }

func (d *described) Fill(ctx context.Context, b *pipeline.Block) error {
	for d.next < len(d.datagrams) {
		p := d.datagrams[d.next]
		if b.Datagrams() > 0 && !b.Fits(len(p)) {
			return nil
		}
		if d.traits.Datagrams {
			b.CommitDatagram(copy(b.DatagramSpare(), p))
		} else {
			b.Commit(copy(b.Spare(), p))
		}
		d.next++
	}
	if d.ended != nil && !d.closed {
		close(d.ended)
		d.closed = true
	}
	return io.EOF
}

var (
	stream   = pipeline.Traits{Name: "a stream"}
	lines    = pipeline.Traits{Name: "lines", Datagrams: true}
	messages = pipeline.Traits{Name: "messages", Datagrams: true, Messages: true}
	live     = pipeline.Traits{Name: "a socket", Datagrams: true, Messages: true, Live: true}
	acked    = pipeline.Traits{Name: "a broker", Datagrams: true, Messages: true, Acknowledged: true}
	// A live source that acknowledges: not holding it back would lose
	// what it waits to acknowledge, so it is held back all the same.
	liveAcked = pipeline.Traits{Name: "a live broker", Datagrams: true, Messages: true, Live: true, Acknowledged: true}
)

// Align and Overflow left empty are chosen for the source.
func TestForSourceDefaults(t *testing.T) {
	cases := []struct {
		traits   pipeline.Traits
		align    pipeline.Align
		overflow pipeline.Overflow
	}{
		{stream, pipeline.AlignStream, pipeline.OverflowBlock},
		{lines, pipeline.AlignStream, pipeline.OverflowBlock},
		{messages, pipeline.AlignDatagram, pipeline.OverflowBlock},
		{live, pipeline.AlignDatagram, pipeline.OverflowDropNewest},
		{acked, pipeline.AlignDatagram, pipeline.OverflowBlock},
		{liveAcked, pipeline.AlignDatagram, pipeline.OverflowBlock},
	}
	for _, c := range cases {
		cfg := pipeline.DefaultConfig()
		got, err := cfg.ForSource(c.traits)
		if err != nil {
			t.Errorf("%s: ForSource = %v, want no error", c.traits.Name, err)
			continue
		}
		if got.Align != c.align || got.Overflow != c.overflow {
			t.Errorf("%s: Align %q, Overflow %q; want %q, %q", c.traits.Name, got.Align, got.Overflow, c.align, c.overflow)
		}
		// A value given is kept.
		cfg.Align, cfg.Overflow = pipeline.AlignStream, pipeline.OverflowBlock
		if got, err := cfg.ForSource(c.traits); err != nil || got.Align != pipeline.AlignStream || got.Overflow != pipeline.OverflowBlock {
			t.Errorf("%s: given stream and block, ForSource = %q, %q, %v; want them kept", c.traits.Name, got.Align, got.Overflow, err)
		}
	}
}

// What a source cannot take is refused, by ForSource and by Run, with a
// *ConfigError naming the field, the value and the source.
func TestForSourceRefuses(t *testing.T) {
	cases := []struct {
		name     string
		traits   pipeline.Traits
		align    pipeline.Align
		overflow pipeline.Overflow
		field    string
		reason   string
	}{
		{"align datagram on a stream", stream, pipeline.AlignDatagram, "", "Align", "a stream is a byte stream"},
		{"drop-newest on a stream", stream, "", pipeline.OverflowDropNewest, "Overflow", "a stream is a byte stream, which cannot lose a block"},
		{"drop-oldest on a stream", stream, pipeline.AlignStream, pipeline.OverflowDropOldest, "Overflow", "a stream is a byte stream"},
		{"drop-newest on an acknowledged source", acked, "", pipeline.OverflowDropNewest, "Overflow", "would lose messages that a broker acknowledges"},
		{"drop-oldest on an acknowledged source", acked, "", pipeline.OverflowDropOldest, "Overflow", "would lose messages"},
		{"drop-newest on a live acknowledged source", liveAcked, "", pipeline.OverflowDropNewest, "Overflow", "would lose messages"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := pipeline.DefaultConfig()
			cfg.Align, cfg.Overflow = c.align, c.overflow
			check := func(what string, err error) {
				t.Helper()
				var cerr *pipeline.ConfigError
				if !errors.As(err, &cerr) {
					t.Fatalf("%s = %v, want a *ConfigError", what, err)
				}
				want := string(c.align)
				if c.field == "Overflow" {
					want = string(c.overflow)
				}
				if cerr.Field != c.field || cerr.Value != want || !strings.Contains(cerr.Reason, c.reason) {
					t.Errorf("%s = %#v, want field %s, value %s and a reason with %q", what, cerr, c.field, want, c.reason)
				}
				if !strings.HasPrefix(err.Error(), "pipeline: "+c.field+" ") {
					t.Errorf("%s: %q does not name the package and the field", what, err)
				}
			}
			_, err := cfg.ForSource(c.traits)
			check("ForSource", err)

			rec := &pipelinetest.Recorder{}
			cfg.Source = &described{traits: c.traits, datagrams: [][]byte{{1, 2, 3}}}
			_, err = pipeline.Run(context.Background(), rec, cfg)
			check("Run", err)
			if len(rec.Bytes()) != 0 {
				t.Errorf("a refused run wrote %d bytes", len(rec.Bytes()))
			}
		})
	}
}

// Run takes Align from the source when the Config leaves it empty: the
// same datagrams are framed per message for a source of messages, and as
// one stream for lines.
func TestRunChoosesAlignForTheSource(t *testing.T) {
	datagrams := [][]byte{{1, 2, 3}, {4, 5, 6, 7, 8}}
	for _, c := range []struct {
		traits pipeline.Traits
		want   []byte
	}{
		{messages, []byte{1, 2, 3, 0xee, 4, 5, 6, 7, 8, 0xee, 0xee, 0xee}},
		{lines, []byte{1, 2, 3, 4, 5, 6, 7, 8}},
	} {
		rec := &pipelinetest.Recorder{}
		cfg := pipeline.DefaultConfig()
		cfg.FrameSize, cfg.Pad = 4, 0xee
		cfg.Source = &described{traits: c.traits, datagrams: datagrams}
		if _, err := pipeline.Run(context.Background(), rec, cfg); err != nil {
			t.Fatalf("%s: %v", c.traits.Name, err)
		}
		if got := rec.Bytes(); !bytes.Equal(got, c.want) {
			t.Errorf("%s: sent % x, want % x", c.traits.Name, got, c.want)
		}
	}
}

// Run takes Overflow from the source: a live source drops what a full
// queue cannot take instead of being held back; a source of messages that
// is not live is held back and loses nothing.
func TestRunDropsForALiveSource(t *testing.T) {
	datagrams := make([][]byte, 1000)
	for i := range datagrams {
		datagrams[i] = []byte{byte(i), byte(i >> 8), 0, 0}
	}
	for _, c := range []struct {
		traits pipeline.Traits
		live   bool
	}{
		{live, true},
		{messages, false},
	} {
		release := make(chan struct{})
		var once sync.Once
		rec := &pipelinetest.Recorder{OnWrite: func(int) { once.Do(func() { <-release }) }}
		src := &described{traits: c.traits, datagrams: datagrams, ended: make(chan struct{})}
		cfg := pipeline.DefaultConfig()
		cfg.FrameSize, cfg.QueueBytes, cfg.Batch = 4, 64, 1
		cfg.Source = src
		done := make(chan struct{})
		var st pipeline.Stats
		var err error
		go func() {
			defer close(done)
			st, err = pipeline.Run(context.Background(), rec, cfg)
		}()
		if c.live {
			// The writer holds its first write: a live source must still
			// get to its end, past the queue's room.
			select {
			case <-src.ended:
			case <-time.After(10 * time.Second):
				close(release)
				<-done
				t.Fatalf("%s: the source was held back by a full queue", c.traits.Name)
			}
		}
		close(release)
		<-done
		if err != nil {
			t.Fatalf("%s: %v", c.traits.Name, err)
		}
		if c.live && st.Dropped == 0 {
			t.Errorf("%s: dropped nothing, want the datagrams past the queue's room dropped", c.traits.Name)
		}
		if !c.live && (st.Dropped != 0 || st.Frames != int64(len(datagrams))) {
			t.Errorf("%s: %d frames sent, %d dropped; want %d and 0", c.traits.Name, st.Frames, st.Dropped, len(datagrams))
		}
	}
}

// A source that does not describe itself is taken as its Config says:
// nothing is refused, and the defaults are a stream held back.
func TestRunTakesAnUndescribedSourceAsConfigured(t *testing.T) {
	cfg := pipeline.DefaultConfig()
	if got, err := cfg.ForSource(pipeline.Traits{}); err != nil || got.Align != pipeline.AlignStream || got.Overflow != pipeline.OverflowBlock {
		t.Fatalf("ForSource(no traits) = %q, %q, %v; want stream, block", got.Align, got.Overflow, err)
	}
	rec := &pipelinetest.Recorder{}
	cfg.FrameSize, cfg.Align, cfg.Pad = 4, pipeline.AlignDatagram, 0xee
	cfg.Source = &undescribed{described{traits: lines, datagrams: [][]byte{{1, 2, 3}, {4}}}}
	if _, err := pipeline.Run(context.Background(), rec, cfg); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.Bytes(), []byte{1, 2, 3, 0xee, 4, 0xee, 0xee, 0xee}; !bytes.Equal(got, want) {
		t.Errorf("sent % x, want % x", got, want)
	}
}

// undescribed hides its Describe method.
type undescribed struct{ d described }

func (u *undescribed) Fill(ctx context.Context, b *pipeline.Block) error { return u.d.Fill(ctx, b) }
