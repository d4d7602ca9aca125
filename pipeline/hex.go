package pipeline

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// HexError is a token a hex source could not read, with where it stands.
type HexError struct {
	Name   string // the file's name, or "stdin"
	Line   int    // from 1
	Column int    // byte offset in the line, from 1
	Token  string
}

func (e *HexError) Error() string {
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

// maxHexLine bounds a line of hex text: a datagram of MaxDatagram bytes
// written as "0x00 " tokens.
const maxHexLine = 5*MaxDatagram + 1024

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
	sc        *bufio.Scanner
	name      string
	line      int
	buf       []byte
}

// NewHex returns a Hex source reading r; name is what errors call it.
func NewHex(r io.Reader, name string) *Hex {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxHexLine)
	return &Hex{r: r, sc: sc, name: name}
}

// BlockSize makes room for the largest datagram a line can hold.
func (h *Hex) BlockSize() int { return MaxDatagram }

// next returns the next line's datagram (only valid until the next call).
func (h *Hex) next() ([]byte, error) {
	for h.sc.Scan() {
		h.line++
		var tok string
		var col int
		h.buf, tok, col = ParseHexLine(h.buf[:0], h.sc.Bytes())
		if tok != "" {
			return nil, &HexError{Name: h.name, Line: h.line, Column: col, Token: tok}
		}
		if len(h.buf) > MaxDatagram {
			return nil, &HexError{Name: h.name, Line: h.line, Column: 1, Token: fmt.Sprintf("(%d bytes)", len(h.buf))}
		}
		if len(h.buf) > 0 {
			return h.buf, nil
		}
	}
	if err := h.sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: line %d: %w", h.name, h.line+1, err)
	}
	return nil, io.EOF
}

// Fill adds the next line's datagram to b. It blocks until a complete line
// arrives, the input ends, or (for input that takes a read deadline) ctx is
// done. One line a block: a line that has arrived is never held back
// waiting for the next.
func (h *Hex) Fill(ctx context.Context, b *Block) error {
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
