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
