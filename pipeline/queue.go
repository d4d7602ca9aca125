package pipeline

import (
	"errors"
	"sync"
	"sync/atomic"
)

// queue is the bounded queue between the packager and the sender. It is
// bounded in bytes of frames (Config.QueueBytes), not in blocks: a block put
// on the queue is merged into the last queued block when both fit in one,
// so a datagram source that yields a few small datagrams at a time still
// packs them densely, and the blocks alive stay proportional to the bytes
// queued (two blocks side by side that could not merge hold more than a
// block's worth between them).
//
// The packager puts, the sender takes. A block the sender has taken is its
// own; a queued block is changed only under mu.
type queue struct {
	mu     sync.Mutex
	blocks []*Block // blocks[head:] are queued, oldest first
	head   int
	bytes  int // charged bytes queued
	limit  int
	high   int           // most charged bytes queued at once
	live   *atomic.Int64 // if not nil, kept equal to bytes (Live.Queued)
	closed bool
	ended  bool          // closed because the source ended (or the count was read), not failed or stopped
	ready  chan struct{} // 1-buffered: a block was queued, or the queue closed
	room   chan struct{} // 1-buffered: the sender took a block
	gone   chan struct{} // closed when the sender takes no more
}

func newQueue(limit int) *queue {
	return &queue{limit: limit, ready: make(chan struct{}, 1), room: make(chan struct{}, 1), gone: make(chan struct{})}
}

// errSenderGone is put's answer once the sender takes no more blocks.
var errSenderGone = errors.New("sender stopped")

// senderGone tells a put waiting for room that none will come.
func (q *queue) senderGone() { close(q.gone) }

// maxBlocks is about the most blocks the queue holds at once when its
// blocks have size bytes each.
func (q *queue) maxBlocks(size int) int { return 2*((q.limit+size-1)/size) + 1 }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Queued returns the charged bytes on the queue.
func (q *queue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// add queues b, merging it into the last block if it fits there, and
// returns b if it was merged (its bytes copied: the caller recycles it).
// The gauge it sets also shows what drops before it freed. Under mu.
func (q *queue) add(b *Block) (merged *Block) {
	q.bytes += b.charge
	q.high = max(q.high, q.bytes)
	q.gauge()
	if n := len(q.blocks); n > q.head {
		if tail := q.blocks[n-1]; tail.merge(b) {
			return b
		}
	}
	if q.head > 0 && len(q.blocks) == cap(q.blocks) {
		// Reuse the slice's front rather than let append grow it.
		k := copy(q.blocks, q.blocks[q.head:])
		clear(q.blocks[k:])
		q.blocks, q.head = q.blocks[:k], 0
	}
	q.blocks = append(q.blocks, b)
	return nil
}

// putResult is what happened to a block put on the queue.
type putResult struct {
	recycle []*Block // blocks done with: merged or dropped whole
	dropped int64    // datagrams dropped (blocks of stream bytes count one)
}

// put queues b under the overflow policy. A block always goes on an empty
// queue, whatever its size, so that a datagram larger than the queue's
// room still goes through. Under OverflowBlock put waits for room, even
// during a stop, since b's bytes were read and the sender still drains the
// queue; if the sender stops taking blocks first, put returns
// errSenderGone and b is not queued.
func (q *queue) put(b *Block, policy Overflow, fs int, align Align) (putResult, error) {
	var res putResult
	q.mu.Lock()
	for q.bytes+b.charge > q.limit {
		if q.len() == 0 {
			// An empty queue takes one block however large, so that a
			// datagram larger than the queue's room still goes through;
			// under a drop policy the block is first cut to the room,
			// keeping at least one datagram.
			if policy != OverflowBlock {
				res.dropped += b.trim(q.limit, policy, fs, align)
			}
			break
		}
		switch policy {
		case OverflowDropNewest:
			// Keep the datagrams that fit; drop the rest of b.
			k, kept := b.prefixFitting(q.limit-q.bytes, fs, align)
			if k == 0 {
				res.dropped += int64(max(1, b.Datagrams()))
				res.recycle = append(res.recycle, b)
				q.gauge()
				q.mu.Unlock()
				return res, nil
			}
			res.dropped += int64(b.Datagrams() - k)
			b.truncate(k)
			b.charge = kept
		case OverflowDropOldest:
			need := q.bytes + b.charge - q.limit
			h := q.blocks[q.head]
			if h.charge <= need || h.Datagrams() == 0 {
				res.dropped += int64(max(1, h.Datagrams()))
				res.recycle = append(res.recycle, h)
				q.bytes -= h.charge
				q.blocks[q.head] = nil
				q.head++
				continue
			}
			k, freed := h.prefixCovering(need, fs, align)
			h.dropFront(k)
			h.charge -= freed
			q.bytes -= freed
			res.dropped += int64(k)
			if h.Len() == 0 && h.Datagrams() == 0 {
				res.recycle = append(res.recycle, h)
				q.blocks[q.head] = nil
				q.head++
			}
		default:
			q.mu.Unlock()
			select {
			case <-q.room:
			case <-q.gone:
				return res, errSenderGone
			}
			q.mu.Lock()
		}
	}
	if m := q.add(b); m != nil {
		res.recycle = append(res.recycle, m)
	}
	q.mu.Unlock()
	signal(q.ready)
	return res, nil
}

// gauge shows the bytes queued in q.live. Under mu, so that the last
// change shown is the last made.
func (q *queue) gauge() {
	if q.live != nil {
		q.live.Store(int64(q.bytes))
	}
}

func (q *queue) len() int { return len(q.blocks) - q.head }

// take returns the oldest block, waiting for one; ok is false once the
// queue is closed and empty.
func (q *queue) take() (b *Block, ok bool) {
	for {
		if b, ok, closed := q.tryTake(); ok || closed {
			return b, ok
		}
		<-q.ready
	}
}

// tryTake returns the oldest block if there is one, without waiting.
func (q *queue) tryTake() (b *Block, ok, closed bool) {
	q.mu.Lock()
	if q.len() == 0 {
		closed = q.closed
		q.mu.Unlock()
		return nil, false, closed
	}
	b = q.blocks[q.head]
	q.blocks[q.head] = nil
	q.head++
	if q.head == len(q.blocks) {
		q.blocks, q.head = q.blocks[:0], 0
	}
	q.bytes -= b.charge
	q.gauge()
	q.mu.Unlock()
	signal(q.room)
	return b, true, false
}

// close marks the end of the packager's blocks; ended says the source
// ended (or gave all Count needs), rather than failed or was stopped.
func (q *queue) close(ended bool) {
	q.mu.Lock()
	q.closed, q.ended = true, ended
	q.mu.Unlock()
	signal(q.ready)
}

// sourceEnded reports whether the queue was closed because the source ended.
func (q *queue) sourceEnded() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ended
}

