//go:build linux && race

package device

import (
	"runtime"
	"unsafe"
)

// raceRead tells the race detector that the kernel reads b, as
// syscall.Write does; lineFD.Write's own write(2) (syscall.Syscall, not
// syscall.Write) would hide that read.
func raceRead(b []byte) {
	if len(b) > 0 {
		runtime.RaceReadRange(unsafe.Pointer(&b[0]), len(b))
	}
}
