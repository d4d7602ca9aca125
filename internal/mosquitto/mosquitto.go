// Package mosquitto runs a Mosquitto broker of framesend's own on a free
// loopback port, for the benchmarks (and any harness that needs a real
// broker). It is not a test package: the bench commands use it.
package mosquitto

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Broker is a running mosquitto.
type Broker struct {
	cmd  *exec.Cmd
	port int
	dir  string
}

// Start runs the mosquitto binary bin on a free port of 127.0.0.1, with
// anonymous access, no persistence and the extra configuration lines, and
// returns once it accepts connections (or after 10 s, with an error).
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
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n%s\n", port, extra)
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(bin, "-c", path)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	b := &Broker{cmd: cmd, port: port, dir: dir}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", b.Addr()); err == nil {
			c.Close()
			return b, nil
		}
	}
	b.Stop()
	return nil, fmt.Errorf("mosquitto did not listen on %s", b.Addr())
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

// Pid is the broker's process ID.
func (b *Broker) Pid() int { return b.cmd.Process.Pid }

// Stop ends the broker with SIGTERM, waits for it and removes its files.
// Stopping a stopped broker does nothing.
func (b *Broker) Stop() {
	if b.cmd.ProcessState != nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	b.cmd.Wait()
	os.RemoveAll(b.dir)
}
