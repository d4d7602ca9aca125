package source_test

import (
	"context"
	"fmt"
	"github.com/framesend/framesend/internal/testenv"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framesend/framesend/pipeline"
	"github.com/framesend/framesend/pipeline/pipelinetest"
	"github.com/framesend/framesend/source"
)

// runUntilQuiet runs src into a recorder and stops once nothing has been
// written for quiet.
func runUntilQuiet(t *testing.T, src pipeline.Source, quiet time.Duration) (pipeline.Stats, []byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &pipelinetest.Recorder{}
	last := time.Now()
	var mu sync.Mutex
	rec.OnWrite = func(int) { mu.Lock(); last = time.Now(); mu.Unlock() }
	go func() {
		for ctx.Err() == nil {
			time.Sleep(quiet / 4)
			mu.Lock()
			idle := time.Since(last)
			mu.Unlock()
			if idle > quiet {
				cancel()
			}
		}
	}()
	cfg := pipeline.DefaultConfig()
	cfg.Source, cfg.Align, cfg.Overflow = src, pipeline.AlignDatagram, pipeline.OverflowDropNewest
	st, err := pipeline.Run(ctx, rec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st, rec.Bytes()
}

func TestUDPCountsWhatTheKernelDropped(t *testing.T) {
	u, err := source.ListenUDP("127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	granted, asked, _ := u.ReceiveBuffer()
	if granted < asked {
		t.Errorf("receive buffer granted %d bytes, asked %d: the kernel reports twice what it grants", granted, asked)
	}
	conn, err := net.DialUDP("udp", nil, u.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Nobody reads yet: far more than the socket buffer holds.
	const n = 60_000
	for k := range n {
		conn.Write([]byte{byte(k), byte(k >> 8), byte(k >> 16), 3, 4, 5, 6})
	}
	st, got := runUntilQuiet(t, u, 300*time.Millisecond)
	t.Logf("sent %d into a %d-byte buffer: %d read, %d dropped by the kernel", n, granted, st.Datagrams, st.KernelDropped)
	if st.KernelDropped == 0 {
		t.Fatalf("kernel dropped 0 of %d sent into a full socket, %d read: a drop went uncounted", n, st.Datagrams)
	}
	if st.Datagrams+st.KernelDropped != n {
		t.Errorf("read %d + kernel dropped %d = %d, want the %d sent", st.Datagrams, st.KernelDropped, st.Datagrams+st.KernelDropped, n)
	}
	if int64(len(got)) != 7*st.Datagrams || st.Dropped != 0 {
		t.Errorf("wrote %d bytes for %d datagrams read, %d dropped by the queue", len(got), st.Datagrams, st.Dropped)
	}
	if !strings.Contains(st.String(), "datagrams dropped by the kernel") {
		t.Errorf("summary %q does not name the kernel's drops", st.String())
	}
}

func TestUDPBindsTheFamilyAsked(t *testing.T) {
	if _, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
		testenv.Impossible(t, fmt.Sprintf("no IPv6 loopback (the kernel or container has IPv6 off): %v", err))
	}
	cases := []struct {
		bind         string
		from4, from6 bool // whether a datagram from 127.0.0.1 / ::1 arrives
	}{
		{"0.0.0.0:0", true, false},
		{"127.0.0.1:0", true, false},
		{"[::]:0", true, true},
		{"[::1]:0", false, true},
	}
	for _, c := range cases {
		t.Run(c.bind, func(t *testing.T) {
			u, err := source.ListenUDP(c.bind, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			port := u.Addr().(*net.UDPAddr).Port
			for _, from := range []struct {
				addr string
				want bool
			}{{"127.0.0.1", c.from4}, {"::1", c.from6}} {
				conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(from.addr), uint16(port))))
				if err != nil {
					t.Fatal(err)
				}
				conn.Write([]byte(from.addr))
				conn.Close()
			}
			_, got := runUntilQuiet(t, u, 200*time.Millisecond)
			for _, from := range []struct {
				addr string
				want bool
			}{{"127.0.0.1", c.from4}, {"::1", c.from6}} {
				if arrived := strings.Contains(string(got), from.addr); arrived != from.want {
					t.Errorf("bound to %s: datagram from %s arrived = %v, want %v", c.bind, from.addr, arrived, from.want)
				}
			}
		})
	}
}
