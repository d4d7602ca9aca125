//go:build linux

// Package ptyfake is a fake serial device for framesend's demo, benchmarks
// and tests: a real pseudo-terminal, so the code under test opens and writes
// it through go.bug.st/serial exactly as it would a USB-serial adapter.
//
// The device side is the pty's slave, at Path. The far end (the "wire") is
// the master, read with Read and written with Write. Options make the far end
// behave like a real, imperfect line:
//
//   - Baud drains the wire at the line rate of that baud (10 bits per byte,
//     as with 8N1), so a writer meets backpressure as it would on a real UART
//     once the kernel's buffer (about 20 KB on a pty) is full.
//   - Echo sends back everything that arrives, like a TX-RX jumper, for
//     loopback tests; the fake then reads the wire itself.
//   - DropAt and CorruptAt lose or invert (XOR 0xff) the bytes at given
//     offsets of the stream, to prove that a verifier catches them.
//
// Unplug closes the wire the way pulling a USB adapter does: the device side
// then fails with EIO and the path no longer opens.
//
// It is not a test package: `framesend demo` runs on it, so it imports
// nothing from testing (device/devicetest holds the test helpers around it).
package ptyfake

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Options shape how the fake's far end behaves. The zero value is a perfect
// line at memory speed.
type Options struct {
	Baud      int     // if > 0, read the wire at Baud/10 bytes per second
	Echo      bool    // write everything read back to the device side
	DropAt    []int64 // stream offsets of bytes the wire loses
	CorruptAt []int64 // stream offsets of bytes the wire inverts
}

// PTY is a fake serial device on a pseudo-terminal pair.
type PTY struct {
	opts   Options
	master *os.File
	slave  *os.File // held so the wire stays readable between device opens
	path   string

	mu        sync.Mutex // guards offset, delivered, start
	offset    int64      // stream bytes read from the master so far
	delivered int64      // bytes handed out, for pacing
	start     time.Time

	echoDone chan struct{}
	closeMu  sync.Mutex
	closed   bool
}

// New opens a pseudo-terminal pair in raw mode and returns the fake. If
// opts.Echo is set, a goroutine echoes the wire until Close or Unplug.
func New(opts Options) (*PTY, error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("ptyfake: open /dev/ptmx: %w", err)
	}
	// Non-blocking, so the runtime's poller serves the master and Close
	// unblocks a Read in progress.
	if err := unix.SetNonblock(mfd, true); err != nil {
		unix.Close(mfd)
		return nil, fmt.Errorf("ptyfake: pty: %w", err)
	}
	master := os.NewFile(uintptr(mfd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, fmt.Errorf("ptyfake: unlock pty: %w", err)
	}
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, fmt.Errorf("ptyfake: pty number: %w", err)
	}
	path := fmt.Sprintf("/dev/pts/%d", n)
	sfd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		return nil, fmt.Errorf("ptyfake: open %s: %w", path, err)
	}
	slave := os.NewFile(uintptr(sfd), path)
	for _, fd := range []int{mfd, sfd} {
		if err := makeRaw(fd); err != nil {
			master.Close()
			slave.Close()
			return nil, fmt.Errorf("ptyfake: raw mode: %w", err)
		}
	}
	p := &PTY{opts: opts, master: master, slave: slave, path: path, start: time.Now()}
	slices.Sort(p.opts.DropAt)
	slices.Sort(p.opts.CorruptAt)
	if opts.Echo {
		p.echoDone = make(chan struct{})
		go p.echo()
	}
	return p, nil
}

func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// Path returns the device side's path, /dev/pts/N, to open as a serial port.
func (p *PTY) Path() string { return p.path }

// Read reads what the device side wrote, after the line's faults, at the
// line's pace when Options.Baud is set. It fails once the fake is unplugged
// or closed.
func (p *PTY) Read(b []byte) (int, error) {
	if p.opts.Baud > 0 {
		b = b[:p.pace(len(b))]
	}
	for {
		began := time.Now()
		n, err := p.master.Read(b)
		if p.opts.Baud > 0 {
			p.mu.Lock()
			p.delivered += int64(n) // what the line really carried
			if time.Since(began) > time.Millisecond {
				// The read waited for data: the line ran dry, and its idle
				// time is gone, as on a real UART, not saved up for a burst.
				bytesPerSec := float64(p.opts.Baud) / 10
				p.start = time.Now().Add(-time.Duration(float64(p.delivered) / bytesPerSec * float64(time.Second)))
			}
			p.mu.Unlock()
		}
		if n > 0 {
			n = p.applyFaults(b[:n])
			if n == 0 && err == nil {
				continue // every byte of this read was dropped
			}
		}
		return n, err
	}
}

// pace waits until the line could have carried at least one more chunk and
// returns how many bytes (at most max) the wire may take now. Read counts
// what it then really read: a line with nothing to send carries nothing, and
// does not save up for later.
func (p *PTY) pace(max int) int {
	bytesPerSec := float64(p.opts.Baud) / 10
	chunk := int64(bytesPerSec / 200) // about 5 ms of line time per read
	if chunk < 1 {
		chunk = 1
	}
	if chunk > int64(max) {
		chunk = int64(max)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		allowed := int64(time.Since(p.start).Seconds()*bytesPerSec) - p.delivered
		if allowed >= chunk {
			return int(min(allowed, int64(max)))
		}
		wait := time.Duration(float64(chunk-allowed) / bytesPerSec * float64(time.Second))
		time.Sleep(wait)
	}
}

// applyFaults drops and corrupts bytes of b in place by stream offset and
// returns how many bytes remain.
func (p *PTY) applyFaults(b []byte) int {
	p.mu.Lock()
	base := p.offset
	p.offset += int64(len(b))
	p.mu.Unlock()
	if len(p.opts.DropAt) == 0 && len(p.opts.CorruptAt) == 0 {
		return len(b)
	}
	out := b[:0]
	for i, c := range b {
		off := base + int64(i)
		if _, found := slices.BinarySearch(p.opts.DropAt, off); found {
			continue
		}
		if _, found := slices.BinarySearch(p.opts.CorruptAt, off); found {
			c ^= 0xff
		}
		out = append(out, c)
	}
	return len(out)
}

// SetReadDeadline makes Read give up at t (with os.ErrDeadlineExceeded), so
// a far-end reader can look up from its work; the zero time waits for ever.
func (p *PTY) SetReadDeadline(t time.Time) error { return p.master.SetReadDeadline(t) }

// Write sends b to the device side, as a device transmitting would.
func (p *PTY) Write(b []byte) (int, error) { return p.master.Write(b) }

func (p *PTY) echo() {
	defer close(p.echoDone)
	buf := make([]byte, 4096)
	for {
		n, err := p.Read(buf)
		if n > 0 {
			if _, werr := p.master.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Unplug makes the device disappear as a pulled USB adapter does: the wire
// is closed, writes on the device side fail with EIO, and Path no longer
// opens. Reads of the far end fail from then on.
func (p *PTY) Unplug() error {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	err := errors.Join(p.master.Close(), p.slave.Close())
	if p.echoDone != nil {
		<-p.echoDone
	}
	return err
}

// Close releases the fake; it is Unplug under the name tests expect.
func (p *PTY) Close() error { return p.Unplug() }
