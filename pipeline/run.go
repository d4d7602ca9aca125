package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Drainer is implemented by writers that can wait until written bytes have
// left (a serial port's tcdrain). Run drains the writer before it returns.
type Drainer interface {
	Drain() error
}

// Reconnecter is implemented by writers that can recover from a failed
// write, such as a serial port whose device was unplugged and comes back.
// Reconnect blocks until the writer can take writes again (nil), or returns
// the error that ends the run: err itself when it is not one to recover
// from, or ctx's error when ctx is done while it waits.
type Reconnecter interface {
	Reconnect(ctx context.Context, err error) error
}

// ErrNoProgress ends a run whose writer keeps accepting zero bytes without
// an error.
var ErrNoProgress = errors.New("writer accepts no data")

// Run sends cfg.Source's data to w as whole frames and returns what it did.
// It starts the packager and the sender goroutines and returns only when
// both have exited, with the first error.
//
// When ctx is done the packager stops taking data from the source; the
// frames already queued are still sent, for up to cfg.DrainTimeout, and
// whatever is left after that is counted in Stats.Unsent. Bytes of a frame
// the source had not finished when it stopped are counted in Stats.Cut; they
// never reach w. A stop is not an error: Run then returns a nil error.
//
// A writer with deadlines (DeadlineWriter, DeadlineDrainer) bounds every
// write and drain by cfg.WriteTimeout, and a stop by cfg.DrainTimeout: a
// device that stops taking data ends the run with a *StallError. A write to
// a writer without deadlines cannot be interrupted, so one that blocks for
// ever holds Run.
func Run(ctx context.Context, w io.Writer, cfg Config) (Stats, error) {
	if cfg.Source == nil {
		cfg.Source = &Counter{}
	}
	if err := cfg.Validate(); err != nil {
		return Stats{}, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Live == nil {
		cfg.Live = &Live{}
	}
	blockSize := BlockSize
	if bs, ok := cfg.Source.(BlockSizer); ok {
		blockSize = max(blockSize, bs.BlockSize())
	}

	start := time.Now()
	q := newQueue(cfg.QueueBytes)
	// Blocks come back through the pool: with the queue merging small
	// blocks, about twice its room in blocks, plus one being filled and one
	// being written, are ever in use, so memory stays flat.
	pool := make(chan *Block, q.maxBlocks(blockSize)+2)
	pk := &packager{cfg: cfg, q: q, pool: pool, blockSize: blockSize}
	if kd, ok := cfg.Source.(KernelDropper); ok {
		pk.kernel = kd
	}
	sd := newSender(w, cfg, pool, blockSize)

	// The packager stops on the caller's stop and also when the sender is
	// done (count reached, or a write failed).
	pctx, stopPackager := context.WithCancel(ctx)
	defer stopPackager()
	var wg sync.WaitGroup
	var perr, serr error
	wg.Go(func() { perr = pk.run(pctx) })
	wg.Go(func() {
		serr = sd.run(ctx, q)
		q.senderGone()
		stopPackager()
	})
	wg.Wait()

	st := sd.stats
	st.Datagrams = pk.datagrams
	st.Dropped = pk.dropped
	st.QueueHigh = q.high
	st.Unsent += pk.unsent
	st.Cut += pk.cut
	if r, ok := cfg.Source.(Refuser); ok {
		st.Refused = r.Refused()
	}
	if pk.kernel != nil {
		st.KernelDropped = pk.kernel.KernelDropped()
		cfg.Live.kernelDropped.Store(st.KernelDropped)
	}
	// Whatever the sender left on the queue was never written.
	for _, b := range q.rest() {
		st.Unsent += int64(len(b.data) / cfg.FrameSize)
		st.Cut += int64(len(b.data) % cfg.FrameSize)
	}
	st.Elapsed = time.Since(start)
	if st.Unsent == 0 && st.Cut == 0 {
		st.UnsentReason = ""
	} else if st.UnsentReason == "" {
		st.UnsentReason = "stopped"
	}

	if serr == nil {
		serr = sd.drain()
	}
	if serr != nil {
		return st, serr
	}
	// The packager's context errors are stops, not failures.
	if perr != nil && !errors.Is(perr, context.Canceled) && !errors.Is(perr, context.DeadlineExceeded) && !errors.Is(perr, errSenderGone) {
		return st, perr
	}
	return st, nil
}

// packager reads the source into blocks and queues them.
type packager struct {
	cfg       Config
	q         *queue
	pool      chan *Block
	blockSize int
	kernel    KernelDropper // the source's count of datagrams the kernel dropped, if it keeps one

	// Written by the packager goroutine, read after it exits.
	datagrams int64
	dropped   int64
	unsent    int64 // frames read but never queued: a stop came first
	cut       int64
	warn      warnLimit // for the queue-full warning
	unwarned  int64
}

func (p *packager) run(ctx context.Context) error {
	defer p.q.close()
	fs := p.cfg.FrameSize
	// Stream blocks hold whole frames when the source fills them, so
	// the sender rarely carries a partial frame from one block to the next.
	streamLimit := p.blockSize / fs * fs
	if p.cfg.Rate > 0 {
		// Paced, a block holds about 10 ms of frames, so that the source is
		// read in small steps.
		streamLimit = min(streamLimit, max(1, int(p.cfg.Rate/100))*fs)
	}
	// Under AlignStream, Count frames are exactly Count*fs bytes: take no
	// more from the source than that.
	limited := p.cfg.Count > 0 && p.cfg.Align == AlignStream
	remaining := p.cfg.Count * int64(fs)
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b := p.get()
		limit := streamLimit
		if limited && int64(limit) > remaining {
			limit = int(remaining)
		}
		// A datagram source may overshoot the limit with one datagram;
		// the sender stops at Count.
		b.reset(limit)
		err := p.cfg.Source.Fill(ctx, b)
		remaining -= int64(b.Len())
		if p.kernel != nil {
			p.cfg.Live.kernelDropped.Store(p.kernel.KernelDropped())
		}
		if b.Len() > 0 || b.Datagrams() > 0 {
			p.datagrams += int64(b.Datagrams())
			if qerr := p.send(ctx, b); qerr != nil {
				return qerr
			}
		} else {
			p.put(b)
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		case limited && remaining <= 0:
			return nil
		}
	}
}

