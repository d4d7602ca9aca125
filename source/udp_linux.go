//go:build linux

package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/framesend/framesend/internal/warnlimit"
	"github.com/framesend/framesend/pipeline"
)

// UDP is a datagram source: each UDP datagram received is one datagram.
// One wake-up takes every datagram waiting on the socket, up to a batch
// (recvmmsg), so a burst is drained from the socket faster than a producer
// can fill it, and the datagrams are packed into as few blocks as fit. It
// runs until ctx is done.
type UDP struct {
	name      string // what errors call it
	conn      *net.UDPConn
	raw       syscall.RawConn
	allow     []netip.Prefix
	logger    *slog.Logger
	refused   int64           // written by Fill only
	warned    warnlimit.Limit // for the refused-datagram warning
	interrupt interrupt

	asked, granted, rmemMax int

	// kernelDropped is the socket's count of datagrams the kernel dropped
	// (SO_RXQ_OVFL, and SO_MEMINFO at the end).
	kernelDropped atomic.Int64

	// The batch: slot i of scratch receives datagram i, named by names[i],
	// with control data in oob. Fill hands out datagrams next..got-1.
	scratch []byte
	hdrs    []unix.Mmsghdr
	iovs    []unix.Iovec
	names   []unix.RawSockaddrInet6
	oob     []byte
	got     int
	next    int
	// For the receive callback, bound once so that a read allocates
	// nothing.
	recv  func(fd uintptr) bool
	wait  bool
	rerr  syscall.Errno
	rdone bool
}

// Batch receive sizes: up to udpBatch datagrams per system call, each in a
// slot large enough for any UDP datagram. The slots are only touched as
// far as datagrams fill them, so small datagrams cost a page per slot.
const (
	udpBatch = 64
	udpSlot  = 65536
)

var oobSpace = unix.CmsgSpace(4)

// ListenUDP binds addr (host:port) and returns the source. An IPv4 address
// binds IPv4 only; [::] binds both IPv6 and IPv4; another IPv6 address
// binds IPv6 only. If allow is not empty, datagrams from addresses outside
// it are refused and counted. The caller closes the source.
func ListenUDP(addr string, allow []netip.Prefix, logger *slog.Logger) (*UDP, error) {
	network := "udp"
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		switch a := ap.Addr(); {
		case a.Is4():
			network = "udp4"
		case a.Is6() && !a.IsUnspecified():
			network = "udp6"
		}
	}
	ua, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		return nil, fmt.Errorf("udp %s: %w", addr, err)
	}
	conn, err := net.ListenUDP(network, ua)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	u := &UDP{conn: conn, allow: allow, logger: logger, asked: ReceiveBuffer}
	if u.raw, err = conn.SyscallConn(); err != nil {
		conn.Close()
		return nil, err
	}
	u.rmemMax = readSysctl("/proc/sys/net/core/rmem_max")
	var serr error
	u.raw.Control(func(fd uintptr) {
		// Past rmem_max where allowed (CAP_NET_ADMIN), else up to it.
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, u.asked) != nil {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, u.asked)
		}
		u.granted, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		// Every datagram then says how many the kernel has dropped so far.
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
	})
	if serr != nil {
		conn.Close()
		return nil, fmt.Errorf("udp %s: SO_RXQ_OVFL: %w", addr, serr)
	}
	u.scratch = make([]byte, udpBatch*udpSlot)
	u.hdrs = make([]unix.Mmsghdr, udpBatch)
	u.iovs = make([]unix.Iovec, udpBatch)
	u.names = make([]unix.RawSockaddrInet6, udpBatch)
	u.oob = make([]byte, udpBatch*oobSpace)
	for i := range u.hdrs {
		u.iovs[i].Base = &u.scratch[i*udpSlot]
		u.iovs[i].SetLen(udpSlot)
		h := &u.hdrs[i].Hdr
		h.Iov = &u.iovs[i]
		h.SetIovlen(1)
	}
	u.recv = u.recvmmsg
	return u, nil
}

