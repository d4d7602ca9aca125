// Package mosquitto runs a Mosquitto broker of framesend's own on a free
// loopback port, for the benchmarks and the tests (and any harness that
// needs a real broker). It is not a test package: the bench commands use it.
package mosquitto

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Broker is a mosquitto of its own: a port, a configuration file and a
// directory for its persistence, and the process while it runs.
type Broker struct {
	bin  string
	conf string // the configuration file
	port int
	dir  string
	cmd  *exec.Cmd // nil while halted
}

// Start runs the mosquitto binary bin on a free port of 127.0.0.1 with the
// extra configuration lines, and returns once it accepts connections (or
// after 10 s, with an error). Anonymous clients are allowed unless extra
// says allow_anonymous itself; persistence is off unless extra turns it on
// ("persistence true"), and then its file lives in the broker's directory,
// so Restart finds it again.
func Start(bin, extra string) (*Broker, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "framesend-mosquitto-*")
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf("listener %d 127.0.0.1\npersistence_location %s/\n%s\n", port, dir, extra)
	if !strings.Contains(extra, "allow_anonymous") {
		conf += "allow_anonymous true\n"
	}
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	b := &Broker{bin: bin, conf: filepath.Join(dir, "mosquitto.conf"), port: port, dir: dir}
	if err := os.WriteFile(b.conf, []byte(conf), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := b.run(); err != nil {
		b.Stop()
		return nil, err
	}
	return b, nil
}

// run starts the process and waits until it listens.
func (b *Broker) run() error {
	log, err := os.OpenFile(b.logPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer log.Close() // the process has its own copy
	b.cmd = exec.Command(b.bin, "-c", b.conf)
	b.cmd.Stdout, b.cmd.Stderr = log, log
	if err := b.cmd.Start(); err != nil {
		b.cmd = nil
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", b.Addr()); err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("mosquitto did not listen on %s within 10s; its log:\n%s", b.Addr(), b.Log())
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

// Port is the broker's port on 127.0.0.1.
func (b *Broker) Port() int { return b.port }

// Pid is the broker's process ID.
func (b *Broker) Pid() int { return b.cmd.Process.Pid }

// Log returns what the broker has logged so far.
func (b *Broker) Log() string {
	out, _ := os.ReadFile(b.logPath())
	return string(out)
}

func (b *Broker) logPath() string { return filepath.Join(b.dir, "mosquitto.log") }

// Halt ends the broker with SIGTERM and waits for it, keeping its port,
// configuration and files for Restart. Halting a halted broker does nothing.
func (b *Broker) Halt() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	b.cmd.Wait()
	b.cmd = nil
}

// Restart halts the broker if it runs and starts it again on the same port
// with its files, its configuration and the lines more added to it (a
// second listener, say), and returns once it accepts connections.
func (b *Broker) Restart(more string) error {
	b.Halt()
	if more != "" {
		f, err := os.OpenFile(b.conf, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(f, more)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return b.run()
}

// Stop ends the broker as Halt does and removes its files. Stopping a
// stopped broker does nothing.
func (b *Broker) Stop() {
	b.Halt()
	os.RemoveAll(b.dir)
}
