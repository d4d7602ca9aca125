package device_test

import (
	"errors"
	"fmt"
	"io"

	"github.com/framesend/framesend/device"
	"github.com/framesend/framesend/device/ptyfake"
)

// Open configures a serial port and takes it for this process; the pty
// fake stands in for a USB-serial adapter, and its far end reads what the
// port writes.
func ExampleOpen() {
	fake, err := ptyfake.New(ptyfake.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer fake.Close()

	port, err := device.Open(fake.Path(), device.DefaultConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer port.Close()

	if _, err := port.Write([]byte("frame")); err != nil {
		fmt.Println(err)
		return
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(fake, got); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("the far end read %q\n", got)
	// Output:
	// the far end read "frame"
}

// Validate names the field and the value it refuses; errors.As gives them
// to a caller that words them its own way.
func ExampleConfig_Validate() {
	c := device.DefaultConfig()
	c.StopBits = 3
	err := c.Validate()
	fmt.Println(err)
	var cerr *device.ConfigError
	if errors.As(err, &cerr) {
		fmt.Printf("field %s, value %s\n", cerr.Field, cerr.Value)
	}
	// Output:
	// device: StopBits 3 is not supported: use 1 or 2
	// field StopBits, value 3
}