// readSysctl returns the number in a /proc/sys file, or 0.
func readSysctl(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// Addr returns the address the source listens on.
func (u *UDP) Addr() net.Addr { return u.conn.LocalAddr() }

// ReceiveBuffer returns the socket receive buffer the kernel granted, as
// it reports it (SO_RCVBUF: twice the bytes asked for, the other half
// being its bookkeeping), the size asked for, and net.core.rmem_max, the
// cap for a process without CAP_NET_ADMIN (0 if unknown).
func (u *UDP) ReceiveBuffer() (granted, asked, rmemMax int) {
	return u.granted, u.asked, u.rmemMax
}

// Close stops listening.
func (u *UDP) Close() error { return u.conn.Close() }

// BlockSize makes room for the largest UDP datagram.
func (u *UDP) BlockSize() int { return pipeline.MaxDatagram }

// Refused returns how many datagrams were refused: from senders outside the
// allowed networks, or truncated because they were larger than a block.
func (u *UDP) Refused() int64 { return u.refused }

// KernelDropped returns how many datagrams the kernel dropped because the
// socket's receive buffer was full, as last learnt: from the latest
// datagram read, and at the end of the run from the socket itself.
func (u *UDP) KernelDropped() int64 { return u.kernelDropped.Load() }

// Fill waits for the next datagram that is allowed, adds it to b, and then
// every other datagram already waiting, as long as they fit. It returns
// ctx's error once ctx is done.
func (u *UDP) Fill(ctx context.Context, b *pipeline.Block) error {
	u.interrupt.watch(ctx, u.conn)
	for {
		for ; u.next < u.got; u.next++ {
			h := &u.hdrs[u.next]
			n := int(h.Len)
			from := u.from(u.next)
			if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
				u.refuse("datagram larger than a queue block", from, n)
				continue
			}
			if !u.allowed(from.Addr()) {
				u.refuse("sender not in the allowed networks", from, n)
				continue
			}
			if (b.Len() > 0 || b.Datagrams() > 0) && !b.Fits(n) {
				return nil
			}
			b.CommitDatagram(copy(b.DatagramSpare(), u.scratch[u.next*udpSlot:u.next*udpSlot+n]))
		}
		wait := b.Len() == 0 && b.Datagrams() == 0
		err := u.read(wait)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil:
			u.settle()
			return ctx.Err()
		default:
			return fmt.Errorf("udp %v: %w", u.conn.LocalAddr(), err)
		}
		if u.got == 0 { // nothing more waiting
			return nil
		}
	}
}

// read receives the next batch. With wait, it blocks until at least one
// datagram is there; without, it takes what is there, perhaps nothing.
func (u *UDP) read(wait bool) error {
	for i := range u.hdrs {
		h := &u.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&u.names[i]))
		h.Namelen = unix.SizeofSockaddrInet6
		h.Control = &u.oob[i*oobSpace]
		h.SetControllen(oobSpace)
		h.Flags = 0
	}
	u.got, u.next, u.wait, u.rerr, u.rdone = 0, 0, wait, 0, false
	if err := u.raw.Read(u.recv); err != nil {
		return err
	}
	if u.rerr != 0 {
		return os.NewSyscallError("recvmmsg", u.rerr)
	}
	if u.got > 0 {
		u.noteDrops(u.got - 1)
	}
	return nil
}

// recvmmsg is the callback of raw.Read: false asks to wait until the
// socket is readable.
func (u *UDP) recvmmsg(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&u.hdrs[0])), uintptr(len(u.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			u.got = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return !u.wait
		}
		u.rerr = e
		return true
	}
}

// from returns the sender of datagram i of the batch.
func (u *UDP) from(i int) netip.AddrPort {
	sa := &u.names[i]
	switch sa.Family {
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), netPort(&s4.Port))
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), netPort(&sa.Port))
	}
	return netip.AddrPort{}
}

// netPort reads a port stored in network byte order.
func netPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// noteDrops reads the SO_RXQ_OVFL count from datagram i's control data.
// The kernel sends it only once it has dropped something.
func (u *UDP) noteDrops(i int) {
	h := &u.hdrs[i].Hdr
	oob := u.oob[i*oobSpace : (i+1)*oobSpace]
	if int(h.Controllen) < unix.CmsgLen(4) {
		return
	}
	c := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	if c.Level == unix.SOL_SOCKET && c.Type == unix.SO_RXQ_OVFL {
		u.kernelDropped.Store(int64(*(*uint32)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))))
	}
}

// settle reads the kernel's drop count from the socket itself
// (SO_MEMINFO), for drops after the last datagram read.
func (u *UDP) settle() {
	var info [unix.SK_MEMINFO_VARS]uint32
	u.raw.Control(func(fd uintptr) {
		size := uint32(unsafe.Sizeof(info))
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO, uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
		if e == 0 && size > 4*unix.SK_MEMINFO_DROPS {
			u.kernelDropped.Store(max(u.kernelDropped.Load(), int64(info[unix.SK_MEMINFO_DROPS])))
		}
	})
}

func (u *UDP) allowed(a netip.Addr) bool {
	if len(u.allow) == 0 {
		return true
	}
	a = a.Unmap()
	for _, p := range u.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// refuse counts a refused datagram and warns at most once a second.
func (u *UDP) refuse(why string, from netip.AddrPort, n int) {
	u.refused++
	if u.warned.Allow() {
		u.logger.Warn("udp: datagram refused", "reason", why, "from", from.String(), "bytes", n, "refused_total", u.refused)
	}
}
