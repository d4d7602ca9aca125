//go:build !linux

package source

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/framesend/framesend/pipeline"
)

// UDP is the udp source, which needs Linux: ListenUDP fails elsewhere with
// ErrUDPNeedsLinux.
type UDP struct {
	name string
}

// ListenUDP fails with ErrUDPNeedsLinux.
func ListenUDP(addr string, _ []netip.Prefix, _ *slog.Logger) (*UDP, error) {
	return nil, fmt.Errorf("udp %s: %w", addr, ErrUDPNeedsLinux)
}

// Addr returns nil.
func (u *UDP) Addr() net.Addr { return nil }

// ReceiveBuffer returns zeros.
func (u *UDP) ReceiveBuffer() (granted, asked, rmemMax int) { return 0, 0, 0 }

// Close does nothing.
func (u *UDP) Close() error { return nil }

// Fill fails with ErrUDPNeedsLinux.
func (u *UDP) Fill(context.Context, *pipeline.Block) error { return ErrUDPNeedsLinux }
