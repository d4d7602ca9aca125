package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/framesend/framesend/pipeline"
)

// Reader is a stream source over raw bytes: a file, stdin, a pipe. Each Fill
// is one Read of up to a block.
type Reader struct {
	R         io.Reader
	Name      string // what errors call it, such as "stdin"
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

// Describe says that r is a byte stream.
func (r *Reader) Describe() pipeline.Traits { return pipeline.Traits{Name: r.Name} }

// stdinKind reads Options.Stdin.
var stdinKind = kind{
	name:   "stdin",
	usage:  "stdin",
	traits: (&Reader{}).Describe(),
	open: func(_ context.Context, s *Spec, o Options) (*Opened, error) {
		r, restore := pollable(o.Stdin)
		return opened(s, &Reader{R: r, Name: s.spec}, restore), nil
	},
}

// fileKind reads a file, or a FIFO as it is written.
var fileKind = kind{
	name:   "file",
	usage:  "file:PATH",
	traits: (&Reader{}).Describe(),
	parse: func(s *Spec) error {
		if s.Arg == "" {
			return specErrorf(s.spec, "file: needs a path, as in file:capture.bin")
		}
		return nil
	},
	open: func(ctx context.Context, s *Spec, _ Options) (*Opened, error) {
		f, err := openFile(ctx, s.Arg)
		if err != nil {
			return nil, err
		}
		op := opened(s, &Reader{R: f, Name: s.spec}, func() { f.Close() })
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			op.bytes = fi.Size()
		}
		return op, nil
	},
}

// openFile opens a file source. Opening a FIFO waits for a writer, so it is
// done aside, and a stop ends the wait (ErrStopped).
func openFile(ctx context.Context, path string) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	done := make(chan result, 1)
	go func() {
		f, err := os.Open(path)
		done <- result{f, err}
	}()
	var f *os.File
	var err error
	select {
	case r := <-done:
		f, err = r.f, r.err
	case <-ctx.Done():
		// The open goes on waiting for a writer; if one comes, close it.
		go func() {
			if r := <-done; r.f != nil {
				r.f.Close()
			}
		}()
		return nil, ErrStopped
	}
	switch {
	case err == nil:
		if fi, serr := f.Stat(); serr == nil && fi.IsDir() {
			f.Close()
			return nil, fmt.Errorf("open %s: is a directory: the file: and hex: sources take a file", path)
		}
		return f, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("open %s: no such file", path)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("open %s: permission denied: the file is not readable by this user", path)
	}
	return nil, err
}
