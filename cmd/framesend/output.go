package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"syscall"
)

// checkedWriter is every command's stdout. It keeps the first write error
// and fails every write after it, so that run reports output that could not
// be written instead of a success (a full disk, a closed pipe).
type checkedWriter struct {
	w   io.Writer
	err error
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// outputError is what run reports for a write to stdout that failed, or nil
// when every write went out or the reader closed the pipe (as head does: it
// wanted no more, so that ends a command cleanly).
func outputError(w io.Writer) error {
	cw, ok := w.(*checkedWriter)
	if !ok || cw.err == nil || stdoutClosed(cw.err) {
		return nil
	}
	err := cw.err
	var perr *fs.PathError
	if errors.As(err, &perr) {
		err = perr.Err
	}
	return failure{fmt.Errorf("could not write to stdout: %w; the output is incomplete", err)}
}

// stdoutClosed reports whether err is the reader of a pipe going away.
func stdoutClosed(err error) bool { return errors.Is(err, syscall.EPIPE) }
