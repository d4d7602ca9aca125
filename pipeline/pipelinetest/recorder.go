// Package pipelinetest has in-memory writers for testing framesend's
// pipeline: a Recorder that copies every write and can be told to write
// short or to fail.
package pipelinetest

import (
	"bytes"
	"sync"
)

// Recorder is an io.Writer that keeps a copy of everything written and the
// size of each write call. It is safe for concurrent use.
type Recorder struct {
	// MaxWrite, if > 0, makes each Write take at most that many bytes and
	// return a short count with a nil error, as a serial port may.
	MaxWrite int
	// FailAfter, if > 0, makes Write fail with Err once that many bytes
	// have been taken (the write that crosses it is short).
	FailAfter int
	Err       error
	// OnWrite, if set, is called after each write with the total so far.
	OnWrite func(total int)

	mu     sync.Mutex
	buf    bytes.Buffer
	writes []int
}

// Write records what it takes of p. It never keeps p.
func (r *Recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	n := len(p)
	if r.MaxWrite > 0 {
		n = min(n, r.MaxWrite)
	}
	var err error
	if r.FailAfter > 0 && r.buf.Len()+n >= r.FailAfter {
		n = r.FailAfter - r.buf.Len()
		err = r.Err
	}
	r.buf.Write(p[:n])
	r.writes = append(r.writes, n)
	total := r.buf.Len()
	r.mu.Unlock()
	if r.OnWrite != nil {
		r.OnWrite(total)
	}
	return n, err
}

// Bytes returns a copy of everything written.
func (r *Recorder) Bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

// Writes returns the size of each write call, in order.
func (r *Recorder) Writes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.writes...)
}
