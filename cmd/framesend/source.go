package main

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/framesend/framesend/pipeline"
	"github.com/framesend/framesend/source"
)

// sourceHelp lists the sources --source takes.
var sourceHelp = source.Help()

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
