package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// Refuser is implemented by sources that refuse some of their input (a
// datagram from a sender not allowed, or too large to queue); Run reports the
// count in Stats.Refused.
type Refuser interface {
	Refused() int64
}

// UDP is a datagram source: each UDP datagram received is one datagram.
// It runs until ctx is done.
type UDP struct {
	conn      *net.UDPConn
	allow     []netip.Prefix
	logger    *slog.Logger
	refused   int64 // written by Fill only
	warned    time.Time
	interrupt interrupt
}

// ListenUDP binds addr (host:port) and returns the source. If allow is not
// empty, datagrams from addresses outside it are refused and counted. The
// caller closes the source.
func ListenUDP(addr string, allow []netip.Prefix, logger *slog.Logger) (*UDP, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("udp %s: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	// Room for bursts while the device is busy; the kernel caps it at
	// net.core.rmem_max.
	conn.SetReadBuffer(4 << 20)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &UDP{conn: conn, allow: allow, logger: logger}, nil
}

// Addr returns the address the source listens on.
func (u *UDP) Addr() net.Addr { return u.conn.LocalAddr() }

// Close stops listening.
func (u *UDP) Close() error { return u.conn.Close() }

// BlockSize makes room for the largest UDP datagram.
func (u *UDP) BlockSize() int { return MaxDatagram }

// Refused returns how many datagrams were refused: from senders outside the
// allowed networks, or truncated because they were larger than a block.
func (u *UDP) Refused() int64 { return u.refused }

// Fill waits for the next datagram that is allowed and adds it to b. It
// returns ctx's error once ctx is done.
func (u *UDP) Fill(ctx context.Context, b *Block) error {
	u.interrupt.watch(ctx, u.conn)
	for {
		n, _, flags, from, err := u.conn.ReadMsgUDPAddrPort(b.DatagramSpare(), nil)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("udp %v: %w", u.conn.LocalAddr(), err)
		}
		if flags&syscall.MSG_TRUNC != 0 {
			u.refuse("datagram larger than a queue block", from, n)
			continue
		}
		if !u.allowed(from.Addr()) {
			u.refuse("sender not in --allow-from", from, n)
			continue
		}
		b.CommitDatagram(n)
		return nil
	}
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
	if now := time.Now(); now.Sub(u.warned) >= time.Second {
		u.logger.Warn("udp: datagram refused", "reason", why, "from", from.String(), "bytes", n, "refused_total", u.refused)
		u.warned = now
	}
}
