package source

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"github.com/framesend/framesend/pipeline"
)

// ReceiveBuffer is the socket receive buffer framesend asks for: room for a
// burst while the device is busy. Without CAP_NET_ADMIN the kernel grants
// at most net.core.rmem_max.
const ReceiveBuffer = 4 << 20

// Describe says that u is a live source of messages: datagrams arrive
// whether or not the queue has room.
func (u *UDP) Describe() pipeline.Traits {
	return pipeline.Traits{Name: u.name, Datagrams: true, Messages: true, Live: true}
}

// udpKind listens for UDP datagrams.
var udpKind = kind{
	name:   "udp",
	usage:  "udp:[HOST:]PORT",
	traits: (&UDP{}).Describe(),
	parse: func(s *Spec) (err error) {
		s.addr, err = udpAddress(s.spec, s.Arg)
		return err
	},
	open: openUDP,
}

// udpAddress turns "PORT" or "HOST:PORT" into a host:port to bind. A port
// alone binds to loopback only: the serial device should not become
// reachable from the network unless asked for by name.
func udpAddress(spec, arg string) (string, error) {
	if arg == "" {
		return "", specErrorf(spec, "udp: needs a port, as in udp:9000 (loopback) or udp:0.0.0.0:9000 (every interface)")
	}
	host, port := "127.0.0.1", arg
	if i := strings.LastIndex(arg, ":"); i >= 0 {
		host, port = strings.Trim(arg[:i], "[]"), arg[i+1:]
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", specErrorf(spec, "udp:%s: %q is not a port: use 0 to 65535", arg, port)
	}
	if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
		if _, err := net.LookupHost(host); err != nil {
			return "", specErrorf(spec, "udp:%s: %q is not an address of this machine: use an IP such as 127.0.0.1 or 0.0.0.0", arg, host)
		}
	}
	return net.JoinHostPort(host, port), nil
}

// openUDP binds the socket and logs where it listens, warning when the
// kernel grants a smaller receive buffer than asked for.
func openUDP(_ context.Context, s *Spec, o Options) (*Opened, error) {
	u, err := ListenUDP(s.addr, o.Allow, o.Logger)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("udp %s: address already in use: another program is listening there; pick another port", s.addr)
		}
		if errors.Is(err, syscall.EADDRNOTAVAIL) {
			return nil, specErrorf(s.spec, "udp:%s: %s is not an address of this machine", s.Arg, s.addr)
		}
		if errors.Is(err, ErrUDPNeedsLinux) {
			return nil, err
		}
		return nil, fmt.Errorf("udp %s: %w", s.addr, err)
	}
	u.name = s.spec
	log := o.Logger
	a := u.Addr().(*net.UDPAddr)
	granted, asked, rmemMax := u.ReceiveBuffer()
	log.Info("udp: listening for datagrams", "addr", a.String(), "receive_buffer", granted, "rmem_max", rmemMax)
	if granted < 2*asked {
		// The kernel reports twice what it grants (the other half is
		// its bookkeeping): this is less than asked for.
		log.Warn("udp: the kernel granted a smaller receive buffer than asked for, so a burst that arrives while framesend is busy may be dropped by the kernel (counted as kernel_dropped); raise the cap with sysctl -w net.core.rmem_max="+strconv.Itoa(asked),
			"receive_buffer", granted, "asked", asked, "rmem_max", rmemMax)
	}
	return opened(s, u, func() { u.Close() }), nil
}

// ErrUDPNeedsLinux is the udp source asked for on another system: it reads
// its socket with Linux's recvmmsg and learns of kernel drops through
// SO_RXQ_OVFL.
var ErrUDPNeedsLinux = errors.New("the udp source needs Linux (recvmmsg, SO_RXQ_OVFL)")
