package pipeline_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/framesend/framesend/pipeline"
	"github.com/framesend/framesend/source"
)

// countingWriter takes everything, like a device that never pushes back.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// benchRun sends b.N frames in one run, so ns/op and allocs/op are per
// frame in the steady state (the run's fixed setup is spread over b.N).
func benchRun(b *testing.B, fs, batch int, rate float64) {
	cfg := pipeline.DefaultConfig()
	cfg.FrameSize = fs
	cfg.Batch = batch
	cfg.Count = int64(b.N)
	cfg.Rate = rate
	w := &countingWriter{}
	b.SetBytes(int64(fs))
	b.ReportAllocs()
	b.ResetTimer()
	st, err := pipeline.Run(context.Background(), w, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if st.Frames != int64(b.N) || w.n != int64(b.N*fs) {
		b.Fatalf("sent %d frames (%d bytes), want %d", st.Frames, w.n, b.N)
	}
	b.ReportMetric(float64(st.Writes)/float64(b.N), "writes/frame")
}

// deadlineCounter is countingWriter with write deadlines, as a serial
// port has: the sender then arms a deadline around its writes.
type deadlineCounter struct {
	countingWriter
	deadline time.Time
}

func (w *deadlineCounter) SetWriteDeadline(t time.Time) error {
	w.deadline = t
	return nil
}

// BenchmarkCounterBatch1Deadline is BenchmarkCounterBatch1 on a writer with
// deadlines: what arming them costs per write.
func BenchmarkCounterBatch1Deadline(b *testing.B) {
	cfg := pipeline.DefaultConfig()
	cfg.FrameSize = 7
	cfg.Batch = 1
	cfg.Count = int64(b.N)
	cfg.WriteTimeout = 10 * time.Second // send's default
	w := &deadlineCounter{}
	b.SetBytes(7)
	b.ReportAllocs()
	b.ResetTimer()
	st, err := pipeline.Run(context.Background(), w, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if st.Frames != int64(b.N) || w.n != int64(b.N*7) {
		b.Fatalf("sent %d frames (%d bytes), want %d", st.Frames, w.n, b.N)
	}
}

func BenchmarkCounterBatch1(b *testing.B)  { benchRun(b, 7, 1, 0) }
func BenchmarkCounterDefault(b *testing.B) { benchRun(b, 7, 0, 0) }
func BenchmarkCounterFrame64(b *testing.B) { benchRun(b, 64, 0, 0) }

// BenchmarkFramer is the receiving side: listen's framing and counter check.
func BenchmarkFramerCounterCheck(b *testing.B) {
	data := counterBytes(7 * 4096)
	f := pipeline.NewFramer(7)
	c := &pipeline.CounterCheck{}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		f.Feed(data, func(fr []byte) { c.Check(fr) })
	}
	if !c.OK() {
		b.Fatal(c)
	}
}

func benchSource(b *testing.B, src pipeline.Source, align pipeline.Align) {
	cfg := pipeline.DefaultConfig()
	cfg.Source = src
	cfg.Align = align
	cfg.Count = int64(b.N)
	w := &countingWriter{}
	b.SetBytes(7)
	b.ReportAllocs()
	b.ResetTimer()
	st, err := pipeline.Run(context.Background(), w, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if st.Frames != int64(b.N) {
		b.Fatalf("sent %d frames, want %d", st.Frames, b.N)
	}
}

// BenchmarkReaderSource is the file and stdin path.
func BenchmarkReaderSource(b *testing.B) {
	benchSource(b, &source.Reader{R: &fixedReader{}}, pipeline.AlignStream)
}

// fixedReader fills every read with the same bytes, without allocating.
type fixedReader struct{}

func (fixedReader) Read(p []byte) (int, error) { return len(p), nil }

// BenchmarkListSource is the hex file path: one 7-byte datagram a frame.
func BenchmarkListSource(b *testing.B) {
	d := make([][]byte, b.N)
	line := counterBytes(7)
	for i := range d {
		d[i] = line
	}
	benchSource(b, &source.List{Datagrams: d}, pipeline.AlignDatagram)
}

// BenchmarkUDPSource is the UDP path: one 7-byte datagram a frame, over
// loopback, with the sender blasting from another goroutine.
func BenchmarkUDPSource(b *testing.B) {
	u, err := source.ListenUDP("127.0.0.1:0", nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer u.Close()
	conn, err := net.DialUDP("udp", nil, u.Addr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		d := counterBytes(7)
		for {
			select {
			case <-stop:
				return
			default:
				conn.Write(d)
			}
		}
	}()
	cfg := pipeline.DefaultConfig()
	cfg.Source = u
	cfg.Align = pipeline.AlignDatagram
	cfg.Count = int64(b.N)
	b.SetBytes(7)
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := pipeline.Run(context.Background(), &countingWriter{}, cfg); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	close(stop)
	<-done
}