func (p *packager) get() *Block {
	select {
	case b := <-p.pool:
		return b
	default:
		return newBlock(p.blockSize)
	}
}

func (p *packager) put(b *Block) {
	select {
	case p.pool <- b:
	default:
	}
}

// errSplitDatagram ends a run whose source gave a datagram in pieces under
// a policy that may drop a piece.
var errSplitDatagram = errors.New("a datagram larger than a queue block needs --overflow block")

// send queues b under the overflow policy. A block it could not queue
// because the sender stopped is counted as unsent: its bytes were read
// from the source and are never written.
func (p *packager) send(ctx context.Context, b *Block) error {
	if b.open && p.cfg.Overflow != OverflowBlock {
		return errSplitDatagram
	}
	b.charge = b.chargeFor(p.cfg.FrameSize, p.cfg.Align)
	res, err := p.q.put(b, p.cfg.Overflow, p.cfg.FrameSize, p.cfg.Align)
	if err != nil {
		p.unsent += int64(b.Len() / p.cfg.FrameSize)
		p.cut += int64(b.Len() % p.cfg.FrameSize)
		p.put(b)
		return err
	}
	if res.dropped > 0 {
		p.drop(res.dropped)
	}
	for _, r := range res.recycle {
		p.put(r)
	}
	p.cfg.Live.queued.Store(int64(p.q.queued()))
	return nil
}

