// Command smoketest checks framesend on real hardware: a USB-serial adapter
// or a Raspberry Pi's UART, wired either to a second port (TX to RX both
// ways, a null-modem cable) or back to itself (a loopback jumper). It runs
// the framesend binary it is given, as a user would, and prints one line
// per check; exit 0 only if all pass. It is not a go test: it needs the
// hardware in front of it.
//
//	smoketest -port /dev/ttyUSB0 -far /dev/ttyUSB1      two adapters, crossed
//	smoketest -port /dev/serial0 -loopback              a Pi, GPIO14 jumpered to GPIO15
//	smoketest -port /dev/ttyAMA0 -far /dev/ttyUSB0      a Pi and an adapter, crossed
//
// make hil runs it inside the x86 guest on the real ftdi_sio and 8250
// drivers, with the two wired together through the host.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Stdout, os.Stderr, os.Args[1:]))
}

type smoke struct {
	framesend, port, far string
	baud, frames         int
	out                  io.Writer
	failed               int
}

func run(stdout, stderr io.Writer, args []string) int {
	fs := flag.NewFlagSet("smoketest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	s := &smoke{out: stdout}
	fs.StringVar(&s.framesend, "framesend", "framesend", "the framesend `binary` to test")
	fs.StringVar(&s.port, "port", "", "the serial port under test (`PATH`)")
	fs.StringVar(&s.far, "far", "", "a second port wired to -port, TX to RX both ways (`PATH`)")
	loop := fs.Bool("loopback", false, "-port's TX is wired to its own RX (a jumper)")
	fs.IntVar(&s.baud, "baud", 115200, "line speed for the frame checks")
	fs.IntVar(&s.frames, "frames", 2000, "frames each way (at 115200 baud, 2000 frames take 1.2 s)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if s.port == "" || (s.far == "") == !*loop {
		fmt.Fprintln(stderr, "smoketest: give -port, and either -far PATH (a second port wired to it) or -loopback")
		return 2
	}
	if _, err := exec.LookPath(s.framesend); err != nil {
		fmt.Fprintf(stderr, "smoketest: %v (give -framesend PATH)\n", err)
		return 2
	}
	s.check("ports", s.ports)
	s.check("doctor", s.doctor)
	if *loop {
		s.check("loopback", s.loopback)
	} else {
		s.check("frames-port-to-far", func() (string, error) { return s.frames1(s.port, s.far) })
		s.check("frames-far-to-port", func() (string, error) { return s.frames1(s.far, s.port) })
	}
	s.check("second-sender-refused", s.busy)
	if s.failed > 0 {
		fmt.Fprintf(stdout, "smoketest: %d checks failed on %s\n", s.failed, s.port)
		return 1
	}
	fmt.Fprintf(stdout, "smoketest: all checks passed on %s\n", s.port)
	return 0
}

func (s *smoke) check(name string, fn func() (string, error)) {
	start := time.Now()
	detail, err := fn()
	if err != nil {
		s.failed++
		fmt.Fprintf(s.out, "FAIL  %-24s %5.1fs  %v\n", name, time.Since(start).Seconds(), err)
		return
	}
	fmt.Fprintf(s.out, "PASS  %-24s %5.1fs  %s\n", name, time.Since(start).Seconds(), detail)
}

// framesend runs framesend to the end and returns its output and exit code.
func (s *smoke) run(timeout time.Duration, args ...string) (string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.framesend, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee) && ctx.Err() == nil:
		return out.String(), ee.ExitCode()
	default:
		return out.String() + fmt.Sprintf("(%v)", err), -1
	}
}

