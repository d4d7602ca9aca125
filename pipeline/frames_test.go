package pipeline_test

import (
	"testing"

	"github.com/framesend/framesend/pipeline"
)

func TestFrames(t *testing.T) {
	cases := []struct {
		n       int64
		fs      int
		partial pipeline.Partial
		want    int64
	}{
		{0, 7, pipeline.PartialPad, 0},
		{14, 7, pipeline.PartialPad, 2},
		{15, 7, pipeline.PartialPad, 3},
		{15, 7, pipeline.PartialDrop, 2},
		{15, 7, pipeline.PartialError, 2},
		{6, 7, pipeline.PartialPad, 1},
		{6, 7, pipeline.PartialDrop, 0},
		{1 << 40, 4096, pipeline.PartialPad, 1 << 28},
	}
	for _, c := range cases {
		if got := pipeline.Frames(c.n, c.fs, c.partial); got != c.want {
			t.Errorf("Frames(%d, %d, %s) = %d, want %d", c.n, c.fs, c.partial, got, c.want)
		}
	}
}
