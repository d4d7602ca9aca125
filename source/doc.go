// Package source holds framesend's sources beyond the counter: a reader
// over a byte stream (a file, stdin, a pipe), hex text read as it comes or
// parsed whole into a list of datagrams, UDP datagrams, and MQTT messages
// delivered at least once. Each is a pipeline.Source that says what it is
// (pipeline.Describer); the pipeline consumes them and never imports this
// package.
//
// Open takes a spec such as "file:capture.bin", "hex:-", "udp:9000" or
// "mqtt://broker.lan/devices/pi7/#", opens the source and says what it is;
// Parse checks a spec and says what its source will be without opening
// anything. A mistake in a spec is a *SpecError, told apart from a failure
// to open. Each kind of source is one file here and one line in the table
// of kinds (open.go).
//
// The udp source needs Linux (recvmmsg, SO_RXQ_OVFL); elsewhere it fails
// with ErrUDPNeedsLinux.
package source
