//go:build linux

package device

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// lineFD is framesend's own descriptor of the tty, non-blocking, with
// writes that honour a deadline. It does not use the runtime's poller: a
// descriptor registered there is woken through epoll every time the far end
// reads, which on a fast line costs more than the writes themselves. A
// write instead waits for room with ppoll(2) only when the kernel's buffer
// is full, on the descriptor and an eventfd that SetWriteDeadline and Close
// signal, so either cuts a waiting write short.
type lineFD struct {
	fd, wake int

	use    sync.RWMutex // held for reading by every call on fd; Close takes it
	closed atomic.Bool

	mu       sync.Mutex
	deadline time.Time // of writes, and of the port's drains and shaping
}

func newLineFD(fd int) (*lineFD, error) {
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	return &lineFD{fd: fd, wake: wake}, nil
}

// control runs f with the descriptor, which stays open until f returns.
func (l *lineFD) control(f func(fd uintptr)) error {
	l.use.RLock()
	defer l.use.RUnlock()
	if l.closed.Load() {
		return os.ErrClosed
	}
	f(uintptr(l.fd))
	return nil
}

// Write writes all of b unless the deadline passes (os.ErrDeadlineExceeded),
// the port is closed (os.ErrClosed) or the device fails.
//
// The write(2) is made here, not through helpers, and the lock is released
// without a defer: after a system call every return up the stack is a
// mispredicted branch, and at one frame per write the three levels saved
// are about 35 ns a frame. It stays a syscall.Syscall, not a raw one,
// although on the non-blocking descriptor it never waits for room: a raw
// call would save about 55 ns more at one frame per write, but on a line
// that keeps the writer waiting it kept the runtime's sysmon thread from
// backing off (preempting the sender every 10 ms and polling every 20 µs
// again after each time): half as much CPU again at 1 Mbaud.
func (l *lineFD) Write(b []byte) (int, error) {
	l.use.RLock()
	written := 0
	var err error
	for written < len(b) {
		if l.closed.Load() {
			err = os.ErrClosed
			break
		}
		raceRead(b[written:])
		n, _, errno := syscall.Syscall(syscall.SYS_WRITE, uintptr(l.fd), uintptr(unsafe.Pointer(&b[written])), uintptr(len(b)-written))
		switch errno {
		case 0:
			written += int(n)
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			err = l.waitWritable()
		default:
			err = errno
		}
		if err != nil {
			break
		}
	}
	l.use.RUnlock()
	return written, err
}

// repoll bounds each wait for room, after which the write(2) is tried
// again. A pseudo-terminal can make room without waking its writer (its
// flip buffer empties into the far end's line discipline, which wakes no
// one; a read by the far end does). And a real port's line discipline
// reports it writable only once fewer than 256 bytes wait in the driver
// (WAKEUP_CHARS), although a write takes whatever room there is: at 2400
// baud a full 4 KiB buffer takes 16 s to get there, longer than the write
// timeout, so a slow line would look stalled. Trying the write again shows
// the progress the line makes. At 20 tries a second on a stalled port,
// that costs nothing.
const repoll = 50 * time.Millisecond

// waitWritable blocks until the descriptor may take data, repoll has
// passed, the deadline passes or the port is closed.
func (l *lineFD) waitWritable() error {
	for {
		if l.closed.Load() {
			return os.ErrClosed
		}
		wait := repoll
		if dl := l.writeDeadline(); !dl.IsZero() {
			left := time.Until(dl)
			if left <= 0 {
				return os.ErrDeadlineExceeded
			}
			wait = min(wait, left)
		}
		ts := unix.NsecToTimespec(int64(wait))
		fds := []unix.PollFd{{Fd: int32(l.fd), Events: unix.POLLOUT}, {Fd: int32(l.wake), Events: unix.POLLIN}}
		n, err := unix.Ppoll(fds, &ts, nil)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		if fds[1].Revents != 0 {
			var buf [8]byte
			unix.Read(l.wake, buf[:]) // the deadline changed, or Close
		}
		if fds[0].Revents&(unix.POLLOUT|unix.POLLERR|unix.POLLHUP) != 0 || n == 0 && err == nil {
			return nil // the next write says which, or takes what room there is
		}
	}
}

// SetWriteDeadline sets the deadline of writes, also of one waiting now.
func (l *lineFD) SetWriteDeadline(t time.Time) {
	l.mu.Lock()
	l.deadline = t
	l.mu.Unlock()
	// Under the read lock, so the eventfd is never signalled once Close
	// has closed it (its number may belong to another file by then).
	l.use.RLock()
	defer l.use.RUnlock()
	if !l.closed.Load() {
		l.signal()
	}
}

// writeDeadline is the deadline SetWriteDeadline set last.
func (l *lineFD) writeDeadline() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadline
}

func (l *lineFD) signal() {
	one := [8]byte{1}
	unix.Write(l.wake, one[:])
}

// Close ends a write in progress, waits for it to return, and closes the
// descriptor, so no call ever reaches a descriptor number reused by another
// file.
func (l *lineFD) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.signal()
	l.use.Lock()
	defer l.use.Unlock()
	unix.Close(l.wake)
	return unix.Close(l.fd)
}