// ports: framesend ports lists the device behind -port, with its driver.
func (s *smoke) ports() (string, error) {
	out, rc := s.run(10*time.Second, "ports", "--json")
	var ports []struct {
		Path, Driver, VID, PID, Serial string
	}
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&ports); err != nil || rc != 0 {
		return "", fmt.Errorf("ports --json: exit %d, %v:\n%s", rc, err, out)
	}
	real, err := filepath.EvalSymlinks(s.port)
	if err != nil {
		return "", err
	}
	for _, p := range ports {
		if p.Path == real {
			if p.Driver == "" {
				return "", fmt.Errorf("%s is listed with no driver", real)
			}
			d := real + " driver " + p.Driver
			if p.VID != "" {
				d += fmt.Sprintf(" USB %s:%s serial %q", p.VID, p.PID, p.Serial)
			}
			return d, nil
		}
	}
	return "", fmt.Errorf("framesend ports does not list %s (%s):\n%s", s.port, real, out)
}

// doctor: no check fails for the port (warnings are shown, not failed).
func (s *smoke) doctor() (string, error) {
	out, rc := s.run(10*time.Second, "doctor", "--port", s.port)
	if rc != 0 {
		return "", fmt.Errorf("doctor: exit %d:\n%s", rc, out)
	}
	return fmt.Sprintf("%d checks, none failed", strings.Count(out, "\n")-strings.Count(out, "fix:")), nil
}

// frames1: send counter frames on from, verified by listen on to.
func (s *smoke) frames1(from, to string) (string, error) {
	n, baud := strconv.Itoa(s.frames), strconv.Itoa(s.baud)
	lineTime := time.Duration(float64(s.frames*7*10) / float64(s.baud) * float64(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 2*lineTime+30*time.Second)
	defer cancel()
	listen := exec.CommandContext(ctx, s.framesend, "listen", "--port", to, "--baud", baud, "--expect", "counter", "--count", n, "--quiet", "--timeout", "5s")
	var lout bytes.Buffer
	listen.Stdout, listen.Stderr = &lout, &lout
	if err := listen.Start(); err != nil {
		return "", err
	}
	time.Sleep(500 * time.Millisecond) // the listener opens and configures its port
	sout, src := s.run(2*lineTime+20*time.Second, "send", "--port", from, "--baud", baud, "--count", n)
	lerr := listen.Wait()
	if src != 0 || lerr != nil {
		return "", fmt.Errorf("send on %s: exit %d:\n%s\nlisten on %s: %v:\n%s", from, src, sout, to, lerr, lout.String())
	}
	want := fmt.Sprintf("counter stream verified (%d frames in order)", s.frames)
	if !strings.Contains(lout.String(), want) {
		return "", fmt.Errorf("listen on %s did not verify %d frames:\n%s", to, s.frames, lout.String())
	}
	return fmt.Sprintf("%s frames at %s baud, %s → %s, verified by listen --expect counter", n, baud, from, to), nil
}

// loopback: framesend loopback through the jumper.
func (s *smoke) loopback() (string, error) {
	out, rc := s.run(2*time.Minute, "loopback", "--port", s.port, "--baud", strconv.Itoa(s.baud), "--count", strconv.Itoa(s.frames), "--window", "16")
	if rc != 0 {
		return "", fmt.Errorf("loopback: exit %d:\n%s", rc, out)
	}
	return strings.TrimSpace(out), nil
}

// busy: a second framesend on the port is refused, naming the first's PID.
func (s *smoke) busy() (string, error) {
	first := exec.Command(s.framesend, "send", "--port", s.port, "--baud", strconv.Itoa(s.baud), "--rate", "10")
	var fout bytes.Buffer
	first.Stdout, first.Stderr = &fout, &fout
	if err := first.Start(); err != nil {
		return "", err
	}
	defer func() {
		first.Process.Signal(os.Interrupt)
		first.Wait()
	}()
	time.Sleep(time.Second)
	out, rc := s.run(10*time.Second, "send", "--port", s.port, "--count", "1")
	pid := fmt.Sprintf("PID %d", first.Process.Pid)
	if rc != 1 || !strings.Contains(out, pid) {
		return "", fmt.Errorf("second sender: exit %d, %q; want exit 1 naming %s", rc, strings.TrimSpace(out), pid)
	}
	return strings.TrimSpace(out), nil
}
