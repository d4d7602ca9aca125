package pipeline_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/framesend/framesend/pipeline"
)

// echo is a jumpered line in memory: what is written comes back on Read,
// with the byte at offset corrupt (if >= 0) inverted. Read returns 0 bytes
// after a short wait, as a serial port with a read timeout does.
type echo struct {
	ch      chan []byte
	written int
	corrupt int
}

func (e *echo) Write(p []byte) (int, error) {
	b := append([]byte(nil), p...)
	for i := range b {
		if e.written+i == e.corrupt {
			b[i] ^= 0xff
		}
	}
	e.written += len(p)
	e.ch <- b
	return len(p), nil
}

func (e *echo) Read(p []byte) (int, error) {
	select {
	case b := <-e.ch:
		return copy(p, b), nil // frames are smaller than p
	case <-time.After(10 * time.Millisecond):
		return 0, nil
	}
}

func TestLoopback(t *testing.T) {
	for _, c := range []struct {
		name    string
		corrupt int
		wantErr string
	}{
		{"clean", -1, ""},
		{"corrupt byte", 37, "loopback failed: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := &echo{ch: make(chan []byte, 64), corrupt: c.corrupt}
			res, err := pipeline.Loopback(context.Background(), e, 7, 200, 16, time.Second)
			if res.Sent != 200 || res.Back != 200 {
				t.Errorf("sent %d, back %d, want 200 and 200", res.Sent, res.Back)
			}
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("Loopback: %v, want no error", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("Loopback: %v, want an error with %q", err, c.wantErr)
			}
			if c.wantErr == "" && res.Check.Frames != 200 {
				t.Errorf("checked %d frames, want 200", res.Check.Frames)
			}
		})
	}
}
