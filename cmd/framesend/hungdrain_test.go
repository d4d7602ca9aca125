package main

import (
	"fmt"
	"github.com/framesend/framesend/internal/testenv"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A device that hangs after the last write: the frames are written into the
// kernel's buffer, but the UART never sends them, so the final drain never
// ends. Made real on the machine's 16550 (the 8250 driver), in the UART's
// internal loopback where CTS follows RTS: with --rts off and --flow rtscts
// the driver holds the output. framesend must end with the stall error and
// exit 1 after --write-timeout, not hang. In loopback nothing leaves the
// UART; the test flushes what is held and puts the lines back.
func TestHungDrainOnA16550EndsWithTheStallError(t *testing.T) {
	const port = "/dev/ttyS0"
	if b, err := os.ReadFile("/proc/cmdline"); err == nil && strings.Contains(string(b), "console=ttyS0") {
		testenv.Impossible(t, port+" is the kernel's console; this test needs a spare 16550 (make hil has one)")
	}
	fd, err := unix.Open(port, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		testenv.Impossible(t, fmt.Sprintf("no 16550 to hold a drain on (%s: %v); make hil covers the real drivers", port, err))
	}
	defer unix.Close(fd)
	var ss [72]byte // struct serial_struct; its first int is the UART type
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCGSERIAL, uintptr(unsafe.Pointer(&ss[0]))); e != 0 || *(*int32)(unsafe.Pointer(&ss[0])) != 4 {
		testenv.Impossible(t, fmt.Sprintf("%s is not a 16550A (type %d, %v)", port, *(*int32)(unsafe.Pointer(&ss[0])), e))
	}
	const loop = 0x8000 // TIOCM_LOOP
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCMBIS, loop); err != nil {
		testenv.Impossible(t, fmt.Sprintf("%s: internal loopback refused: %v", port, err))
	}
	defer func() {
		unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCOFLUSH) // what the UART held
		unix.IoctlSetPointerInt(fd, unix.TIOCMBIC, loop)
		unix.IoctlSetPointerInt(fd, unix.TIOCMBIS, unix.TIOCM_DTR|unix.TIOCM_RTS)
	}()
	start := time.Now()
	code, _, stderr := framesend(t, nil, "send", "--port", port, "--baud", "9600", "--count", "10",
		"--flow", "rtscts", "--rts", "off", "--write-timeout", "1s", "--batch", "1")
	took := time.Since(start)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, stderr)
	}
	for _, want := range []string{"drain " + port, "the device stopped accepting data", "--write-timeout", "holding CTS low", "sent 10 frames"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, stderr)
		}
	}
	if took > 20*time.Second {
		t.Errorf("hang-guard: took %v to give up on a 1s write timeout", took)
	}
}