// drop counts n datagrams lost to overflow and warns at most once a second.
func (p *packager) drop(n int64) {
	p.dropped += n
	p.unwarned += n
	p.cfg.Live.dropped.Add(n)
	if p.warn.allow() {
		p.cfg.Logger.Warn("queue full: dropping datagrams", "dropped", p.unwarned, "total_dropped", p.dropped, "policy", string(p.cfg.Overflow))
		p.unwarned = 0
	}
}

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
	acks     []pendingAck
	ackHead  int

	// pacing, and the bounds of Stats.Active
	start      time.Time
	firstWrite time.Time
	precise    bool // finish each wait with sleepPrecisely
	timer      *time.Timer

	drainBy time.Time // set once ctx is done

	bound     bound       // the writer's deadlines
	rearmAt   time.Time   // arm keeps the deadline until then
	callStart time.Time   // when the write call in progress began
	shaper    FrameShaper // nil unless the writer shapes every frame
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
		buf: make([]byte, 0, maxW+blockSize+cfg.FrameSize),
	}
	if dw, ok := w.(DeadlineWriter); ok {
		s.bound.dw = dw
	}
	return s
}

type pendingAck struct {
	end int64 // stream position just past the datagram (and its padding)
	fn  func()
}

// unwrittenEnd is the stream position just past the last byte in buf.
func (s *sender) unwrittenEnd() int64 { return s.consumed + int64(len(s.buf)-s.off) }

// fireAcks acknowledges every datagram now written whole, draining the
// writer first if the config asks for it.
func (s *sender) fireAcks() error {
	if s.ackHead == len(s.acks) || s.acks[s.ackHead].end > s.consumed {
		return nil
	}
	if s.cfg.DrainBeforeAck {
		if err := s.drain(); err != nil {
			return err
		}
	}
	for s.ackHead < len(s.acks) && s.acks[s.ackHead].end <= s.consumed {
		s.acks[s.ackHead].fn()
		s.acks[s.ackHead] = pendingAck{}
		s.ackHead++
	}
	if s.ackHead == len(s.acks) {
		s.acks, s.ackHead = s.acks[:0], 0
	}
	return nil
}

// errDrained stops the sender when the drain timeout runs out.
var errDrained = errors.New("drain timeout")

func (s *sender) run(ctx context.Context, in *queue) error {
	if s.bound.dw != nil {
		// A stop cuts a write that is waiting on the device at the end
		// of the drain timeout. The callback runs once, on its own
		// goroutine, when ctx is done, and returns at once; after the
		// sender returns it no longer runs.
		unregister := context.AfterFunc(ctx, func() { s.bound.stopAt(time.Now().Add(s.cfg.DrainTimeout)) })
		defer unregister()
	}
	if s.cfg.Rate > 0 {
		s.timer = time.NewTimer(time.Hour)
		defer s.timer.Stop()
		s.precise = preciseSleep
		if s.precise {
			preparePreciseThread()
		}
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
		s.stats.UnsentReason, err = "--count reached", nil
	case err != nil:
		s.stats.UnsentReason = "the run failed"
	}
	// Frames and bytes left in the buffer were never written.
	left := len(s.buf) - s.off
	s.stats.Unsent += int64(left / s.fs)
	s.stats.Cut += int64(left % s.fs)
	return err
}

var errCountReached = errors.New("count reached")

// errStoppedReconnecting ends a sender stopped while it waited for its
// device to come back.
var errStoppedReconnecting = errors.New("stopped while waiting for the device")

