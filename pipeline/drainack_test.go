package pipeline_test

import (
	"context"
	"errors"
	"testing"

	"github.com/framesend/framesend/pipeline"
	"github.com/framesend/framesend/pipeline/pipelinetest"
)

// drainEvent is one thing a drainingWriter or an ackList saw: a drain
// (with the bytes written when it began) or an ack (of one datagram).
type drainEvent struct {
	drain    bool
	written  int // for a drain
	datagram int // for an ack
}

// drainingWriter is a Drainer that logs each Drain with the bytes written
// so far in one log with the acks, so a test can see which came first.
// Drain number failAt (from 1) fails with errDrain.
type drainingWriter struct {
	rec    pipelinetest.Recorder
	log    *[]drainEvent
	drains int
	failAt int
}

var errDrain = errors.New("drain failed")

func (w *drainingWriter) Write(p []byte) (int, error) { return w.rec.Write(p) }

func (w *drainingWriter) Drain() error {
	w.drains++
	*w.log = append(*w.log, drainEvent{drain: true, written: len(w.rec.Bytes())})
	if w.drains == w.failAt {
		return errDrain
	}
	return nil
}

// drainAckRun runs 60 datagrams of 1 to 9 bytes, each on frames of its own
// (4 bytes), in short writes, and returns the log and where each datagram
// ends in the stream.
func drainAckRun(t *testing.T, drainBeforeAck bool, failAt int) ([]drainEvent, []int, error) {
	t.Helper()
	var log []drainEvent
	var datagrams [][]byte
	var ends []int
	pos := 0
	for i := range 60 {
		d := make([]byte, 1+i%9)
		for k := range d {
			d[k] = byte(i)
		}
		datagrams = append(datagrams, d)
		pos += len(d)
		pos += (4 - pos%4) % 4 // padding to the frame
		ends = append(ends, pos)
	}
	w := &drainingWriter{log: &log, failAt: failAt}
	w.rec.MaxWrite = 5
	cfg := pipeline.DefaultConfig()
	cfg.FrameSize = 4
	cfg.Batch = 2
	cfg.Source = &ackList{datagrams: datagrams, block: 64, ack: func(i int) {
		log = append(log, drainEvent{datagram: i})
	}}
	cfg.Align = pipeline.AlignDatagram
	cfg.Overflow = pipeline.OverflowBlock
	cfg.DrainBeforeAck = drainBeforeAck
	_, err := pipeline.Run(context.Background(), w, cfg)
	return log, ends, err
}

// With DrainBeforeAck every ack comes after a drain that began once the
// whole datagram had been written; without it no drain comes before an ack
// (the one drain is Run's own, at the end).
func TestDrainBeforeAck(t *testing.T) {
	for _, on := range []bool{true, false} {
		log, ends, err := drainAckRun(t, on, 0)
		if err != nil {
			t.Fatalf("DrainBeforeAck %v: Run = %v", on, err)
		}
		acks, drains := 0, 0
		lastDrain := -1 // bytes written at the last drain so far
		for _, e := range log {
			if e.drain {
				drains++
				lastDrain = e.written
				continue
			}
			if e.datagram != acks {
				t.Fatalf("DrainBeforeAck %v: ack %d is for datagram %d", on, acks, e.datagram)
			}
			acks++
			if on && lastDrain < 0 {
				t.Fatalf("DrainBeforeAck true: datagram %d acked before any drain", e.datagram)
			}
			if on && lastDrain < ends[e.datagram] {
				t.Fatalf("DrainBeforeAck true: datagram %d (ends at byte %d) acked after a drain at %d bytes", e.datagram, ends[e.datagram], lastDrain)
			}
			if !on && drains > 0 {
				t.Fatalf("DrainBeforeAck false: %d drains before the ack of datagram %d, want none", drains, e.datagram)
			}
		}
		if acks != len(ends) {
			t.Errorf("DrainBeforeAck %v: %d acks, want %d", on, acks, len(ends))
		}
		// Batches of 2 frames: a drain per batch that ends a datagram,
		// not one per datagram and not only one at the end.
		if on && (drains < 2 || drains > len(ends)+1) {
			t.Errorf("DrainBeforeAck true: %d drains for %d datagrams", drains, len(ends))
		}
	}
}

// A drain that fails ends the run with its error, and what it did not
// drain is never acknowledged.
func TestDrainBeforeAckFailure(t *testing.T) {
	log, _, err := drainAckRun(t, true, 3)
	if !errors.Is(err, errDrain) {
		t.Fatalf("Run = %v, want the drain's error", err)
	}
	drains := 0
	for _, e := range log {
		if e.drain {
			drains++
			continue
		}
		if drains >= 3 {
			t.Fatalf("datagram %d acked after the failed drain", e.datagram)
		}
	}
	if drains != 3 {
		t.Errorf("%d drains, want 3: the run ends at the failed one", drains)
	}
}
