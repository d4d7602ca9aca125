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
	// A closed stdout is then an EPIPE from write, which ends a command
	// cleanly, instead of a SIGPIPE that kills it before its summary.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	go func() {
		<-sigs
		cancel() // the first signal stops cleanly: queued frames are sent
		<-sigs
		fmt.Fprintln(os.Stderr, "framesend: interrupted again, quitting at once")
		os.Exit(130)
	}()
	os.Exit(run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr))
}
