package pipeline_test

import (
	"context"
	"fmt"

	"github.com/framesend/framesend/pipeline"
	"github.com/framesend/framesend/pipeline/pipelinetest"
)

// Run sends frames of the counter pattern to any io.Writer; here a
// recorder stands in for the serial port.
func ExampleRun() {
	cfg := pipeline.DefaultConfig()
	cfg.Source = &pipeline.Counter{}
	cfg.FrameSize = 4
	cfg.Count = 5

	var rec pipelinetest.Recorder
	stats, err := pipeline.Run(context.Background(), &rec, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("% x\n", rec.Bytes())
	fmt.Println(stats.Frames, "frames,", stats.Bytes, "bytes")
	// Output:
	// 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 00 01 02 03
	// 5 frames, 20 bytes
}

// Config.Validate names the field and the value it refuses.
func ExampleConfig_Validate() {
	cfg := pipeline.DefaultConfig()
	cfg.FrameSize = 0
	fmt.Println(cfg.Validate())
	// Output:
	// pipeline: FrameSize 0 is out of range: use 1 to 4096 bytes
}
