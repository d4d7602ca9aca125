package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/framesend/framesend/device/devicetest"
)

func TestLineFlagsBadInput(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	p := f.Path()
	cases := []badInput{
		{[]string{"send", "--port", p, "--flow", "cts"}, 2, []string{"--flow", "cts", "none, rtscts or xonxoff"}},
		{[]string{"send", "--port", p, "--dtr", "maybe"}, 2, []string{"--dtr", "maybe", "on or off"}},
		{[]string{"listen", "--port", p, "--rts", "2"}, 2, []string{"--rts", "on or off"}},
		{[]string{"send", "--port", p, "--rs485-rts-on-send"}, 2, []string{"--rs485-rts-on-send needs --rs485"}},
		{[]string{"loopback", "--port", p, "--rs485-delay-after", "2ms"}, 2, []string{"--rs485-delay-after needs --rs485"}},
		{[]string{"send", "--port", p, "--rs485", "--rs485-delay-before", "-1ms"}, 2, []string{"--rs485-delay-before -1ms", "negative"}},
		{[]string{"send", "--port", p, "--rs485", "--rs485-delay-after", "1500us"}, 2, []string{"--rs485-delay-after 1.5ms", "whole milliseconds"}},
		{[]string{"send", "--port", p, "--rs485", "--rs485-delay-after", "1s"}, 2, []string{"100ms"}},
		{[]string{"send", "--port", p, "--reset-seq", "D2|R1"}, 2, []string{"--reset-seq", `"D2"`, "D0|R1|W0.1"}},
		{[]string{"send", "--port", p, "--reset-seq", "D0|W-1"}, 2, []string{"--reset-seq", "negative wait"}},
		{[]string{"send", "--port", p, "--reset-seq", "D0,R1"}, 2, []string{"--reset-seq", "needs 0 or 1"}},
		{[]string{"send", "--port", p, "--break", "-1s"}, 2, []string{"--break -1s", "negative"}},
		{[]string{"send", "--port", p, "--frame-break", "-100us"}, 2, []string{"--frame-break -100µs", "negative"}},
		{[]string{"send", "--port", p, "--mark-after-break", "-1us", "--frame-break", "100us"}, 2, []string{"--mark-after-break -1µs", "negative"}},
		{[]string{"send", "--port", p, "--mark-after-break", "12us"}, 2, []string{"--mark-after-break needs --frame-break"}},
		{[]string{"send", "--port", p, "--gap", "-1ms"}, 2, []string{"--gap -1ms", "negative"}},
		{[]string{"send", "--port", p, "--gap", "-2c"}, 2, []string{"--gap", "negative"}},
		{[]string{"send", "--port", p, "--gap", "3.5x"}, 2, []string{"--gap", "3.5x", "3.5c"}},
		// Character times beyond what a time.Duration holds are too long,
		// not a negative duration.
		{[]string{"send", "--port", p, "--gap", "1e300c"}, 2, []string{`--gap "1e300c" is too long`, "3.5c"}},
		{[]string{"send", "--port", p, "--gap", "Infc"}, 2, []string{`--gap "Infc" is too long`}},
		{[]string{"send", "--port", p, "--gap", "20ms", "--rate", "100"}, 2, []string{"--gap 20ms", "longer than the frame period 10ms", "--rate 100"}},
		{[]string{"send", "--port", p, "--baud", "250000", "--stop-bits", "2", "--frame-size", "513", "--frame-break", "1ms", "--rate", "44"}, 2, []string{"--frame-break 1ms", "longer than the frame period 22.727ms"}},
		{[]string{"send", "--port", p, "--frame-break", "30ms", "--rate", "44"}, 2, []string{"--frame-break 30ms", "frame period"}},
		// A sum past a time.Duration's limit is still longer than the period.
		{[]string{"send", "--port", "/nonexistent", "--frame-break", "2000000h", "--mark-after-break", "2000000h", "--rate", "0.000001"}, 2, []string{"--frame-break 2000000h0m0s", "longer than the frame period"}},
		{[]string{"send", "--port", p, "--write-timeout", "-1s"}, 2, []string{"--write-timeout -1s"}},
		// doctor checks its flags before any check, with or without --port.
		{[]string{"doctor", "--parity", "purple"}, 2, []string{`--parity "purple" is not supported`}},
		{[]string{"doctor", "--port", p, "--data-bits", "4"}, 2, []string{"--data-bits 4 is out of range"}},
		// Run-time refusals by the fake's driver: exit 1, one line.
		{[]string{"send", "--port", p, "--dtr", "on", "--count", "1"}, 1, []string{p, "no modem control lines", "leave --dtr, --rts and --reset-seq out"}},
		{[]string{"send", "--port", p, "--reset-seq", "D0|R1|W0.01|D1|R0", "--count", "1"}, 1, []string{p, "no modem control lines"}},
		{[]string{"send", "--port", p, "--rs485", "--count", "1"}, 1, []string{p, "no RS-485 mode", "leave --rs485 out for a USB-RS-485 adapter"}},
		{[]string{"listen", "--port", p, "--low-latency", "--count", "1"}, 1, []string{p, "no low-latency setting", "leave --low-latency out"}},
		{[]string{"loopback", "--port", p, "--low-latency", "--count", "1"}, 1, []string{p, "no low-latency setting"}},
		{[]string{"send", "--port", p, "--count", "1", "--frame-break", "100us", "--break", "1ms", "--rate", "10"}, 0, []string{"sent 1 frame,"}},
	}
	checkBadInput(t, cases)
}

