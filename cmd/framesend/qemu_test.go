package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/framesend/framesend/device/devicetest"
)

// Each Raspberry Pi build, run under qemu-user, sends 20,000 frames to the
// pty fake; the far end checks every byte.
func TestRaspberryPiBuildsUnderQemu(t *testing.T) {
	builds := []struct {
		name, goarch, goarm, qemu string
		qemuArgs                  []string
	}{
		{"armv6 (Pi Zero, 1) on an ARM1176", "arm", "6", "qemu-arm", []string{"-cpu", "arm1176"}},
		{"armv7 (Pi 2, 3)", "arm", "7", "qemu-arm", nil},
		{"arm64 (Pi 3, 4, 5)", "arm64", "", "qemu-aarch64", nil},
	}
	for _, b := range builds {
		t.Run(b.name, func(t *testing.T) {
			qemu := requireTool(t, b.qemu, "qemu-user")
			bin := filepath.Join(t.TempDir(), "framesend-"+b.goarch+b.goarm)
			build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
			build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+b.goarch, "GOARM="+b.goarm)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, out)
			}
			f := newFake(t, devicetest.Options{})
			stop := make(chan struct{})
			got := drain(f, stop, 300*time.Millisecond)
			args := append(append([]string{}, b.qemuArgs...), bin, "send", "--port", f.Path(), "--count", "20000")
			cmd := exec.Command(qemu, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			close(stop)
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", b.qemu, bin, err, stderr.String())
			}
			if data, want := <-got, counterBytes(7*20000); !bytes.Equal(data, want) {
				t.Fatalf("far end got %d bytes, want %d counter bytes (first difference at %d)", len(data), len(want), firstDiff(data, want))
			}
			t.Log(stderr.String())
		})
	}
}
