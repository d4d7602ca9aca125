package peakrss

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
)

func TestOf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("VmHWM is in Linux's /proc only")
	}
	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = 1 // touched, so resident
	}
	self := Of(0)
	if self < 64<<10 {
		t.Errorf("Of(0) = %d KiB after touching 64 MiB, want at least %d", self, 64<<10)
	}
	runtime.KeepAlive(big)
	if got := Of(os.Getpid()); got < self {
		t.Errorf("Of(own pid) = %d KiB, want at least Of(0)'s %d", got, self)
	}
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Skipf("no sleep(1) to measure: %v", err)
	}
	defer cmd.Process.Kill()
	if got := Of(cmd.Process.Pid); got <= 0 || got >= self {
		t.Errorf("Of(sleep's pid) = %d KiB, want more than 0 and less than this test's %d", got, self)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if got := Of(cmd.Process.Pid); got != 0 {
		t.Errorf("Of(a reaped pid) = %d, want 0", got)
	}
}
