package pipeline

import (
	"context"
	"errors"
	"io"
	"math"
	"time"
)

// sender cuts queued bytes into whole frames and writes them.
type sender struct {
	w     io.Writer
	cfg   Config
	pool  chan *Block
	fs    int
	maxW  int // bytes per write call at most
	auto  bool
	stats Stats

	buf []byte // unwritten bytes: whole frames, then a partial one
	off int    // start of the unwritten bytes in buf

	// Acknowledgements for datagram sources that want them: each fires once
	// the stream is written up to its datagram's end. consumed is the stream
	// position of buf[off].
	consumed int64
	acks     ackQueue

	// What the sender took and did not write, counted as it is left.
	unsent unsent

	pacer      *pacer    // nil when unpaced
	firstWrite time.Time // the start of Stats.Active

	drainBy time.Time // set once ctx is done

	dl     deadlines   // the writer's deadlines
	shaper FrameShaper // nil unless the writer shapes every frame
}

func newSender(w io.Writer, cfg Config, pool chan *Block, blockSize int) *sender {
	maxW := cfg.writeFrames() * cfg.FrameSize
	auto := cfg.Batch == 0 && cfg.Rate == 0
	var shaper FrameShaper
	if sh, ok := w.(FrameShaper); ok && sh.ShapeFrames() {
		shaper, maxW, auto = sh, cfg.FrameSize, false // one frame per write
	}
	s := &sender{
		w: w, cfg: cfg, pool: pool, fs: cfg.FrameSize, maxW: maxW,
		auto: auto, shaper: shaper,
		// Room for a full write, a whole block and a frame of padding.
		buf:    make([]byte, 0, maxW+blockSize+cfg.FrameSize),
		unsent: unsent{fs: cfg.FrameSize, align: cfg.Align, partial: cfg.Partial},
		dl:     deadlines{timeout: cfg.WriteTimeout, byteTime: cfg.ByteTime},
	}
	if dw, ok := w.(DeadlineWriter); ok {
		s.dl.bound.dw = dw
	}
	return s
}

// errDrained stops the sender when the drain timeout runs out.
var errDrained = errors.New("drain timeout")

// run writes the queue's blocks as whole frames until the queue closes and
// is empty, the count is reached, the stop's drain runs out or a write
// fails. What it could not write is counted in s.stats.
func (s *sender) run(ctx context.Context, in *queue) error {
	if s.dl.bound.dw != nil {
		// A stop cuts a write that is waiting on the device at the end
		// of the drain timeout. The callback runs once, on its own
		// goroutine, when ctx is done, and returns at once; after the
		// sender returns it no longer runs.
		unregister := context.AfterFunc(ctx, func() { s.dl.bound.stopAt(time.Now().Add(s.cfg.DrainTimeout)) })
		defer unregister()
	}
	if s.pacer = newPacer(s.cfg.Rate, s.cfg.Logger); s.pacer != nil {
		defer s.pacer.stop()
	}
	err := s.loop(ctx, in)
	if s.cfg.Rate == 0 && !s.firstWrite.IsZero() {
		s.stats.Active = time.Since(s.firstWrite)
	}
	switch {
	case errors.Is(err, errStoppedReconnecting):
		s.stats.UnsentReason, err = "stopped while waiting for the device", nil
	case errors.Is(err, errDrained):
		s.stats.UnsentReason, err = "drain timeout", nil
	case errors.Is(err, errCountReached):
		s.stats.UnsentReason, err = "count reached", nil
	case err != nil:
		s.stats.UnsentReason = "the run failed"
	}
	s.leave()
	return err
}

// leave counts the frames and bytes left in the buffer as unsent, and
// empties it.
func (s *sender) leave() {
	s.unsent.framed(len(s.buf) - s.off)
	s.buf, s.off = s.buf[:0], 0
}

var errCountReached = errors.New("count reached")

// errStoppedReconnecting ends a sender stopped while it waited for its
// device to come back.
var errStoppedReconnecting = errors.New("stopped while waiting for the device")

