package pipeline

import (
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// Reader is a stream source over raw bytes: a file, stdin, a pipe. Each Fill
// is one Read of up to a block.
type Reader struct {
	R io.Reader
}

// deadliner is what a pollable file or connection offers to interrupt a
// blocked read.
type deadliner interface {
	SetReadDeadline(time.Time) error
}

// Fill reads once into b. If R can take a read deadline (a pipe or terminal
// opened non-blocking), a done ctx interrupts a blocked read; otherwise Fill
// returns after the read.
func (r *Reader) Fill(ctx context.Context, b *Block) error {
	if d, ok := r.R.(deadliner); ok {
		stop := context.AfterFunc(ctx, func() { d.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	n, err := r.R.Read(b.Spare())
	b.Commit(n)
	if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
