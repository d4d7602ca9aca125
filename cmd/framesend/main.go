// Command framesend sends fixed-size binary frames to a serial device.
// See README.md, or run framesend --help.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel() // the first signal stops cleanly: queued frames are sent
		<-sigs
		fmt.Fprintln(os.Stderr, "framesend: interrupted again, quitting at once")
		os.Exit(130)
	}()
	os.Exit(run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr))
}