// rest takes every block still queued, once the sender has stopped.
func (q *queue) rest() []*Block {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.blocks[q.head:]
	q.blocks, q.head, q.bytes = nil, 0, 0
	q.gauge()
	return out
}

// datagramCharge is the queue room a datagram of n bytes takes: the bytes
// of the frames it becomes.
func datagramCharge(n, fs int, align Align) int {
	if align == AlignDatagram {
		return (n + fs - 1) / fs * fs
	}
	return n
}

// chargeFor computes the queue room b takes.
func (b *Block) chargeFor(fs int, align Align) int {
	if align != AlignDatagram || len(b.ends) == 0 {
		return len(b.data)
	}
	total, start := 0, 0
	for _, e := range b.ends {
		total += datagramCharge(int(e)-start, fs, align)
		start = int(e)
	}
	return total + len(b.data) - start
}

// merge appends o's datagrams to b if they fit in b's capacity, and
// reports whether it did. Stream bytes merge with stream bytes only, and
// acknowledged datagrams with acknowledged ones.
func (b *Block) merge(o *Block) bool {
	if len(b.data)+len(o.data) > cap(b.data) || len(b.ends)+len(o.ends) > MaxBlockDatagrams {
		return false
	}
	if (len(b.acks) > 0) != (len(o.acks) > 0) && len(b.ends) > 0 && len(o.ends) > 0 {
		return false
	}
	if (len(b.ends) > 0 || b.open) != (len(o.ends) > 0 || o.open) {
		// One is stream bytes, the other datagrams.
		return false
	}
	off := int32(len(b.data))
	b.data = append(b.data, o.data...)
	for _, e := range o.ends {
		b.ends = append(b.ends, e+off)
	}
	b.acks = append(b.acks, o.acks...)
	b.open = o.open
	b.charge += o.charge
	return true
}

// prefixFitting returns how many of b's first datagrams fit in room bytes
// of queue, and their charge. A block ending inside a datagram keeps none
// of it.
func (b *Block) prefixFitting(room, fs int, align Align) (k, charge int) {
	start := 0
	for i, e := range b.ends {
		c := datagramCharge(int(e)-start, fs, align)
		if charge+c > room {
			return i, charge
		}
		charge += c
		start = int(e)
	}
	return len(b.ends), charge
}

// prefixCovering returns how many of b's first datagrams must go to free
// need bytes of queue, and the bytes that frees; all of them if that is not
// enough.
func (b *Block) prefixCovering(need, fs int, align Align) (k, freed int) {
	start := 0
	for i, e := range b.ends {
		freed += datagramCharge(int(e)-start, fs, align)
		start = int(e)
		if freed >= need {
			return i + 1, freed
		}
	}
	return len(b.ends), freed
}

// trim cuts b, whose datagrams are all whole, to the datagrams that fit in
// room bytes of queue (at least one): its first ones under
// OverflowDropNewest, its last ones under OverflowDropOldest. It returns
// how many datagrams it dropped.
func (b *Block) trim(room int, policy Overflow, fs int, align Align) int64 {
	n := len(b.ends)
	if n <= 1 || b.open {
		return 0
	}
	if policy == OverflowDropNewest {
		k, _ := b.prefixFitting(room, fs, align)
		k = max(k, 1)
		b.truncate(k)
		b.charge = b.chargeFor(fs, align)
		return int64(n - k)
	}
	k, _ := b.prefixCovering(b.charge-room, fs, align)
	k = min(k, n-1)
	b.dropFront(k)
	b.charge = b.chargeFor(fs, align)
	return int64(k)
}

// truncate keeps b's first k datagrams (k ≥ 1).
func (b *Block) truncate(k int) {
	b.data = b.data[:b.ends[k-1]]
	b.ends = b.ends[:k]
	if len(b.acks) > k {
		clear(b.acks[k:])
		b.acks = b.acks[:k]
	}
	b.open = false
}

// dropFront removes b's first k datagrams.
func (b *Block) dropFront(k int) {
	cut := b.ends[k-1]
	n := copy(b.data, b.data[cut:])
	b.data = b.data[:n]
	m := copy(b.ends, b.ends[k:])
	b.ends = b.ends[:m]
	for i := range b.ends {
		b.ends[i] -= cut
	}
	if len(b.acks) > 0 {
		m := copy(b.acks, b.acks[k:])
		clear(b.acks[m:])
		b.acks = b.acks[:m]
	}
}
