package main

import (
	"bufio"
	"bytes"
	"github.com/framesend/framesend/internal/testenv"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/framesend/framesend/device/devicetest"
)

// TestListenPrintsEachFrameAsItArrives reads listen's stdout through a pipe
// while it runs: each frame's line must come out when the frame arrives,
// not when listen exits.
func TestListenPrintsEachFrameAsItArrives(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	cmd := command(t, "listen", "--port", f.Path())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitOpen(t, cmd.Process.Pid, f.Path())
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for i := range 3 {
		f.Write(counterBytes(7 * (i + 1))[7*i:])
		select {
		case line := <-lines:
			if !strings.Contains(line, "#"+string(rune('0'+i))+" ") {
				t.Errorf("line %d = %q", i, line)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("frame %d arrived, but listen printed nothing in 5 s (still running)", i)
		}
	}
}

// TestListenEndsWhenStdoutCloses: listen | head -1 ends listen cleanly,
// with its summary, as soon as head has gone.
func TestListenEndsWhenStdoutCloses(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := command(t, "listen", "--port", f.Path())
	cmd.Stdout = w
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { cmd.Process.Kill() })
	waitOpen(t, cmd.Process.Pid, f.Path())
	f.Write(counterBytes(7))
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || !strings.Contains(line, "#0 ") {
		t.Fatalf("first line %q, %v", line, err)
	}
	r.Close() // as head -1 does
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
				f.Write(counterBytes(70))
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()
	code := waitExit(t, cmd, 10*time.Second)
	close(done)
	if code != 0 || !strings.Contains(stderr.String(), "stopped: stdout closed") {
		t.Errorf("exit %d, stderr %q: want 0 and a summary saying stdout closed", code, stderr.String())
	}
}

// TestOutputThatCannotBeWrittenFails runs every command that prints to
// stdout with stdout on /dev/full: each must exit 1 naming the failed write.
func TestOutputThatCannotBeWrittenFails(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	cases := [][]string{
		{"man"},
		{"completion", "bash"},
		{"completion", "zsh"},
		{"ports"},
		{"ports", "--json"},
		{"doctor", "--port", f.Path()},
		{"doctor", "--port", f.Path(), "--json"},
		{"--help"},
		{"send", "--help"},
		{"--version"},
	}
	for _, format := range []string{"hex", "jsonl", "raw"} {
		cases = append(cases, []string{"listen", "--port", f.Path(), "--count", "100", "--format", format})
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if args[0] == "listen" {
				f.Write(counterBytes(700))
			}
			full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
			if err != nil {
				testenv.Impossible(t, "no /dev/full: "+err.Error())
			}
			defer full.Close()
			cmd := command(t, args...)
			cmd.Stdout = full
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			cmd.Run()
			code := cmd.ProcessState.ExitCode()
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if code != 1 || !strings.Contains(last, "could not write to stdout: no space left on device") {
				t.Errorf("exit %d, stderr %q: want 1 and a line naming the failed write", code, stderr.String())
			}
		})
	}
}
