// Package pipeline is framesend's data path: a packager goroutine reads a
// Source into blocks of datagrams on a bounded queue, and a batching sender
// goroutine cuts the bytes into whole frames, paces them and writes them to
// an io.Writer (a serial port in the binary, a recorder in tests).
//
//	Source ──> packager ──> queue (Config.QueueBytes) ──> sender ──> io.Writer
//
// The pipeline never opens or closes the writer; it uses the extra abilities
// it declares (Drainer) when the writer has them. Its one source is the
// Counter; the others (stdin, files, hex, UDP, MQTT) are in package source.
package pipeline
