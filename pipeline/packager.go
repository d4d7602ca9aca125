package pipeline

import (
	"context"
	"errors"
	"io"

	"github.com/framesend/framesend/internal/warnlimit"
)

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
	unqueued  *Block          // read but never queued: the sender stopped first
	warn      warnlimit.Limit // for the queue-full warning
	unwarned  int64
	open      int // bytes of a datagram that goes on in the next block
}

func newPackager(cfg Config, q *queue, pool chan *Block, blockSize int) *packager {
	p := &packager{cfg: cfg, q: q, pool: pool, blockSize: blockSize}
	if kd, ok := cfg.Source.(KernelDropper); ok {
		p.kernel = kd
	}
	return p
}

// run reads the source until it ends, ctx is done or the sender stops
// taking blocks, and closes the queue when it returns.
func (p *packager) run(ctx context.Context) (err error) {
	// A source that failed did not end: the sender must not frame its
	// last bytes as a short tail.
	defer func() { p.q.close(err == nil) }()
	fs := p.cfg.FrameSize
	// Stream blocks hold whole frames when the source fills them, so
	// the sender rarely carries a partial frame from one block to the next.
	streamLimit := p.blockSize / fs * fs
	if p.cfg.Rate > 0 {
		// Paced, a block holds about 10 ms of frames, so that the source is
		// read in small steps.
		streamLimit = min(streamLimit, max(1, int(p.cfg.Rate/100))*fs)
	}
	// Take no more from the source than Count frames need. Under
	// AlignStream they are exactly Count*fs bytes. Under AlignDatagram,
	// when the queue drops nothing, the datagrams queued make a known
	// number of frames (see Frames), and one Fill needs no more
	// than the bytes of the frames still wanted, unless short tails are
	// dropped. A datagram source may still overshoot with what one Fill
	// adds: the sender stops at Count, and counts the rest as unsent.
	limited := p.cfg.Count > 0 && p.cfg.Align == AlignStream
	remaining := p.cfg.Count * int64(fs)
	counted := p.cfg.Count > 0 && p.cfg.Align == AlignDatagram && p.cfg.Overflow == OverflowBlock
	framesLeft := p.cfg.Count
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b := p.get()
		limit := streamLimit
		if limited && int64(limit) > remaining {
			limit = int(remaining)
		}
		if counted && p.cfg.Partial != PartialDrop {
			limit = int(min(int64(limit), framesLeft*int64(fs)))
		}
		b.reset(limit)
		err := p.cfg.Source.Fill(ctx, b)
		remaining -= int64(b.Len())
		if counted {
			framesLeft -= p.frames(b)
		}
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
		case limited && remaining <= 0, counted && framesLeft <= 0:
			return nil
		}
	}
}

// frames returns how many frames b's datagrams make under AlignDatagram,
// counting a datagram in pieces, whole, in the block of its last piece.
func (p *packager) frames(b *Block) int64 {
	if len(b.ends) == 0 && !b.open {
		return 0 // stream bytes, which the sender frames as a stream
	}
	if p.open == 0 && !b.open && p.cfg.Partial != PartialDrop {
		// Whole datagrams: their frames are their charge on the queue (a
		// short datagram under PartialError, counted a frame more, ends
		// the run anyway).
		b.charge = b.chargeFor(p.cfg.FrameSize, p.cfg.Align)
		return int64(b.charge / p.cfg.FrameSize)
	}
	n, start := int64(0), 0
	for _, e := range b.ends {
		n += Frames(int64(p.open+int(e)-start), p.cfg.FrameSize, p.cfg.Partial)
		p.open, start = 0, int(e)
	}
	p.open += b.Len() - start
	return n
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

// splitDatagram is the error that ends a run whose source gave a datagram
// in pieces (one larger than a queue block) under an overflow policy that
// may drop a piece: only OverflowBlock keeps such a datagram whole.
func splitDatagram(policy Overflow, blockSize int) error {
	return configError("Overflow", string(policy), "may drop part of a datagram larger than a queue block (%d bytes): use %s", blockSize, OverflowBlock)
}

// send queues b under the overflow policy. A block it could not queue
// because the sender stopped is counted as unsent: its bytes were read
// from the source and are never written.
func (p *packager) send(ctx context.Context, b *Block) error {
	if b.open && p.cfg.Overflow != OverflowBlock {
		return splitDatagram(p.cfg.Overflow, p.blockSize)
	}
	if b.charge == 0 {
		b.charge = b.chargeFor(p.cfg.FrameSize, p.cfg.Align)
	}
	res, err := p.q.put(b, p.cfg.Overflow, p.cfg.FrameSize, p.cfg.Align)
	if err != nil {
		p.unqueued = b // counted as unsent once the sender is done
		return err
	}
	if res.dropped > 0 {
		p.drop(res.dropped)
	}
	for _, r := range res.recycle {
		p.put(r)
	}
	return nil
}

// drop counts n datagrams lost to overflow and warns at most once a second.
func (p *packager) drop(n int64) {
	p.dropped += n
	p.unwarned += n
	p.cfg.Live.dropped.Add(n)
	if p.warn.Allow() {
		p.cfg.Logger.Warn("queue full: dropping datagrams", "dropped", p.unwarned, "total_dropped", p.dropped, "policy", string(p.cfg.Overflow))
		p.unwarned = 0
	}
}
