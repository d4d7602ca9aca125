package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// Limits on Config values.
const (
	MaxFrameSize = 4096
	// BlockSize is the capacity of a queue block for stream sources. It is
	// sixteen writes' worth, so the packager and the sender hand over a
	// block (and wake each other) once per sixteen writes: with one block
	// per write, the wake-ups cost a third more CPU than the writes.
	BlockSize = 64 << 10
	// WriteSize is the most bytes the sender puts in one write call when it
	// coalesces ready frames (Batch 0, unpaced).
	WriteSize = 4096
	// MaxDatagram is the largest datagram a datagram source queues in one
	// block; a larger one (an MQTT message) goes in pieces.
	MaxDatagram = 65536
	// DefaultQueueBytes is the queue's default room: 1 MiB of frames,
	// about 150,000 seven-byte datagrams.
	DefaultQueueBytes = 1 << 20
	// MaxQueueBytes bounds Config.QueueBytes.
	MaxQueueBytes = 1 << 30
)

// Align says where frames start.
type Align string

// Alignments.
const (
	// AlignStream cuts frames from the concatenated bytes of all datagrams.
	AlignStream Align = "stream"
	// AlignDatagram starts every datagram on a new frame, so that a lost
	// datagram cannot shift the frames after it.
	AlignDatagram Align = "datagram"
)

// Partial says what happens to a frame that ends short: the tail of a
// finite source, or of a datagram under AlignDatagram.
type Partial string

// Partial-frame policies.
const (
	PartialPad Partial = "pad" // fill with Config.Pad
	// PartialDrop discards the short frame, and counts it. A datagram that
	// wants an acknowledgement and ends in a dropped short frame is
	// acknowledged once the frames before it are written: it is done
	// with, as the policy says, and holding its ack would make an MQTT
	// broker redeliver it only to have its tail dropped again.
	PartialDrop  Partial = "drop"
	PartialError Partial = "error" // stop the run with ErrPartialFrame
)

// Overflow says what the packager does when the queue is full.
type Overflow string

// Overflow policies.
const (
	OverflowBlock      Overflow = "block"       // wait for the sender
	OverflowDropNewest Overflow = "drop-newest" // drop the block that does not fit
	OverflowDropOldest Overflow = "drop-oldest" // drop the oldest queued block
)

// ErrPartialFrame ends a run whose data did not fill its last frame under
// PartialError. The error Run returns is a *PartialFrameError.
var ErrPartialFrame = errors.New("short frame")

// A PartialFrameError ends a run under PartialError whose data (or, under
// AlignDatagram, a datagram) ended inside a frame. The whole frames before
// it were written.
type PartialFrameError struct {
	Bytes     int // the bytes the short frame had
	FrameSize int
}

func (e *PartialFrameError) Error() string {
	return fmt.Sprintf("pipeline: %v: the data ended %d bytes into a %d-byte frame, under Partial %q", ErrPartialFrame, e.Bytes, e.FrameSize, PartialError)
}

// Unwrap gives errors.Is ErrPartialFrame.
func (e *PartialFrameError) Unwrap() error { return ErrPartialFrame }

// Config is what Run needs beyond the writer. Start from DefaultConfig.
type Config struct {
	Source    Source
	FrameSize int // bytes per frame, 1 to MaxFrameSize
	// Count is the frames to send; 0 = until the source ends or ctx is
	// done. Nothing past the count is framed (a short frame after it is
	// not padded, dropped or an error) or acknowledged. The source is read
	// no further than the count needs, but for what one Fill adds at a
	// time and, under a drop policy, what the queue holds; what was read
	// past the count is counted in Stats.Unsent.
	Count int64
	Rate  float64 // frames per second; 0 = as fast as the writer takes them
	// Batch is the most whole frames per write call. 0 = automatic: up to
	// WriteSize bytes of ready frames when unpaced, one frame when paced.
	Batch int
	// QueueBytes is the queue's room between source and sender, in bytes
	// of frames: a datagram takes the bytes of the frames it becomes. An
	// empty queue takes any one block, so a datagram larger than the room
	// still goes through.
	QueueBytes int
	// Overflow and Align left empty are chosen for the source: see
	// ForSource, which also says which the source cannot take.
	Overflow Overflow
	Align    Align
	Partial  Partial
	Pad      byte
	// DrainTimeout bounds how long queued frames are still sent after ctx
	// is done; what is left then is counted as Unsent.
	DrainTimeout time.Duration
	// DrainBeforeAck drains the writer (see Drainer) before acknowledging
	// datagrams to a source that wants acknowledgements (CommitDatagramAck),
	// so that an acknowledged datagram has left the kernel, not only
	// entered it.
	DrainBeforeAck bool
	// WriteTimeout ends the run with a *StallError when a write (or a
	// drain) makes no progress for this long, plus the time its bytes take
	// on the line (ByteTime each). It applies to writers that take
	// deadlines (DeadlineWriter); 0 waits for ever.
	WriteTimeout time.Duration
	// ByteTime is how long one byte takes on the line, 0 if unknown.
	ByteTime time.Duration
	// Logger receives warnings (drops, late schedule); nil discards them.
	Logger *slog.Logger
	// Live, if not nil, is updated as the run goes, for progress reports.
	Live *Live
}

