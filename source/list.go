package source

import (
	"context"
	"io"

	"github.com/framesend/framesend/pipeline"
)

// List is a datagram source over datagrams already in memory, such as the
// lines of a hex file. It ends after the last one.
type List struct {
	Datagrams [][]byte
	Name      string // what errors call it
	next      int
}

// Describe says that l is a datagram source whose datagrams lay data out,
// as the lines of a hex file do: its bytes run on as one stream unless
// aligned.
func (l *List) Describe() pipeline.Traits {
	return pipeline.Traits{Name: l.Name, Datagrams: true}
}

// BlockSize makes room for List's largest datagram.
func (l *List) BlockSize() int {
	n := 0
	for _, d := range l.Datagrams {
		n = max(n, len(d))
	}
	return n
}

// Fill adds as many whole datagrams as fit in b's room, at least one.
func (l *List) Fill(ctx context.Context, b *pipeline.Block) error {
	for l.next < len(l.Datagrams) {
		d := l.Datagrams[l.next]
		if b.Datagrams() > 0 && !b.Fits(len(d)) {
			return nil
		}
		b.CommitDatagram(copy(b.DatagramSpare(), d))
		l.next++
	}
	return io.EOF
}
