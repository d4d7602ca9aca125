package source

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/framesend/framesend/pipeline"
)

// bom is the UTF-8 byte-order mark some editors put at the start of a text
// file; hex input skips it there.
const bom = "\xef\xbb\xbf"

// HexError is a token a hex source could not read, with where it stands.
type HexError struct {
	Name   string // the file's name, or "stdin"
	Line   int    // from 1
	Column int    // byte offset in the line, from 1
	Token  string
	Bytes  int // when not 0: the line holds this many bytes, over pipeline.MaxDatagram
}

func (e *HexError) Error() string {
	if e.Bytes > 0 {
		return fmt.Sprintf("%s:%d: the line holds %d bytes or more: a line is one datagram, at most %d bytes; split it into lines", e.Name, e.Line, e.Bytes, pipeline.MaxDatagram)
	}
	if strings.HasPrefix(e.Token, bom) {
		return fmt.Sprintf("%s:%d:%d: a UTF-8 byte-order mark (EF BB BF) in the middle of the input: save the file without it", e.Name, e.Line, e.Column)
	}
	return fmt.Sprintf("%s:%d:%d: bad hex byte %q: want two hex digits, such as 0a or 0x0a (# starts a comment)", e.Name, e.Line, e.Column, e.Token)
}

// ParseHexLine appends the bytes of one line of hex text to dst: tokens of
// two hex digits separated by white space, each with an optional 0x prefix;
// '#' starts a comment. On a bad token it returns the token and its column.
func ParseHexLine(dst, line []byte) ([]byte, string, int) {
	i := 0
	for i < len(line) {
		c := line[i]
		if c == '#' {
			break
		}
		if isSpace(c) {
			i++
			continue
		}
		start := i
		for i < len(line) && !isSpace(line[i]) && line[i] != '#' {
			i++
		}
		tok := line[start:i]
		digits := tok
		if len(digits) > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X') {
			digits = digits[2:]
		}
		hi, ok1 := unhex(digits, 0)
		lo, ok2 := unhex(digits, 1)
		if len(digits) != 2 || !ok1 || !ok2 {
			return dst, string(tok), start + 1
		}
		dst = append(dst, hi<<4|lo)
	}
	return dst, "", 0
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n'
}

func unhex(s []byte, i int) (byte, bool) {
	if i >= len(s) {
		return 0, false
	}
	switch c := s[i]; {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// maxHexLine bounds the data part of a line of hex text kept in memory: a
// datagram of pipeline.MaxDatagram bytes written as "0x00 " tokens. Comments are not
// kept, so they may be of any length.
const maxHexLine = 5*pipeline.MaxDatagram + 1024

// ParseHex reads all of r as hex text, one datagram per non-blank line, and
// returns the datagrams, or a *HexError for the first bad token. name is
// what errors call the input.
func ParseHex(r io.Reader, name string) ([][]byte, error) {
	var out [][]byte
	h := NewHex(r, name)
	for {
		d, err := h.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, append([]byte(nil), d...))
	}
}

// Hex is a datagram source reading hex text as it comes, one datagram per
// non-blank line: for a stream such as stdin, where waiting for the end to
// check every line first is not possible. A bad token ends the run with a
// *HexError.
type Hex struct {
	r         io.Reader
	interrupt interrupt
	br        *bufio.Reader
	name      string
	line      int
	buf       []byte

	// The line being read, up to its comment; kept across a read that
	// fails (a deadline), so the line continues on the next call.
	raw      []byte
	comment  bool // the rest of the line is a comment
	overlong bool // the data part of the line passed maxHexLine
}

// NewHex returns a Hex source reading r; name is what errors call it.
func NewHex(r io.Reader, name string) *Hex {
	return &Hex{r: r, br: bufio.NewReaderSize(r, 64<<10), name: name}
}

// BlockSize makes room for the largest datagram a line can hold.
func (h *Hex) BlockSize() int { return pipeline.MaxDatagram }

// readLine reads the next line into h.raw, without its comment, however
// long the comment. It returns io.EOF only when no line is left.
func (h *Hex) readLine() error {
	for {
		chunk, err := h.br.ReadSlice('\n')
		if !h.comment {
			data := chunk
			if i := bytes.IndexByte(data, '#'); i >= 0 {
				data, h.comment = data[:i], true
			}
			if len(h.raw)+len(data) > maxHexLine {
				h.overlong = true
				data = data[:max(0, maxHexLine-len(h.raw))]
			}
			h.raw = append(h.raw, data...)
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && (len(chunk) > 0 || len(h.raw) > 0 || h.comment):
			return nil // a last line without a newline
		}
		return err
	}
}

// next returns the next line's datagram (only valid until the next call).
func (h *Hex) next() ([]byte, error) {
	for {
		if err := h.readLine(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, err
			}
			return nil, fmt.Errorf("%s: line %d: %w", h.name, h.line+1, err)
		}
		h.line++
		raw := h.raw
		if h.line == 1 {
			raw = bytes.TrimPrefix(raw, []byte(bom))
		}
		var tok string
		var col int
		h.buf, tok, col = ParseHexLine(h.buf[:0], raw)
		overlong := h.overlong
		h.raw, h.comment, h.overlong = h.raw[:0], false, false
		if tok != "" {
			return nil, &HexError{Name: h.name, Line: h.line, Column: col, Token: tok}
		}
		if overlong || len(h.buf) > pipeline.MaxDatagram {
			return nil, &HexError{Name: h.name, Line: h.line, Column: 1, Bytes: max(len(h.buf), pipeline.MaxDatagram+1)}
		}
		if len(h.buf) > 0 {
			return h.buf, nil
		}
	}
}

// Fill adds the next line's datagram to b. It blocks until a complete line
// arrives, the input ends, or (for input that takes a read deadline) ctx is
// done. One line a block: a line that has arrived is never held back
// waiting for the next.
func (h *Hex) Fill(ctx context.Context, b *pipeline.Block) error {
	h.interrupt.watch(ctx, h.r)
	d, err := h.next()
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	b.CommitDatagram(copy(b.DatagramSpare(), d))
	return nil
}

// Describe says that h is a datagram source, a line a datagram.
func (h *Hex) Describe() pipeline.Traits {
	return pipeline.Traits{Name: h.name, Datagrams: true}
}

// hexKind reads hex text, one datagram a line: a file, checked whole before
// anything is sent, or stdin (hex:-), read as it comes.
var hexKind = kind{
	name:   "hex",
	usage:  "hex:PATH (hex:- for stdin)",
	traits: (&Hex{}).Describe(),
	parse: func(s *Spec) error {
		if s.Arg == "" {
			return specErrorf(s.spec, "hex: needs a path, as in hex:frames.txt, or hex:- for stdin")
		}
		return nil
	},
	open: func(ctx context.Context, s *Spec, o Options) (*Opened, error) {
		if s.Arg == "-" {
			r, restore := pollable(o.Stdin)
			return opened(s, NewHex(r, "stdin"), restore), nil
		}
		f, err := openFile(ctx, s.Arg)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		// A stop interrupts the reading of a FIFO.
		stopRead := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Unix(1, 0)) })
		datagrams, err := ParseHex(f, s.Arg)
		stopRead()
		if err != nil && ctx.Err() != nil {
			return nil, ErrStopped
		}
		if err != nil {
			return nil, err
		}
		op := opened(s, &List{Datagrams: datagrams, Name: s.spec}, nil)
		op.datagrams = datagrams
		if op.datagrams == nil {
			op.datagrams = [][]byte{}
		}
		return op, nil
	},
}