// The range of Rate: the period of the slowest, and the schedule of every
// frame a run at it can send, fit in a time.Duration.
const (
	MinRate = 0.000001
	MaxRate = 10_000_000
)

// DefaultConfig returns the counter source, 7-byte frames, automatic
// batching, a 1 MiB queue, a 5 s drain, and Align and Overflow left for
// the source to choose (see ForSource).
func DefaultConfig() Config {
	return Config{
		Source:       &Counter{},
		FrameSize:    7,
		QueueBytes:   DefaultQueueBytes,
		Partial:      PartialPad,
		DrainTimeout: 5 * time.Second,
	}
}

// A ConfigError is a Config value out of range. Its message names the
// field and the value; a command line maps Field to its flag.
type ConfigError struct {
	Field  string // the Config field, as "FrameSize"
	Value  string // the value given, formatted (strings are quoted)
	Reason string // what is wrong and what would do, as "is out of range: use 1 to 1048576 bytes"
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("pipeline: %s %s %s", e.Field, e.Value, e.Reason)
}

func configError(field string, value any, reason string, a ...any) error {
	v := fmt.Sprint(value)
	if s, ok := value.(string); ok {
		v = fmt.Sprintf("%q", s)
	}
	return &ConfigError{Field: field, Value: v, Reason: fmt.Sprintf(reason, a...)}
}

// ValidateFrameSize reports a frame size out of range (1 to MaxFrameSize)
// as a *ConfigError on FrameSize, for callers that frame bytes without a
// whole Config, such as a far-end checker.
func ValidateFrameSize(n int) error {
	if n < 1 || n > MaxFrameSize {
		return configError("FrameSize", n, "is out of range: use 1 to %d bytes", MaxFrameSize)
	}
	return nil
}

// Validate reports the first value out of range as a *ConfigError. An
// empty Align or Overflow is valid: the source chooses it (ForSource).
func (c Config) Validate() error {
	if err := ValidateFrameSize(c.FrameSize); err != nil {
		return err
	}
	switch {
	case c.Count < 0:
		return configError("Count", c.Count, "is negative: use 0 (until stopped) or a number of frames")
	case c.Count > math.MaxInt64/int64(c.FrameSize):
		// The run counts the count's bytes in an int64.
		return configError("Count", c.Count, "is too large: use up to %d frames of %d bytes, or 0 (until stopped)", math.MaxInt64/int64(c.FrameSize), c.FrameSize)
	case c.Rate < 0 || c.Rate != c.Rate:
		return configError("Rate", c.Rate, "is invalid: use 0 (as fast as the device takes them) or frames per second")
	case c.Rate > MaxRate:
		return configError("Rate", c.Rate, "is above 10,000,000 frames/s: use %v to 10,000,000 frames per second, or 0 for as fast as possible", MinRate)
	case c.Rate > 0 && c.Rate < MinRate:
		return configError("Rate", c.Rate, "is below %v frames/s (a frame every 11.6 days), the slowest rate framesend can pace: use %v to 10,000,000 frames per second, or 0 for as fast as possible", MinRate, MinRate)
	case c.Batch < 0 || c.Batch > (1<<20)/c.FrameSize:
		return configError("Batch", c.Batch, "is out of range: use 0 (automatic) or up to 1 MiB of frames per write")
	case c.QueueBytes < 1 || c.QueueBytes > MaxQueueBytes:
		return configError("QueueBytes", c.QueueBytes, "is out of range: use 1 byte to 1GiB")
	case c.DrainTimeout < 0:
		return configError("DrainTimeout", c.DrainTimeout, "is negative")
	case c.WriteTimeout < 0:
		return configError("WriteTimeout", c.WriteTimeout, "is negative: use 0 (wait for ever) or a duration such as 10s")
	}
	switch c.Overflow {
	case "", OverflowBlock, OverflowDropNewest, OverflowDropOldest:
	default:
		return configError("Overflow", string(c.Overflow), "is not a policy: use block, drop-newest or drop-oldest")
	}
	switch c.Align {
	case "", AlignStream, AlignDatagram:
	default:
		return configError("Align", string(c.Align), "is not an alignment: use stream or datagram")
	}
	switch c.Partial {
	case PartialPad, PartialDrop, PartialError:
	default:
		return configError("Partial", string(c.Partial), "is not a policy: use pad, drop or error")
	}
	return nil
}

// WriteBytes is the most bytes one write call carries.
func (c Config) WriteBytes() int { return c.writeFrames() * c.FrameSize }

// writeFrames is the most frames one write call carries.
func (c Config) writeFrames() int {
	switch {
	case c.Batch > 0:
		return c.Batch
	case c.Rate > 0:
		return 1
	}
	return max(1, WriteSize/c.FrameSize)
}
