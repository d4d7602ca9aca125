package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/framesend/framesend/pipeline"
)

// A kind of source: what a spec starting "name:" names. Adding a kind is a
// file that defines one and a line in kinds.
type kind struct {
	name string
	// usage is how the kind's spec is written, for help and errors; the
	// kinds that share one (mqtt, mqtts) give it once.
	usage string
	// traits are what every source of the kind is; Name is set per spec.
	traits pipeline.Traits
	// parse checks s.Arg, the text after "name:", and keeps what open
	// needs in s; it returns a *SpecError, or errNotASource. Nil: the
	// kind takes no argument.
	parse func(s *Spec) error
	// open opens the source s names.
	open func(ctx context.Context, s *Spec, o Options) (*Opened, error)
}

// kinds are the sources Parse knows, in the order help lists them.
var kinds = []*kind{&counterKind, &stdinKind, &fileKind, &hexKind, &udpKind, &mqttKind, &mqttsKind}

// Help lists how each kind of source is written: "counter, stdin, …".
func Help() string {
	var u []string
	for _, k := range kinds {
		if k.usage != "" {
			u = append(u, k.usage)
		}
	}
	return strings.Join(u[:len(u)-1], ", ") + " or " + u[len(u)-1]
}

// SpecError is a spec that names no source, or names one wrongly: a
// mistake in what was asked for, not a failure to open it.
type SpecError struct {
	Spec   string // the spec as given (a password in it hidden)
	Detail string // the spec, or its kind, and what is wrong with it
	Err    error  // a sentinel for the mistake, if it has one
}

func (e *SpecError) Error() string { return "source " + e.Detail }
func (e *SpecError) Unwrap() error { return e.Err }

func specErrorf(spec, format string, a ...any) error {
	return &SpecError{Spec: spec, Detail: fmt.Sprintf(format, a...)}
}

// errNotASource is what a kind's parse returns for a spec that is not of
// its kind after all (mqtt:x).
var errNotASource = errors.New("not a source")

// ErrPasswordInURL is a password in an mqtt:// spec, where it would show in
// ps and in logs.
var ErrPasswordInURL = errors.New("a password in the URL would show in ps and in logs")

// ErrStopped is a stop (ctx done) before the source was open: while
// waiting for a FIFO's writer, or for the broker. It is not a failure.
var ErrStopped = errors.New("stopped before the source was open")

// Spec is a parsed source spec: what it names and what that source is,
// known before anything is opened.
type Spec struct {
	Kind   string          // the kind: counter, stdin, file, hex, udp, mqtt or mqtts
	Arg    string          // what follows "kind:"
	Traits pipeline.Traits // what the source will be
	spec   string
	kind   *kind

	addr string     // udp: the address to bind
	mqtt MQTTConfig // mqtt: the broker, topic and user from the spec
	host string     // mqtts: the broker's host name, for its certificate
}

// String returns the spec as given.
func (s *Spec) String() string { return s.spec }

// User returns the user name an mqtt:// spec gives, or "".
func (s *Spec) User() string { return s.mqtt.Username }

// Parse checks spec (counter, stdin, file:PATH, hex:PATH, hex:-,
// udp:[HOST:]PORT, mqtt[s]://[USER@]HOST[:PORT]/TOPIC) without opening
// anything. Its errors are *SpecError.
func Parse(spec string) (*Spec, error) {
	name, arg, _ := strings.Cut(spec, ":")
	for _, k := range kinds {
		if k.name != name {
			continue
		}
		s := &Spec{Kind: k.name, Arg: arg, Traits: k.traits, spec: spec, kind: k}
		s.Traits.Name = spec
		if k.parse == nil {
			if arg != "" {
				break
			}
			return s, nil
		}
		if err := k.parse(s); err != nil {
			if err == errNotASource {
				break
			}
			return nil, err
		}
		return s, nil
	}
	return nil, specErrorf(spec, "%q is not a source: use %s", spec, Help())
}

// Options are what opening a source takes beyond its spec.
type Options struct {
	// Stdin is what stdin and hex:- read.
	Stdin io.Reader
	// Allow, if not empty, limits a udp source to senders in these
	// networks.
	Allow []netip.Prefix
	// MQTT is the rest of an mqtt source's configuration: Open sets
	// Broker, Topic and Username from the spec, and, for mqtts, the TLS
	// server name if TLS leaves it empty.
	MQTT MQTTConfig
	// Logger receives what a source reports as it opens and runs; nil
	// discards it.
	Logger *slog.Logger
}

// Opened is an open source and what it is.
type Opened struct {
	// Source is the source, for pipeline.Config.Source. It describes
	// itself (pipeline.Describer), so that the pipeline applies its rules.
	Source pipeline.Source
	// Traits is what Source is.
	Traits pipeline.Traits

	bytes     int64    // a regular file's size, else -1
	datagrams [][]byte // a hex file's datagrams
	close     func()
}

// Frames returns how many frames the source gives with frames of
// frameSize bytes under align and partial, when it is known in advance (a
// regular file, a hex file), else 0.
func (o *Opened) Frames(frameSize int, align pipeline.Align, partial pipeline.Partial) int64 {
	switch {
	case frameSize < 1:
		return 0
	case o.bytes >= 0:
		return pipeline.Frames(o.bytes, frameSize, partial)
	case o.datagrams != nil:
		return listFrames(o.datagrams, frameSize, align, partial)
	}
	return 0
}

// Close releases what opening the source took. Calling it again does
// nothing.
func (o *Opened) Close() {
	if o.close != nil {
		o.close()
		o.close = nil
	}
}

// Open parses spec and opens the source. A mistake in the spec is a
// *SpecError, bad hex in a file a *HexError, a stop while waiting ErrStopped;
// any other error is a failure to open. Whoever opens the source closes it
// (Opened.Close).
func Open(ctx context.Context, spec string, o Options) (*Opened, error) {
	s, err := Parse(spec)
	if err != nil {
		return nil, err
	}
	return s.Open(ctx, o)
}

// Open opens the source s names: see the package's Open.
func (s *Spec) Open(ctx context.Context, o Options) (*Opened, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	op, err := s.kind.open(ctx, s, o)
	if err != nil {
		return nil, err
	}
	if d, ok := op.Source.(pipeline.Describer); ok {
		op.Traits = d.Describe()
	}
	return op, nil
}

// opened is an Opened whose size is not known.
func opened(s *Spec, src pipeline.Source, close func()) *Opened {
	return &Opened{Source: src, Traits: s.Traits, bytes: -1, close: close}
}

// listFrames is how many frames a hex file's datagrams make: their bytes in
// a row, or each datagram its own under AlignDatagram.
func listFrames(datagrams [][]byte, fs int, align pipeline.Align, partial pipeline.Partial) int64 {
	if align != pipeline.AlignDatagram {
		var n int64
		for _, d := range datagrams {
			n += int64(len(d))
		}
		return pipeline.Frames(n, fs, partial)
	}
	var frames int64
	for _, d := range datagrams {
		frames += pipeline.Frames(int64(len(d)), fs, partial)
	}
	return frames
}

// counterKind is pipeline.Counter, the original program's source.
var counterKind = kind{
	name:   "counter",
	usage:  "counter",
	traits: (&pipeline.Counter{}).Describe(),
	open: func(_ context.Context, s *Spec, _ Options) (*Opened, error) {
		return opened(s, &pipeline.Counter{}, nil), nil
	},
}
