package pipeline

import (
	"context"
	"errors"
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
// the source had not finished when it stopped (or failed) are counted in
// Stats.Cut; they never reach w. A stop is not an error: Run then returns a nil error.
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
	cfg, err := cfg.forSource()
	if err != nil {
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
	q.live = &cfg.Live.queued
	// Blocks come back through the pool: with the queue merging small
	// blocks, about twice its room in blocks, plus one being filled and one
	// being written, are ever in use, so memory stays flat.
	pool := make(chan *Block, q.maxBlocks(blockSize)+2)
	pk := newPackager(cfg, q, pool, blockSize)
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

	st := summarize(cfg, pk, sd, q)
	st.Elapsed = time.Since(start)
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

// summarize gathers the packager's and the sender's counts, once both have
// exited, and counts what is left on the queue as unsent.
func summarize(cfg Config, pk *packager, sd *sender, q *queue) Stats {
	st := sd.stats
	st.Datagrams = pk.datagrams
	st.Dropped = pk.dropped
	st.QueueHigh = q.high
	if r, ok := cfg.Source.(Refuser); ok {
		st.Refused = r.Refused()
	}
	if pk.kernel != nil {
		st.KernelDropped = pk.kernel.KernelDropped()
		cfg.Live.kernelDropped.Store(st.KernelDropped)
	}
	// Whatever the sender left on the queue, and a block the packager
	// could not queue, was never written: count it after what the sender
	// left, in the order it was read.
	u := &sd.unsent
	for _, b := range q.rest() {
		u.block(b, 0)
	}
	if pk.unqueued != nil {
		u.block(pk.unqueued, 0)
	}
	frames, cut := u.done()
	st.Unsent += frames
	st.Cut += cut
	if st.Unsent == 0 && st.Cut == 0 {
		st.UnsentReason = ""
	} else if st.UnsentReason == "" {
		st.UnsentReason = "stopped"
	}
	return st
}
