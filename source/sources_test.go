package source_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/framesend/framesend/pipeline"
	"github.com/framesend/framesend/pipeline/pipelinetest"
	"github.com/framesend/framesend/source"
)

// The reader source, read in pieces of any size, gives the stream's bytes
// in whole frames, the last one padded.
func TestReaderSourceThroughRun(t *testing.T) {
	data := pipeline.AppendCounter(nil, 0, 7*1000+3)
	{
		for wrap, w := range map[string]func(*bytes.Reader) pipeline.Source{
			"one read":      func(b *bytes.Reader) pipeline.Source { return &source.Reader{R: b} },
			"one byte":      func(b *bytes.Reader) pipeline.Source { return &source.Reader{R: iotest.OneByteReader(b)} },
			"half reads":    func(b *bytes.Reader) pipeline.Source { return &source.Reader{R: iotest.HalfReader(b)} },
			"data with EOF": func(b *bytes.Reader) pipeline.Source { return &source.Reader{R: iotest.DataErrReader(b)} },
		} {
			t.Run(wrap, func(t *testing.T) {
				rec := &pipelinetest.Recorder{MaxWrite: 100}
				cfg := pipeline.DefaultConfig()
				cfg.Source, cfg.Pad = w(bytes.NewReader(data)), 0xee
				st, err := pipeline.Run(context.Background(), rec, cfg)
				if err != nil {
					t.Fatal(err)
				}
				want := append(append([]byte(nil), data...), 0xee, 0xee, 0xee, 0xee)
				if got := rec.Bytes(); !bytes.Equal(got, want) {
					t.Fatalf("sent %d bytes, want the %d read and 4 of padding", len(got), len(data))
				}
				if st.Frames != 1001 {
					t.Errorf("frames = %d, want 1001", st.Frames)
				}
			})
		}
	}
}

// A reader error ends the run with that error, after what came before it.
func TestReaderSourceError(t *testing.T) {
	boom := errors.New("disk on fire")
	rec := &pipelinetest.Recorder{}
	cfg := pipeline.DefaultConfig()
	cfg.Source = &source.Reader{R: iotest.TimeoutReader(bytes.NewReader(make([]byte, 70)))}
	_, err := pipeline.Run(context.Background(), rec, cfg)
	if !errors.Is(err, iotest.ErrTimeout) {
		t.Fatalf("Run = %v, want the reader's error", err)
	}
	cfg.Source = &source.Reader{R: iotest.ErrReader(boom)}
	if _, err := pipeline.Run(context.Background(), rec, cfg); !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want %v", err, boom)
	}
}

// A stop ends a read blocked on a pipe that stays open, and what was read
// before it is sent.
func TestPipeSourcesStopWhileBlocked(t *testing.T) {
	for _, kind := range []string{"reader", "hex"} {
		t.Run(kind, func(t *testing.T) {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			defer pw.Close()
			var src pipeline.Source = &source.Reader{R: pr}
			in, want := pipeline.AppendCounter(nil, 0, 14), pipeline.AppendCounter(nil, 0, 14)
			if kind == "hex" {
				src = source.NewHex(pr, "pipe")
				in = []byte("00 01 02 03 04 05 06\n07 08 09 0a 0b 0c 0d\n")
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rec := &pipelinetest.Recorder{}
			rec.OnWrite = func(total int) {
				if total == len(want) {
					cancel() // everything is out; the source now waits on the pipe
				}
			}
			done := make(chan error, 1)
			go func() {
				cfg := pipeline.DefaultConfig()
				cfg.Source = src
				_, err := pipeline.Run(ctx, rec, cfg)
				done <- err
			}()
			pw.Write(in)
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run = %v, want a clean stop", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("hang-guard: a stop did not end a read blocked on an open pipe")
			}
			if got := rec.Bytes(); !bytes.Equal(got, want) {
				t.Fatalf("sent % x, want % x", got, want)
			}
		})
	}
}

// The hex source gives one datagram a line, whatever the reads' sizes,
// skipping blank lines and comments, and a bad token ends the run with
// its line and column.
func TestHexSourceThroughRun(t *testing.T) {
	text := "# header\n01 02 03\n\n  0xaa 0XBB # two\r\nff\n"
	want := []byte{1, 2, 3, 0, 0xaa, 0xbb, 0, 0, 0xff, 0, 0, 0}
	for name, r := range map[string]func() pipeline.Source{
		"whole":    func() pipeline.Source { return source.NewHex(strings.NewReader(text), "t.hex") },
		"one byte": func() pipeline.Source { return source.NewHex(iotest.OneByteReader(strings.NewReader(text)), "t.hex") },
	} {
		t.Run(name, func(t *testing.T) {
			rec := &pipelinetest.Recorder{}
			cfg := pipeline.DefaultConfig()
			cfg.Source, cfg.FrameSize, cfg.Align, cfg.Pad = r(), 4, pipeline.AlignDatagram, 0
			st, err := pipeline.Run(context.Background(), rec, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.Bytes(); !bytes.Equal(got, want) {
				t.Fatalf("sent % x, want % x", got, want)
			}
			if st.Datagrams != 3 {
				t.Errorf("datagrams = %d, want 3", st.Datagrams)
			}
		})
	}
	rec := &pipelinetest.Recorder{}
	cfg := pipeline.DefaultConfig()
	cfg.Source, cfg.FrameSize, cfg.Align = source.NewHex(strings.NewReader("01 02 03 04\n05 0xZZ\n"), "t.hex"), 4, pipeline.AlignDatagram
	_, err := pipeline.Run(context.Background(), rec, cfg)
	var he *source.HexError
	if !errors.As(err, &he) || he.Line != 2 || he.Column != 4 || he.Token != "0xZZ" || he.Name != "t.hex" {
		t.Fatalf("Run = %#v, want a HexError for 0xZZ at t.hex:2:4", err)
	}
	if got := rec.Bytes(); !bytes.Equal(got, []byte{1, 2, 3, 4}) {
		t.Errorf("sent % x before the bad line, want the first line's frame", got)
	}
}
