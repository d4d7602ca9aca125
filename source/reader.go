package source

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/framesend/framesend/pipeline"
)

// Reader is a stream source over raw bytes: a file, stdin, a pipe. Each Fill
// is one Read of up to a block.
type Reader struct {
	R         io.Reader
	interrupt interrupt
}

// deadliner is what a pollable file or connection offers to interrupt a
// blocked read.
type deadliner interface {
	SetReadDeadline(time.Time) error
}

// interrupt makes a source's blocked reads fail once its ctx is done, by
// setting a read deadline in the past. It registers once per ctx, not per
// read: a registration allocates, and a datagram source reads per datagram.
type interrupt struct {
	ctx context.Context
}

func (i *interrupt) watch(ctx context.Context, r any) {
	d, ok := r.(deadliner)
	if !ok || i.ctx == ctx {
		return
	}
	i.ctx = ctx
	context.AfterFunc(ctx, func() { d.SetReadDeadline(time.Unix(1, 0)) })
}

// Fill reads once into b. If R can take a read deadline (a pipe or terminal
// opened non-blocking), a done ctx interrupts a blocked read; otherwise Fill
// returns after the read.
func (r *Reader) Fill(ctx context.Context, b *pipeline.Block) error {
	r.interrupt.watch(ctx, r.R)
	n, err := r.R.Read(b.Spare())
	b.Commit(n)
	if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
