package pipeline_test

import (
	"strings"
	"testing"

	"github.com/framesend/framesend/pipeline"
)

func TestCounterCheckVerdict(t *testing.T) {
	good := []byte{0, 1, 2, 3}
	bad := []byte{4, 5, 9, 7}
	for _, c := range []struct {
		name     string
		frames   [][]byte
		trailing int
		want     string // "" for no error
	}{
		{"in order", [][]byte{good}, 0, ""},
		{"trailing bytes", [][]byte{good}, 3, "3 trailing bytes do not fill a frame"},
		{"corrupt", [][]byte{good, bad}, 0, "counter stream broken: 1 corrupt frame"},
		{"both", [][]byte{good, bad}, 2, "; 2 trailing bytes"},
	} {
		var check pipeline.CounterCheck
		for _, f := range c.frames {
			check.Check(f)
		}
		err := check.Verdict(c.trailing)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: Verdict = %v, want nil", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: Verdict = %v, want an error with %q", c.name, err, c.want)
		}
	}
}

func TestAppendCounter(t *testing.T) {
	for _, c := range []struct {
		off int64
		n   int
	}{{0, 0}, {0, 5}, {13, 7}, {3, 200000}, {1<<40 + 9, 33}} {
		got := pipeline.AppendCounter([]byte{0xaa}, c.off, c.n)
		if len(got) != 1+c.n || got[0] != 0xaa {
			t.Fatalf("AppendCounter(off %d, n %d): len %d, first %#x, want %d and 0xaa", c.off, c.n, len(got), got[0], 1+c.n)
		}
		for i, b := range got[1:] {
			if want := byte((c.off + int64(i)) % 16); b != want {
				t.Fatalf("AppendCounter(off %d, n %d): byte %d = %d, want %d", c.off, c.n, i, b, want)
			}
		}
	}
}
