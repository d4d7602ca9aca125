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
//
// A source says what it is (Describer, Traits): a byte stream or datagrams,
// acknowledged or not, live or not. Run chooses the alignment and overflow
// policy a Config leaves empty from that, and refuses what would shift or
// lose data (Config.ForSource): datagram alignment or a drop policy on a
// byte stream, a drop policy on a source that acknowledges what is written.
package pipeline
