package hil

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

func TestParseBlocks(t *testing.T) {
	lines := []string{
		"[    1.0] kernel noise",
		"@@BEGIN ports",
		"@@| ports [",
		"@@| ports ]",
		"@@END ports rc=0 s=0.25",
		"@@BEGIN send",
		"@@| send framesend: write /dev/ttyUSB0: device disappeared",
		"junk @@END send rc=1", // a line a kernel message ran into
		"@@BEGIN cut",          // never ended: not reported
		"@@| cut partial",
	}
	got := parseBlocks(lines)
	if len(got) != 2 {
		t.Fatalf("blocks = %d (%v), want 2", len(got), got)
	}
	if b := got["ports"]; b.RC != 0 || b.Text() != "[\n]" || b.Seconds != 0.25 {
		t.Errorf("ports = %+v, want rc 0, [ ] and 0.25 s", b)
	}
	if b := got["send"]; b.RC != 1 || !strings.Contains(b.Text(), "disappeared") {
		t.Errorf("send = %+v, want rc 1 and the error", b)
	}
}

// The newc archive: headers in order, names NUL-terminated and padded,
// parents before children, and the trailer.
func TestInitramfsNewc(t *testing.T) {
	r := NewInitramfs()
	r.Bytes("etc/hil/modules", []byte("00-a.ko\n"), 0o644)
	r.Symlink("lib/systemd/systemd-udevd", "/bin/udevadm")
	var buf bytes.Buffer
	if _, err := r.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	var names []string
	files := map[string]string{}
	for len(b) > 0 {
		if string(b[:6]) != "070701" {
			t.Fatalf("header magic %q, want 070701", b[:6])
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(b[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		size, namesize := field(6), field(11)
		name := string(b[110 : 110+namesize-1])
		off := (110 + namesize + 3) &^ 3
		files[name] = string(b[off : off+size])
		names = append(names, name)
		b = b[(off+size+3)&^3:]
		if name == "TRAILER!!!" {
			break
		}
	}
	if len(b) != 0 {
		t.Errorf("%d bytes after the trailer", len(b))
	}
	if files["etc/hil/modules"] != "00-a.ko\n" || files["lib/systemd/systemd-udevd"] != "/bin/udevadm" {
		t.Errorf("contents = %q", files)
	}
	pos := map[string]int{}
	for i, n := range names {
		pos[n] = i
	}
	if !(pos["etc"] < pos["etc/hil"] && pos["etc/hil"] < pos["etc/hil/modules"]) {
		t.Errorf("order %v: parents must come first", names)
	}
}
