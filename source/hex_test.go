package source_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/framesend/framesend/source"
)

func TestParseHexLine(t *testing.T) {
	cases := []struct {
		line string
		want []byte
		tok  string
		col  int
	}{
		{"01 0x02\t0X0a ff # comment 0xzz", []byte{1, 2, 10, 255}, "", 0},
		{"01\n02\r", []byte{1, 2}, "", 0}, // any white space separates
		{"", nil, "", 0},
		{"01 0x4g", []byte{1}, "0x4g", 4},
		{"1", nil, "1", 1},
		{"0x", nil, "0x", 1},
		{"abc", nil, "abc", 1},
	}
	for _, c := range cases {
		got, tok, col := source.ParseHexLine(nil, []byte(c.line))
		if !bytes.Equal(got, c.want) || tok != c.tok || col != c.col {
			t.Errorf("ParseHexLine(%q) = % x, %q, %d; want % x, %q, %d", c.line, got, tok, col, c.want, c.tok, c.col)
		}
	}
}

func formatHex(b []byte) []byte {
	var out []byte
	for i, c := range b {
		if i%3 == 0 {
			out = fmt.Appendf(out, "0x%02X ", c)
		} else {
			out = fmt.Appendf(out, "%02x\t", c)
		}
	}
	return out
}

// Any line either parses, and then its bytes written back out parse to the
// same bytes, or is refused with a token that is really in the line.
func FuzzParseHexLine(f *testing.F) {
	for _, s := range []string{"01 02 0x03", "0xZZ", "# comment", "ff 0XfF # x", "0x", "1", "abc", "\t0a\v0b\f"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got, tok, col := source.ParseHexLine(nil, line)
		if tok == "" && col != 0 {
			t.Fatalf("%q: no bad token, yet a column (%d): the parse stopped early", line, col)
		}
		if tok != "" {
			if col < 1 || col > len(line) || !bytes.HasPrefix(line[col-1:], []byte(tok)) {
				t.Fatalf("bad token %q at column %d is not in %q", tok, col, line)
			}
			return
		}
		again, tok, _ := source.ParseHexLine(nil, formatHex(got))
		if tok != "" || !bytes.Equal(again, got) {
			t.Fatalf("round trip of % x gave % x (token %q)", got, again, tok)
		}
	})
}

// Any bytes, written as hex text, parse back to themselves.
func FuzzHexRoundTrip(f *testing.F) {
	f.Add([]byte{0, 1, 0xff, '#', ' '})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, tok, col := source.ParseHexLine(nil, formatHex(data))
		if tok != "" || !bytes.Equal(got, data) {
			t.Fatalf("% x: parsed % x, bad token %q at %d", data, got, tok, col)
		}
	})
}
