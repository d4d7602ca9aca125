package source_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/framesend/framesend/pipeline"
	"github.com/framesend/framesend/pipeline/pipelinetest"
	"github.com/framesend/framesend/source"
)

// Open a hex file, one datagram a line, and send it with each line
// starting a frame of its own.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "framesend-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "frames.hex")
	os.WriteFile(path, []byte("01 02 03\n04 05 06 07 08\n"), 0o644)

	src, err := source.Open(context.Background(), "hex:"+path, source.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	cfg := pipeline.DefaultConfig()
	cfg.Source, cfg.FrameSize, cfg.Align = src.Source, 4, pipeline.AlignDatagram
	fmt.Println("datagrams:", src.Traits.Datagrams, "frames:", src.Frames(cfg.FrameSize, cfg.Align, cfg.Partial))

	var rec pipelinetest.Recorder
	if _, err := pipeline.Run(context.Background(), &rec, cfg); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("% x\n", rec.Bytes())
	// Output:
	// datagrams: true frames: 3
	// 01 02 03 00 04 05 06 07 08 00 00 00
}

// Parse says what a source will be before anything is opened, so that a
// configuration it cannot take is refused before a broker is dialled.
func ExampleParse() {
	spec, err := source.Parse("mqtt://broker.lan/devices/pi7/#")
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg := pipeline.DefaultConfig()
	cfg.Overflow = pipeline.OverflowDropNewest
	_, err = cfg.ForSource(spec.Traits)
	fmt.Println(err)
	// Output:
	// pipeline: Overflow drop-newest would lose messages that mqtt://broker.lan/devices/pi7/# acknowledges only once they are written: a source that acknowledges is held back instead (block)
}