func (s *sender) loop(ctx context.Context, in *queue) error {
	for {
		b, ok := in.take()
		if !ok {
			return s.finish(ctx)
		}
		if err := s.take(ctx, b); err != nil {
			return err
		}
		s.cfg.Live.queued.Store(int64(in.queued()))
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
// ends the run after the frames before it are written.
func (s *sender) take(ctx context.Context, b *Block) error {
	s.compact(len(b.data) + s.fs)
	var err error
	if s.cfg.Align == AlignDatagram && len(b.ends) > 0 {
		start := 0
		for i, e := range b.ends {
			end := int(e)
			// Padding can make each datagram up to a frame longer: write
			// the whole frames out before the buffer would have to grow.
			if need := end - start + s.fs; cap(s.buf)-len(s.buf) < need {
				if ferr := s.flush(ctx); ferr != nil {
					s.notTaken(b, start)
					s.recycle(b)
					return ferr
				}
				s.compact(need)
			}
			s.buf = append(s.buf, b.data[start:end]...)
			if rem := (len(s.buf) - s.off) % s.fs; rem != 0 {
				if err = s.short(rem); err != nil {
					s.stats.Cut += int64(len(b.data) - end) // the datagrams after it
					break
				}
			}
			if len(b.acks) > 0 {
				s.acks = append(s.acks, pendingAck{s.unwrittenEnd(), b.acks[i]})
			}
			start = end
		}
		if err == nil {
			// The first piece of a datagram that ends in a later block.
			s.buf = append(s.buf, b.data[start:]...)
		}
	} else {
		start := s.unwrittenEnd()
		s.buf = append(s.buf, b.data...)
		for i, fn := range b.acks {
			s.acks = append(s.acks, pendingAck{start + int64(b.ends[i]), fn})
		}
	}
	s.recycle(b)
	if err != nil {
		if ferr := s.flush(ctx); ferr != nil {
			return ferr
		}
	}
	return err
}

func (s *sender) recycle(b *Block) {
	select {
	case s.pool <- b:
	default:
	}
}

// notTaken counts b's datagrams from byte from on as unsent: the run
// ended before they were taken.
func (s *sender) notTaken(b *Block, from int) {
	start := from
	for _, e := range b.ends {
		if int(e) <= from {
			continue
		}
		s.stats.Unsent += int64(datagramCharge(int(e)-start, s.fs, AlignDatagram) / s.fs)
		start = int(e)
	}
	s.stats.Cut += int64(len(b.data) - start)
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
	return fmt.Errorf("%w: the data ended %d bytes into a %d-byte frame (use --partial pad or drop to send it anyway)", ErrPartialFrame, rem, s.fs)
}

// finish handles the end of the queue: the source ended, or a stop.
func (s *sender) finish(ctx context.Context) error {
	var perr error
	if rem := (len(s.buf) - s.off) % s.fs; rem != 0 {
		if ctx.Err() != nil {
			// Stopped in the middle of a frame: the rest never came.
			s.buf = s.buf[:len(s.buf)-rem]
			s.stats.Cut += int64(rem)
		} else {
			perr = s.short(rem)
		}
	}
	if err := s.flush(ctx); err != nil {
		return err
	}
	return perr
}

// flush writes every whole frame in the buffer, at most maxW bytes per
// write call, on the pacing schedule.
func (s *sender) flush(ctx context.Context) error {
	for {
		whole := (len(s.buf) - s.off) / s.fs * s.fs
		if whole == 0 {
			return nil
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
		if s.cfg.Rate > 0 {
			if err := s.pace(ctx); err != nil {
				return err
			}
		}
		if s.firstWrite.IsZero() {
			s.firstWrite = time.Now()
		}
		framesBefore := s.stats.Frames
		if s.cfg.Rate > 0 {
			// A paced write's slot ends one interval per frame after it began.
			s.stats.Active = time.Since(s.firstWrite) + time.Duration(float64(n/s.fs)/s.cfg.Rate*float64(time.Second))
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
		s.drainBy = s.bound.stopAt(time.Now().Add(s.cfg.DrainTimeout))
	}
	if !time.Now().Before(s.drainBy) {
		return errDrained
	}
	return nil
}

// lateLimit is how far behind its schedule a paced sender may fall before it
// starts the schedule afresh instead of catching up.
const lateLimit = 100 * time.Millisecond

// pace waits until the next frame is due: frame k is due at start + k/rate,
// so scheduling delays do not accumulate into a slower rate. A late wake-up
// is caught up by sending at once; a delay longer than lateLimit (a stalled
// device) re-anchors the schedule, so the device is not hit by a burst.
func (s *sender) pace(ctx context.Context) error {
	now := time.Now()
	if s.start.IsZero() {
		s.start = now
		return nil
	}
	due := s.start.Add(time.Duration(float64(s.stats.Frames) / s.cfg.Rate * float64(time.Second)))
	wait := due.Sub(now)
	if wait <= 0 {
		if -wait > lateLimit {
			s.cfg.Logger.Debug("pacing: behind schedule, re-anchoring", "late", -wait)
			s.start = now.Add(-time.Duration(float64(s.stats.Frames) / s.cfg.Rate * float64(time.Second)))
		}
		return nil
	}
	if !s.drainBy.IsZero() && due.After(s.drainBy) {
		return errDrained
	}
	// The runtime's timers wake up to a millisecond or two late, so a
	// timer, which a stop can interrupt, covers the wait only up to
	// timerSlack before the frame is due, and a precise sleep the rest.
	coarse := wait
	if s.precise {
		coarse -= timerSlack
	}
	if coarse > 0 {
		s.timer.Reset(coarse)
		select {
		case <-s.timer.C:
		case <-ctx.Done():
			if err := s.stopping(ctx); err != nil {
				return err
			}
			if due.After(s.drainBy) {
				return errDrained
			}
			<-s.timer.C
		}
	}
	if s.precise {
		sleepPrecisely(time.Until(due))
	}
	return nil
}

// maxZeroWrites bounds how often a writer may accept nothing without an
// error before WriteFull gives up on it.
const maxZeroWrites = 1000

// WriteFull writes all of p to w, looping on short writes: a serial port may
// take part of a write with a nil error. It returns how many bytes were
// written and how many write calls it made.
func WriteFull(w io.Writer, p []byte) (written, calls int, err error) {
	return writeFull(w, p, nil)
}

// writeGuard bounds each write call of writeFull: arm sets the deadline for
// the rest bytes left, retry says whether a write call that took n bytes
// before its error may go on.
type writeGuard interface {
	arm(rest int) error
	retry(n int, err error) bool
}

// writeFull is WriteFull bounding each write call by g, if not nil.
func writeFull(w io.Writer, p []byte, g writeGuard) (written, calls int, err error) {
	zeros := 0
	for written < len(p) {
		if g != nil {
			if err := g.arm(len(p) - written); err != nil {
				return written, calls, err
			}
		}
		n, err := w.Write(p[written:])
		calls++
		written += n
		if err != nil {
			if g != nil && g.retry(n, err) {
				continue // slow, not stalled: a new deadline for the rest
			}
			return written, calls, err
		}
		if n == 0 {
			if zeros++; zeros >= maxZeroWrites {
				return written, calls, ErrNoProgress
			}
		}
	}
	return written, calls, nil
}

// write writes p, whole frames. If the writer fails and can reconnect, the
// frames it took whole are counted and, once it is back, writing resumes at
// the start of the frame whose write failed.
func (s *sender) write(ctx context.Context, p []byte) error {
	var g writeGuard
	if s.bound.dw != nil {
		g = s
	}
	for {
		n, calls, err := writeFull(s.w, p, g)
		err = s.stalled("write", err)
		s.stats.Writes += int64(calls)
		done := n / s.fs * s.fs
		s.count(done)
		if err == nil {
			return nil
		}
		rc, ok := s.w.(Reconnecter)
		if !ok {
			s.stats.Bytes += int64(n - done) // a partial frame went out
			return err
		}
		if rerr := rc.Reconnect(ctx, err); rerr != nil {
			if ctx.Err() != nil && errors.Is(rerr, ctx.Err()) {
				return errStoppedReconnecting // a stop, not a failure
			}
			return rerr
		}
		s.stats.Reconnects++
		s.cfg.Live.reconnects.Add(1)
		if n > done {
			s.stats.Resent++ // part of this frame reached the old device
		}
		p = p[done:]
	}
}

func (s *sender) count(n int) {
	frames := int64(n / s.fs)
	s.stats.Frames += frames
	s.stats.Bytes += int64(n)
	s.cfg.Live.frames.Add(frames)
	s.cfg.Live.bytes.Add(int64(n))
}
