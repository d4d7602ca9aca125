// Package device opens, configures and owns framesend's serial line, and
// classifies what goes wrong with it.
//
// Two libraries share the work. go.bug.st/serial opens the port, puts it in
// raw mode, sets the speed and character format (its table of standard
// rates goes through TCSETS, which qemu-user emulates too) and serves Read
// with a timeout. What it lacks is done through golang.org/x/sys/unix on a
// descriptor of framesend's own, opened before go.bug.st/serial's (termios,
// the modem lines and the driver's modes belong to the tty, not to one
// descriptor, so settings made on either apply to both):
//
//   - the flock that keeps the port to one framesend, root included;
//   - DTR and RTS at open, before the line is configured, and reset
//     sequences (TIOCMBIS, TIOCMBIC, TIOCMSET);
//   - flow control and HUPCL, then the read-back of every setting (TCGETS2,
//     which gives the speed the driver really set, or TCGETS where qemu-user
//     lacks it), compared with what was asked;
//   - RS-485 (TIOCSRS485) and low latency (TIOCSSERIAL), whose structs x/sys
//     does not declare, so they are declared here;
//   - writes that honour deadlines, which go.bug.st/serial's blocking Write,
//     uninterruptible even by Close, cannot give: the descriptor is
//     non-blocking and a write waits for room with ppoll(2) on it and an
//     eventfd that a new deadline or Close signals (not the runtime's
//     poller, whose epoll registration wakes the process each time the far
//     end reads, doubling the CPU per frame of small writes); drains that
//     watch the output queue (TIOCOUTQ) against the same deadline instead of
//     blocking in tcdrain; BREAKs (TIOCSBRK, TIOCCBRK) and idle gaps timed to
//     the microsecond around each frame.
//
// Every error from Open and from a Port's methods names the port's path and
// wraps one of the sentinel errors below, so callers can use errors.Is to
// choose a message and an exit code without looking at errno values
// themselves. A line control the driver lacks is ErrUnsupported, with an
// *UnsupportedError saying which Control. A setting out of range (from
// Config.Validate, ParseParity, ParseFlow, and Open before it opens
// anything) is a *ConfigError naming the Config field and the value, for a
// command line to word with its own flag names.
//
// The package is Linux only (termios2, TIOCSRS485, /proc/locks, sysfs):
// its files carry a linux build constraint.
package device
