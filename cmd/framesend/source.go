package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framesend/framesend/pipeline"
	"github.com/framesend/framesend/source"
)

const sourceHelp = "counter, stdin, file:PATH, hex:PATH (hex:- for stdin), udp:[HOST:]PORT or mqtt[s]://[USER@]HOST[:PORT]/TOPIC"

// opened is an opened --source with what the rest of send needs to know.
type opened struct {
	src      pipeline.Source
	datagram bool // the source has datagram boundaries (hex, udp, mqtt)
	mqtt     *source.MQTT
	frames   int64  // frames it will give, if known, else 0
	close    func() // releases what was opened
}

// openSource parses spec and opens the source. Mistakes in the spec and bad
// hex are usage errors; files and sockets that cannot be opened are
// failures.
func openSource(ctx context.Context, spec string, stdin io.Reader, fs int, align pipeline.Align, partial pipeline.Partial, allow []netip.Prefix, log *slog.Logger) (*opened, error) {
	kind, arg, _ := strings.Cut(spec, ":")
	noop := func() {}
	switch kind {
	case "counter":
		if arg != "" {
			break
		}
		return &opened{src: &pipeline.Counter{}, close: noop}, nil
	case "stdin":
		if arg != "" {
			break
		}
		r, restore := pollable(stdin)
		return &opened{src: &source.Reader{R: r}, close: restore}, nil
	case "file":
		if arg == "" {
			return nil, usagef("--source file: needs a path, as in file:capture.bin")
		}
		f, err := openFile(ctx, arg)
		if err != nil {
			return nil, err
		}
		s := &opened{src: &source.Reader{R: f}, close: func() { f.Close() }}
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			s.frames = streamFrames(fi.Size(), fs, partial)
		}
		return s, nil
	case "hex":
		if arg == "" {
			return nil, usagef("--source hex: needs a path, as in hex:frames.txt, or hex:- for stdin")
		}
		if arg == "-" {
			r, restore := pollable(stdin)
			return &opened{src: source.NewHex(r, "stdin"), datagram: true, close: restore}, nil
		}
		f, err := openFile(ctx, arg)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		// A file is checked whole before anything is sent; a stop
		// interrupts the reading of a FIFO.
		stopRead := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Unix(1, 0)) })
		datagrams, err := source.ParseHex(f, arg)
		stopRead()
		if err != nil && ctx.Err() != nil {
			return nil, errStoppedAtStart
		}
		if err != nil {
			var herr *source.HexError
			if errors.As(err, &herr) {
				return nil, usageError{err}
			}
			return nil, failure{err}
		}
		s := &opened{src: &source.List{Datagrams: datagrams}, datagram: true, close: noop}
		s.frames = listFrames(datagrams, fs, align, partial)
		return s, nil
	case "udp":
		addr, err := udpAddress(arg)
		if err != nil {
			return nil, err
		}
		u, err := source.ListenUDP(addr, allow, log)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, failure{fmt.Errorf("udp %s: address already in use: another program is listening there; pick another port", addr)}
			}
			if errors.Is(err, syscall.EADDRNOTAVAIL) {
				return nil, usagef("--source udp:%s: %s is not an address of this machine", arg, addr)
			}
			return nil, failure{fmt.Errorf("udp %s: %w", addr, err)}
		}
		a := u.Addr().(*net.UDPAddr)
		if a.IP.IsUnspecified() {
			log.Warn("udp: listening on every interface: any host that can reach this machine can write to the serial port; use --allow-from to limit senders", "addr", a.String())
		}
		granted, asked, rmemMax := u.ReceiveBuffer()
		log.Info("udp: listening for datagrams", "addr", a.String(), "receive_buffer", granted, "rmem_max", rmemMax)
		if granted < 2*asked {
			// The kernel reports twice what it grants (the other half is
			// its bookkeeping): this is less than asked for.
			log.Warn("udp: the kernel granted a smaller receive buffer than asked for, so a burst that arrives while framesend is busy may be dropped by the kernel (counted as kernel_dropped); raise the cap with sysctl -w net.core.rmem_max="+strconv.Itoa(asked),
				"receive_buffer", granted, "asked", asked, "rmem_max", rmemMax)
		}
		return &opened{src: u, datagram: true, close: func() { u.Close() }}, nil
	}
	return nil, usagef("--source %q is not a source: use %s", spec, sourceHelp)
}

// udpAddress turns "PORT" or "HOST:PORT" into a host:port to bind. A port
// alone binds to loopback only: the serial device should not become
// reachable from the network unless asked for by name.
func udpAddress(arg string) (string, error) {
	if arg == "" {
		return "", usagef("--source udp: needs a port, as in udp:9000 (loopback) or udp:0.0.0.0:9000 (every interface)")
	}
	host, port := "127.0.0.1", arg
	if i := strings.LastIndex(arg, ":"); i >= 0 {
		host, port = strings.Trim(arg[:i], "[]"), arg[i+1:]
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", usagef("--source udp:%s: %q is not a port: use 0 to 65535", arg, port)
	}
	if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
		if _, err := net.LookupHost(host); err != nil {
			return "", usagef("--source udp:%s: %q is not an address of this machine: use an IP such as 127.0.0.1 or 0.0.0.0", arg, host)
		}
	}
	return net.JoinHostPort(host, port), nil
}