func (s *sender) loop(ctx context.Context, in *queue) error {
	for {
		b, ok := in.take()
		if !ok {
			return s.finish(ctx, in.sourceEnded())
		}
		if err := s.take(ctx, b); err != nil {
			return err
		}
		// Coalesce what is already queued, without waiting for more.
		for s.auto && len(s.buf)-s.off < s.maxW {
			b, ok, _ := in.tryTake()
			if !ok {
				break
			}
			if err := s.take(ctx, b); err != nil {
				return err
			}
		}
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
}

// take appends b's bytes to the buffer, frames each datagram on its own
// under AlignDatagram, and recycles b. A short datagram under PartialError
// ends the run after the frames before it are written. Bytes past Count are
// not taken: they are counted as unsent, and their datagrams are never
// acknowledged.
func (s *sender) take(ctx context.Context, b *Block) error {
	defer s.recycle(b)
	s.compact(len(b.data) + s.fs)
	if s.cfg.Align != AlignDatagram || len(b.ends) == 0 {
		n := min(len(b.data), s.room())
		start := s.unwrittenEnd()
		s.buf = append(s.buf, b.data[:n]...)
		for i, fn := range b.acks {
			if int(b.ends[i]) <= n {
				s.acks.add(start+int64(b.ends[i]), fn)
			}
		}
		if n < len(b.data) {
			s.unsent.block(b, n)
		}
		return nil
	}
	start := 0
	for i, e := range b.ends {
		end := int(e)
		if room := s.room(); end-start > room || room == 0 {
			// The count ends in this datagram, or before it.
			s.buf = append(s.buf, b.data[start:start+max(room, 0)]...)
			s.unsent.block(b, start+max(room, 0))
			return nil
		}
		// Padding can make each datagram up to a frame longer: write
		// the whole frames out before the buffer would have to grow.
		if need := end - start + s.fs; cap(s.buf)-len(s.buf) < need {
			if err := s.flush(ctx); err != nil {
				// The run ends: what is in the buffer comes first.
				s.leave()
				s.unsent.block(b, start)
				return err
			}
			s.compact(need)
		}
		s.buf = append(s.buf, b.data[start:end]...)
		if rem := (len(s.buf) - s.off) % s.fs; rem != 0 {
			if err := s.short(rem); err != nil {
				s.unsent.block(b, end) // the datagrams after it
				if ferr := s.flush(ctx); ferr != nil {
					return ferr
				}
				return err
			}
		}
		if len(b.acks) > 0 {
			s.acks.add(s.unwrittenEnd(), b.acks[i])
		}
		start = end
	}
	// The first piece of a datagram that ends in a later block.
	n := min(len(b.data)-start, s.room())
	s.buf = append(s.buf, b.data[start:start+n]...)
	if start+n < len(b.data) {
		s.unsent.block(b, start+n)
	}
	return nil
}

// room is how many more bytes the count lets into the buffer: those of
// the frames it still wants, less those already waiting.
func (s *sender) room() int {
	if s.cfg.Count == 0 {
		return math.MaxInt
	}
	return int((s.cfg.Count-s.stats.Frames)*int64(s.fs)) - (len(s.buf) - s.off)
}

func (s *sender) recycle(b *Block) {
	select {
	case s.pool <- b:
	default:
	}
}

// compact moves the unwritten bytes to the front when fewer than need bytes
// of room are left.
func (s *sender) compact(need int) {
	if cap(s.buf)-len(s.buf) >= need {
		return
	}
	n := copy(s.buf, s.buf[s.off:])
	s.buf, s.off = s.buf[:n], 0
	if cap(s.buf)-len(s.buf) < need { // a datagram larger than planned for
		grown := make([]byte, n, n+need+s.maxW)
		copy(grown, s.buf)
		s.buf = grown
	}
}

// short applies the partial-frame policy to the rem bytes at the end of
// the buffer. Under PartialError the bytes are taken out and the error
// returned, so that the whole frames before them can still be written.
func (s *sender) short(rem int) error {
	switch s.cfg.Partial {
	case PartialPad:
		for range s.fs - rem {
			s.buf = append(s.buf, s.cfg.Pad)
		}
		s.stats.Padded++
		return nil
	case PartialDrop:
		s.buf = s.buf[:len(s.buf)-rem]
		s.stats.Short++
		return nil
	}
	s.buf = s.buf[:len(s.buf)-rem]
	s.stats.Short++
	return &PartialFrameError{Bytes: rem, FrameSize: s.fs}
}

// finish handles the end of the queue: the source ended, failed, or a
// stop.
func (s *sender) finish(ctx context.Context, ended bool) error {
	var perr error
	dropped := 0 // a short tail PartialDrop dropped
	if rem := (len(s.buf) - s.off) % s.fs; rem != 0 {
		if ctx.Err() != nil || !ended {
			// Stopped, or the source failed, in the middle of a frame:
			// the rest never came.
			s.buf = s.buf[:len(s.buf)-rem]
			s.stats.Cut += int64(rem)
			if ctx.Err() == nil {
				s.stats.UnsentReason = "the run failed"
			}
		} else if perr = s.short(rem); perr == nil && s.cfg.Partial == PartialDrop {
			dropped = rem
		}
	}
	if err := s.flush(ctx); err != nil {
		return err
	}
	if dropped > 0 {
		// The datagrams that end in the dropped tail are done with, as
		// under AlignDatagram: acknowledge them.
		s.consumed += int64(dropped)
		return s.fireAcks()
	}
	return perr
}

// flush writes every whole frame in the buffer, at most maxW bytes per
// write call, on the pacing schedule.
func (s *sender) flush(ctx context.Context) error {
	for {
		whole := (len(s.buf) - s.off) / s.fs * s.fs
		if whole == 0 {
			// A datagram wholly in a dropped short frame may be due.
			return s.fireAcks()
		}
		n := min(whole, s.maxW)
		if s.cfg.Count > 0 {
			left := (s.cfg.Count - s.stats.Frames) * int64(s.fs)
			if left <= 0 {
				return errCountReached
			}
			n = int(min(int64(n), left))
		}
		if err := s.stopping(ctx); err != nil {
			return err
		}
		if s.pacer != nil {
			err := s.pacer.wait(ctx, s.stats.Frames, s.drainBy, func() (time.Time, error) {
				err := s.stopping(ctx)
				return s.drainBy, err
			})
			if err != nil {
				return err
			}
		}
		if s.firstWrite.IsZero() {
			s.firstWrite = time.Now()
		}
		framesBefore := s.stats.Frames
		if s.pacer != nil {
			// A paced write's slot ends one interval per frame after it began.
			s.stats.Active = time.Since(s.firstWrite) + s.pacer.span(int64(n/s.fs))
		}
		if s.shaper != nil {
			if err := s.shape(ctx, "break", s.shaper.BeforeFrame); err != nil {
				return err
			}
		}
		err := s.write(ctx, s.buf[s.off:s.off+n])
		if err == nil && s.shaper != nil {
			err = s.shape(ctx, "drain", s.shaper.AfterFrame)
		}
		advanced := int(s.stats.Frames-framesBefore) * s.fs
		s.off += advanced
		s.consumed += int64(advanced)
		if err != nil {
			return err
		}
		if err := s.fireAcks(); err != nil {
			return err
		}
		if s.cfg.Count > 0 && s.stats.Frames >= s.cfg.Count {
			return errCountReached
		}
	}
}

// stopping notes a stop and reports errDrained once its drain time is over.
func (s *sender) stopping(ctx context.Context) error {
	if s.drainBy.IsZero() {
		if ctx.Err() == nil {
			return nil
		}
		s.drainBy = s.dl.bound.stopAt(time.Now().Add(s.cfg.DrainTimeout))
	}
	if !time.Now().Before(s.drainBy) {
		return errDrained
	}
	return nil
}
