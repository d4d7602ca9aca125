package pipeline

import "context"

// Source produces the datagrams a run sends. A Source is used by one
// goroutine, the packager.
type Source interface {
	// Fill adds data to b: raw bytes for a stream source, whole datagrams
	// for a datagram source. It blocks until it has added something, the
	// source ends (io.EOF, possibly with data added), or ctx is done. It
	// must not add more than b.Room() bytes.
	Fill(ctx context.Context, b *Block) error
}

// Refuser is implemented by sources that refuse some of their input (a
// datagram from a sender not allowed, or too large to queue); Run reports the
// count in Stats.Refused.
type Refuser interface {
	Refused() int64
}

// KernelDropper is implemented by sources that learn how many datagrams
// the kernel dropped before they could read them (a socket whose receive
// buffer was full); Run reports the count in Stats.KernelDropped.
type KernelDropper interface {
	// KernelDropped returns the count so far. It is safe to call from any
	// goroutine.
	KernelDropped() int64
}

// BlockSizer is implemented by sources whose datagrams can be larger than
// BlockSize, so that the packager allocates blocks big enough.
type BlockSizer interface {
	BlockSize() int
}

// Block is a run of source bytes on the queue. Blocks are recycled: a Source
// must not keep b or its bytes after Fill returns.
//
// A datagram source adds whole datagrams, as many as fit (see Fits), so
// that a burst of small datagrams travels in few blocks. A datagram larger
// than a block goes in pieces: CommitDatagramPart for all but its last
// bytes, then CommitDatagram (or CommitDatagramAck) for those.
type Block struct {
	data   []byte
	ends   []int32  // end offset of each datagram, for datagram sources
	acks   []func() // per datagram, when a source wants to know it was written
	limit  int
	open   bool // ends inside a datagram that continues in the next block
	charge int  // bytes of queue room the block takes, set when queued
}

// MaxBlockDatagrams bounds the datagrams in one block, so that a block's
// bookkeeping stays small next to its bytes however small the datagrams.
const MaxBlockDatagrams = 16384

func newBlock(size int) *Block {
	return &Block{data: make([]byte, 0, size)}
}

func (b *Block) reset(limit int) {
	b.data = b.data[:0]
	b.ends = b.ends[:0]
	clear(b.acks)
	b.acks = b.acks[:0]
	b.limit = min(limit, cap(b.data))
	b.open = false
	b.charge = 0
}

// Len returns the number of bytes in b.
func (b *Block) Len() int { return len(b.data) }

// Room returns how many more bytes b takes.
func (b *Block) Room() int {
	if len(b.ends) >= MaxBlockDatagrams {
		return 0
	}
	return max(0, b.limit-len(b.data))
}

// Fits reports whether a datagram of n bytes may be added to b now: an
// empty block takes any datagram up to its capacity (see DatagramSpare); a
// block that holds data takes one that fits in Room, up to
// MaxBlockDatagrams datagrams.
func (b *Block) Fits(n int) bool {
	if len(b.data) == 0 && len(b.ends) == 0 {
		return n <= cap(b.data)
	}
	return len(b.ends) < MaxBlockDatagrams && n <= b.limit-len(b.data)
}

// Spare returns the unused part of b, up to Room bytes, for a Source to
// read into before it calls Commit or CommitDatagram.
func (b *Block) Spare() []byte { return b.data[len(b.data):b.limit] }

// Commit adds the first n bytes of Spare to b as stream bytes.
func (b *Block) Commit(n int) { b.data = b.data[:len(b.data)+n] }

// DatagramSpare returns all of b's unused capacity, which may exceed Room:
// a datagram is never split by the packager, so a datagram source may fill
// an empty block past the stream target, up to the size it asked for with
// BlockSizer.
func (b *Block) DatagramSpare() []byte { return b.data[len(b.data):cap(b.data)] }

// CommitDatagram adds the first n bytes of DatagramSpare to b as one
// datagram, or as the last bytes of one begun with CommitDatagramPart.
func (b *Block) CommitDatagram(n int) {
	b.data = b.data[:len(b.data)+n]
	b.ends = append(b.ends, int32(len(b.data)))
	b.open = false
}

// CommitDatagramPart adds the first n bytes of DatagramSpare to b as the
// start, or a middle piece, of a datagram too large for one block; it
// continues in the next block the source fills. Such a source must run
// with OverflowBlock: a dropped piece would leave half a datagram.
func (b *Block) CommitDatagramPart(n int) {
	b.data = b.data[:len(b.data)+n]
	b.open = true
}

// CommitDatagramAck is CommitDatagram for a source that must know when the
// datagram has been written: the sender calls ack, from its goroutine, once
// every byte of the datagram has been written (and drained, with
// Config.DrainBeforeAck). A datagram that is never written is never acked.
// A block's datagrams either all have acks or none does.
func (b *Block) CommitDatagramAck(n int, ack func()) {
	b.CommitDatagram(n)
	b.acks = append(b.acks, ack)
}

// Datagrams returns how many datagrams b holds (a datagram in pieces counts
// in the block of its last piece); 0 for stream bytes.
func (b *Block) Datagrams() int { return len(b.ends) }

// Counter is the original program's source: datagram k is the single byte
// k mod 16, for ever. It is a stream source.
type Counter struct {
	next uint64
}

// counterPattern lets Fill copy instead of computing byte by byte.
var counterPattern = func() []byte {
	p := make([]byte, 16+MaxDatagram)
	for i := range p {
		p[i] = byte(i % 16)
	}
	return p
}()

// AppendCounter appends to dst n bytes of the counter stream from stream
// offset off (byte k of the stream is k mod 16), as Counter sends them,
// and returns the extended slice: for writing or checking the pattern
// elsewhere (loopback, benchmarks, tests).
func AppendCounter(dst []byte, off int64, n int) []byte {
	for n > 0 {
		chunk := counterPattern[off%16:][:min(n, len(counterPattern)-16)]
		dst = append(dst, chunk...)
		off += int64(len(chunk))
		n -= len(chunk)
	}
	return dst
}

// Fill fills b's room with the next counter bytes. It never blocks.
func (c *Counter) Fill(ctx context.Context, b *Block) error {
	n := copy(b.Spare(), counterPattern[c.next%16:])
	b.Commit(n)
	c.next += uint64(n)
	return nil
}