// parseAllow reads --allow-from: networks (CIDR) or single addresses,
// separated by commas.
func parseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, usagef("--allow-from %q: %q is not a network or address, such as 192.168.1.0/24 or 10.0.0.5", s, part)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// errStoppedAtStart is a stop that came before the source was open: not a
// failure.
var errStoppedAtStart = errors.New("stopped before the source was open")

// openFile opens a file source. Opening a FIFO waits for a writer, so it is
// done aside, and a stop ends the wait.
func openFile(ctx context.Context, path string) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	done := make(chan result, 1)
	go func() {
		f, err := os.Open(path)
		done <- result{f, err}
	}()
	var f *os.File
	var err error
	select {
	case r := <-done:
		f, err = r.f, r.err
	case <-ctx.Done():
		// The open goes on waiting for a writer; if one comes, close it.
		go func() {
			if r := <-done; r.f != nil {
				r.f.Close()
			}
		}()
		return nil, errStoppedAtStart
	}
	switch {
	case err == nil:
		if fi, serr := f.Stat(); serr == nil && fi.IsDir() {
			f.Close()
			return nil, failure{fmt.Errorf("open %s: is a directory: --source file: and hex: take a file", path)}
		}
		return f, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, failure{fmt.Errorf("open %s: no such file", path)}
	case errors.Is(err, fs.ErrPermission):
		return nil, failure{fmt.Errorf("open %s: permission denied: the file is not readable by this user", path)}
	}
	return nil, failure{err}
}

// pollable returns stdin in a form whose reads a stop can interrupt. A pipe,
// FIFO or terminal is opened again through /proc/self/fd, which makes an
// open file description of framesend's own, and that one is made
// non-blocking so Go's poller serves it. The shell's description is never
// changed, so nothing is left to restore however framesend ends (a second
// Ctrl-C, kill -9). Where stdin cannot be opened again (a socket), it is
// read as it is, blocking: a stop then waits for the read in progress. The
// returned func releases what was opened; it must be called.
func pollable(stdin io.Reader) (io.Reader, func()) {
	f, ok := stdin.(*os.File)
	if !ok {
		return stdin, func() {}
	}
	if fi, err := f.Stat(); err != nil || fi.Mode().IsRegular() {
		return stdin, func() {}
	}
	path := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return stdin, func() {}
	}
	nb := os.NewFile(uintptr(fd), f.Name())
	return nb, func() { nb.Close() }
}

// streamFrames is how many frames n bytes make under a partial policy.
func streamFrames(n int64, fs int, partial pipeline.Partial) int64 {
	frames := n / int64(fs)
	if n%int64(fs) != 0 && partial == pipeline.PartialPad {
		frames++
	}
	return frames
}

func listFrames(datagrams [][]byte, fs int, align pipeline.Align, partial pipeline.Partial) int64 {
	if align == pipeline.AlignStream {
		var n int64
		for _, d := range datagrams {
			n += int64(len(d))
		}
		return streamFrames(n, fs, partial)
	}
	var frames int64
	for _, d := range datagrams {
		frames += streamFrames(int64(len(d)), fs, partial)
	}
	return frames
}

// parseQueue reads --queue: a size with its unit (B, KiB or K, MiB or M,
// GiB or G, and KB, MB, GB in powers of 1000), or a bare number of frames.
func parseQueue(s string, frameSize int) (int, error) {
	bad := func() (int, error) {
		return 0, usagef("--queue %q is not a size or a number of frames: use a size with its unit, such as 4MiB, 512KiB or 65536B, or a number of frames, such as 10000", s)
	}
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return bad()
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil { // digits only: out of range
		return 0, usagef("--queue %q is too large: use at most 1GiB", s)
	}
	if n < 1 {
		return 0, usagef("--queue %s leaves no room: use at least one frame, or a size such as 1MiB", s)
	}
	unit := strings.TrimSpace(t[i:])
	mult := int64(0)
	switch strings.ToLower(unit) {
	case "":
		mult = int64(frameSize) // frames
	case "b":
		mult = 1
	case "k", "kib":
		mult = 1 << 10
	case "m", "mib":
		mult = 1 << 20
	case "g", "gib":
		mult = 1 << 30
	case "kb":
		mult = 1000
	case "mb":
		mult = 1000_000
	case "gb":
		mult = 1000_000_000
	default:
		return bad()
	}
	if n > pipeline.MaxQueueBytes/mult {
		return 0, usagef("--queue %q is too large: use at most 1GiB", s)
	}
	return int(n * mult), nil
}
