// Package peakrss reads a process's peak resident memory, which framesend's
// summary reports and its benchmarks compare.
package peakrss

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Of returns the peak resident memory of process pid in KiB (VmHWM in
// /proc/PID/status), or 0 where /proc does not say. Pid 0 is this process.
func Of(pid int) int64 {
	file := "/proc/self/status"
	if pid != 0 {
		file = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
