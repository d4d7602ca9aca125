package pipeline

import "fmt"

// Traits says what a source is. Run chooses the Align and Overflow a
// Config leaves empty from them, and refuses the combinations that would
// shift or lose data (see Config.ForSource).
type Traits struct {
	// Name is what errors call the source, such as "stdin" or
	// "udp:9000"; empty, they say "the source".
	Name string
	// Datagrams: the source adds datagrams (CommitDatagram), whose
	// boundaries frames can start on, and of which a full queue can drop
	// whole ones. Without it the source is a byte stream.
	Datagrams bool
	// Messages: each datagram is a message sent as a unit (a UDP datagram,
	// an MQTT message), so frames start on each by default. Datagrams
	// that only lay the data out, such as the lines of a hex file, leave
	// it false: their bytes run on as one stream by default.
	Messages bool
	// Acknowledged: the source is told when each datagram has been written
	// (CommitDatagramAck) and counts on every one being written, so none
	// may be dropped: a full queue holds it back.
	Acknowledged bool
	// Live: the source cannot be held back: its data arrives whether or
	// not the queue has room (a socket), so by default a full queue drops
	// what does not fit rather than leave the kernel to.
	Live bool
}

// Describer is implemented by sources that say what they are. Run applies
// Config.ForSource to the traits of a source that has them; a source
// without them is taken as its Config says, AlignStream and OverflowBlock
// where left empty.
type Describer interface {
	Describe() Traits
}

// ForSource returns c with Align and Overflow, where left empty, chosen for
// a source with traits t, and checks c, as Validate does, and against the
// source: AlignDatagram needs datagrams; a policy that drops needs
// datagrams (a byte stream cannot lose a block without shifting every later
// frame) and a source that is not acknowledged (a dropped datagram would
// never be acknowledged). The defaults: AlignDatagram for a source of
// messages, AlignStream otherwise; OverflowDropNewest for a live datagram
// source that is not acknowledged, OverflowBlock otherwise. Errors are
// *ConfigError.
//
// A caller that checks its configuration before it opens the source (so
// as not to dial a broker for a run it would refuse) calls ForSource with
// the traits it expects; Run calls it again with the opened source's.
func (c Config) ForSource(t Traits) (Config, error) {
	if c.Align == "" {
		c.Align = AlignStream
		if t.Datagrams && t.Messages {
			c.Align = AlignDatagram
		}
	}
	if c.Overflow == "" {
		c.Overflow = OverflowBlock
		if t.Datagrams && t.Live && !t.Acknowledged {
			c.Overflow = OverflowDropNewest
		}
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	name := t.Name
	if name == "" {
		name = "the source"
	}
	switch {
	case c.Align == AlignDatagram && !t.Datagrams:
		return c, &ConfigError{Field: "Align", Value: string(c.Align), Reason: fmt.Sprintf("needs a source with datagrams: %s is a byte stream, with no datagram boundaries to start frames on", name)}
	case c.Overflow != OverflowBlock && !t.Datagrams:
		return c, &ConfigError{Field: "Overflow", Value: string(c.Overflow), Reason: fmt.Sprintf("needs a source with datagrams: %s is a byte stream, which cannot lose a block without shifting every later frame", name)}
	case c.Overflow != OverflowBlock && t.Acknowledged:
		return c, &ConfigError{Field: "Overflow", Value: string(c.Overflow), Reason: fmt.Sprintf("would lose messages that %s acknowledges only once they are written: a source that acknowledges is held back instead (block)", name)}
	}
	return c, nil
}

// forSource is ForSource for the source in c: with its traits if it
// describes itself, else with the defaults of a source that does not.
func (c Config) forSource() (Config, error) {
	if d, ok := c.Source.(Describer); ok {
		return c.ForSource(d.Describe())
	}
	if c.Align == "" {
		c.Align = AlignStream
	}
	if c.Overflow == "" {
		c.Overflow = OverflowBlock
	}
	return c, c.Validate()
}

// Describe says that Counter is a byte stream.
func (c *Counter) Describe() Traits { return Traits{Name: "counter"} }