// sendAndRead runs send with args on a fresh fake and returns its exit
// code, stderr and what reached the fake.
func sendAndRead(t *testing.T, args ...string) (int, string, []byte) {
	t.Helper()
	f := newFake(t, devicetest.Options{})
	stop := make(chan struct{})
	got := drain(f, stop, 300*time.Millisecond)
	code, _, stderr := runIn(context.Background(), append([]string{"send", "--port", f.Path()}, args...)...)
	close(stop)
	return code, stderr, <-got
}

func TestDMX512FramesWithBreaks(t *testing.T) {
	start := time.Now()
	code, stderr, data := sendAndRead(t, "--baud", "250000", "--stop-bits", "2", "--frame-size", "513",
		"--frame-break", "100us", "--mark-after-break", "12us", "--rate", "44", "--count", "22", "--flow", "rtscts")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !bytes.Equal(data, counterBytes(513*22)) {
		t.Errorf("got %d bytes, want the %d-byte counter stream", len(data), 513*22)
	}
	// 22 frames at 44/s are 21 periods apart: a lower bound only.
	if took := time.Since(start); took < 21*time.Second/44 {
		t.Errorf("22 frames at --rate 44 took %v, want at least %v", took, 21*time.Second/44)
	}
}

func TestGapInCharacterTimes(t *testing.T) {
	start := time.Now()
	code, stderr, data := sendAndRead(t, "--baud", "9600", "--gap", "3.5c", "--count", "20")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !bytes.Equal(data, counterBytes(7*20)) {
		t.Errorf("got %d bytes, want the %d-byte counter stream", len(data), 7*20)
	}
	// Each frame's 7 characters and 3.5 of idle line at 9600 8N1.
	min := time.Duration(20*10.5*10) * time.Second / 9600
	if took := time.Since(start); took < min {
		t.Errorf("20 frames with --gap 3.5c at 9600 took %v, want at least %v", took, min)
	}
}

func TestStallWithRTSCTSSaysWhatIsKnownAboutCTS(t *testing.T) {
	f := newFake(t, devicetest.Options{}) // nobody reads: the pty fills
	code, _, stderr := runIn(context.Background(), "send", "--port", f.Path(), "--flow", "rtscts", "--write-timeout", "300ms")
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, stderr)
	}
	for _, want := range []string{"the device stopped accepting data", "--write-timeout", "--flow rtscts", "CTS could not be read"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, stderr)
		}
	}
}
