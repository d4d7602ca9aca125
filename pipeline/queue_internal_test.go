package pipeline

import (
	"testing"
)

// one returns a block holding one datagram of n bytes, charged for frames
// of fs bytes aligned on datagrams.
func one(n, fs int) *Block {
	b := newBlock(BlockSize)
	b.reset(BlockSize)
	b.CommitDatagram(n)
	b.charge = b.chargeFor(fs, AlignDatagram)
	return b
}

func TestQueueMergesSmallBlocks(t *testing.T) {
	q := newQueue(DefaultQueueBytes)
	const n = 100_000
	var merged int
	var free []*Block
	for range n {
		var b *Block
		if len(free) > 0 {
			b, free = free[len(free)-1], free[:len(free)-1]
			b.reset(BlockSize)
			b.CommitDatagram(7)
			b.charge = 7
		} else {
			b = one(7, 7)
		}
		res, err := q.put(b, OverflowDropNewest, 7, AlignDatagram)
		if err != nil || res.dropped != 0 {
			t.Fatalf("put: dropped %d, err %v; want room for %d seven-byte datagrams", res.dropped, err, n)
		}
		merged += len(res.recycle)
		free = append(free, res.recycle...)
	}
	// A 64 KiB block takes 9,362 seven-byte datagrams.
	if got, want := q.len(), (n*7+BlockSize-1)/BlockSize; got != want {
		t.Errorf("%d blocks queued, want %d (full blocks)", got, want)
	}
	if merged != n-q.len() {
		t.Errorf("%d blocks came back for reuse, want %d", merged, n-q.len())
	}
	if q.bytes != n*7 || q.high != n*7 {
		t.Errorf("queued %d bytes (high %d), want %d", q.bytes, q.high, n*7)
	}
	// The datagrams come out in order, with their boundaries.
	total := 0
	for {
		b, ok, _ := q.tryTake()
		if !ok {
			break
		}
		for i, e := range b.ends {
			if int(e) != 7*(i+1) {
				t.Fatalf("datagram %d of a block ends at %d, want %d", i, e, 7*(i+1))
			}
		}
		total += b.Datagrams()
	}
	if total != n {
		t.Errorf("took %d datagrams, want %d", total, n)
	}
}

func TestQueueChargesFrames(t *testing.T) {
	// Room for 10 frames of 7 bytes: ten 3-byte datagrams fill it, since
	// each becomes a padded frame.
	q := newQueue(70)
	for k := range 12 {
		res, _ := q.put(one(3, 7), OverflowDropNewest, 7, AlignDatagram)
		if want := int64(0); k >= 10 {
			want = 1
			if res.dropped != want {
				t.Errorf("datagram %d: dropped %d, want %d", k, res.dropped, want)
			}
		} else if res.dropped != want {
			t.Errorf("datagram %d: dropped %d, want %d", k, res.dropped, want)
		}
	}
	if q.bytes != 70 {
		t.Errorf("charged %d bytes, want 70", q.bytes)
	}
}

func TestQueueDropNewestKeepsWhatFits(t *testing.T) {
	q := newQueue(35) // five 7-byte frames
	b := newBlock(BlockSize)
	b.reset(BlockSize)
	q.put(one(7, 7), OverflowDropNewest, 7, AlignDatagram)
	for range 8 {
		b.CommitDatagram(7)
	}
	b.charge = b.chargeFor(7, AlignDatagram)
	res, err := q.put(b, OverflowDropNewest, 7, AlignDatagram)
	if err != nil || res.dropped != 4 {
		t.Fatalf("dropped %d (err %v), want 4 of the 8: four fit beside the one queued", res.dropped, err)
	}
	if q.bytes != 35 {
		t.Errorf("queued %d bytes, want 35", q.bytes)
	}
}

func TestQueueDropOldestTrimsTheOldestBlock(t *testing.T) {
	q := newQueue(70)
	b := newBlock(BlockSize)
	b.reset(BlockSize)
	for k := range 10 {
		d := b.DatagramSpare()
		for i := range 7 {
			d[i] = byte(k)
		}
		b.CommitDatagram(7)
	}
	b.charge = b.chargeFor(7, AlignDatagram)
	q.put(b, OverflowDropOldest, 7, AlignDatagram)
	res, _ := q.put(one(7, 7), OverflowDropOldest, 7, AlignDatagram)
	if res.dropped != 1 {
		t.Fatalf("dropped %d, want only the oldest datagram", res.dropped)
	}
	h, _, _ := q.tryTake()
	if h.Datagrams() != 10 || h.data[0] != 1 || h.ends[0] != 7 {
		t.Errorf("head holds %d datagrams starting % x, want 10 starting with datagram 1", h.Datagrams(), h.data[:7])
	}
}

func TestQueueTakesABlockLargerThanItsRoom(t *testing.T) {
	q := newQueue(10)
	b := one(1000, 7)
	res, err := q.put(b, OverflowDropNewest, 7, AlignDatagram)
	if err != nil || res.dropped != 0 || q.len() != 1 {
		t.Fatalf("an empty queue refused a datagram larger than its room: dropped %d, err %v", res.dropped, err)
	}
	res, _ = q.put(one(7, 7), OverflowDropNewest, 7, AlignDatagram)
	if res.dropped != 1 {
		t.Errorf("dropped %d, want 1: the queue is over its room", res.dropped)
	}
}

// A block of many datagrams put on an empty queue whose room is smaller is
// cut to the room under a drop policy: the queue's bound holds even for
// the first block (a burst read in one batch).
func TestQueueBoundHoldsForTheFirstBlock(t *testing.T) {
	for _, c := range []struct {
		policy Overflow
		first  byte // the first datagram kept
	}{
		{OverflowDropNewest, 0},
		{OverflowDropOldest, 10},
	} {
		q := newQueue(70)
		b := newBlock(BlockSize)
		b.reset(BlockSize)
		for k := range 20 {
			copy(b.DatagramSpare(), []byte{byte(k), 1, 2, 3, 4, 5, 6})
			b.CommitDatagram(7)
		}
		b.charge = b.chargeFor(7, AlignDatagram)
		res, err := q.put(b, c.policy, 7, AlignDatagram)
		if err != nil {
			t.Fatal(err)
		}
		if res.dropped != 10 || q.high != 70 || q.bytes != 70 {
			t.Errorf("policy %v: dropped %d, queued %d bytes (high %d); want 10 dropped and 70 bytes", c.policy, res.dropped, q.bytes, q.high)
		}
		got, ok, _ := q.tryTake()
		if !ok || got.Datagrams() != 10 || got.data[0] != c.first || got.Len() != 70 {
			t.Errorf("policy %v: took %d datagrams, %d bytes, first %d; want 10, 70, %d", c.policy, got.Datagrams(), got.Len(), got.data[0], c.first)
		}
	}
	// Under OverflowBlock the first block goes through whole: its bytes
	// were read, and an empty queue cannot wait for room.
	q := newQueue(7)
	b := newBlock(BlockSize)
	b.reset(BlockSize)
	for range 3 {
		b.CommitDatagram(7)
	}
	b.charge = 21
	if res, err := q.put(b, OverflowBlock, 7, AlignDatagram); err != nil || res.dropped != 0 || q.bytes != 21 {
		t.Errorf("block policy: dropped %d, queued %d, err %v; want 0 dropped and 21 queued", res.dropped, q.bytes, err)
	}
}
