// Package source holds framesend's sources beyond the counter: a reader
// over a byte stream (a file, stdin, a pipe), hex text read as it comes or
// parsed whole into a list of datagrams, UDP datagrams, and MQTT messages
// delivered at least once. Each is a pipeline.Source; the pipeline consumes
// them and never imports this package.
package source
