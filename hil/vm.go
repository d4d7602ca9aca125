package hil

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Machine describes one QEMU guest. The console is the guest's stdin and
// stdout, seen through VM.Expect and VM.Send; every chardev named in Ptys
// is a host pseudo-terminal the harness opens (raw) before the guest runs.
type Machine struct {
	Arch    string            // amd64 or arm64
	Kernel  string            // -kernel: vmlinux (PVH) on amd64, vmlinuz on arm64
	Initrd  string            // -initrd
	Append  string            // the kernel command line
	Memory  string            // -m; default 512M
	Ptys    []string          // chardev ids backed by host ptys
	Devices []string          // -device arguments, in order
	FwCfg   map[string]string // opt/NAME -> host file, readable by the guest
	Console string            // how the console chardev "con" attaches: "serial" (the first -serial) or "pci-serial"
	Type    string            // QEMU's -M; default pc (amd64) or virt (arm64)
	DTB     string            // -dtb, for boards such as raspi3b
	Log     string            // where to keep the whole console log; "" for a temp file
	Extra   []string          // more QEMU arguments, such as -serial chardev:ID
}

// VM is a running QEMU. Start returns it paused, with its ptys open; Cont
// lets it run. Close kills what is left of it.
type VM struct {
	cmd   *exec.Cmd
	qmp   *qmp
	dir   string
	stdin io.WriteCloser
	ptys  map[string]*os.File
	paths map[string]string

	mu     sync.Mutex
	cond   *sync.Cond
	lines  []string
	cursor int
	eof    bool
	log    *os.File
	exited chan struct{}
	err    error // QEMU's exit
}

// QEMU returns the qemu-system binary for arch.
func QEMU(arch string) string {
	if arch == "arm64" {
		return "qemu-system-aarch64"
	}
	return "qemu-system-x86_64"
}

// Start launches the machine paused (-S) under TCG, connects QMP, and
// opens every pty chardev: QEMU's usb-serial only attaches while the
// host side of its pty is open.
func Start(ctx context.Context, m Machine) (*VM, error) {
	bin, err := exec.LookPath(QEMU(m.Arch))
	if err != nil {
		return nil, fmt.Errorf("hil: %s not found: %w (apt-get install qemu-system-x86 qemu-system-arm)", QEMU(m.Arch), err)
	}
	dir, err := os.MkdirTemp("", "framesend-hil-")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "qmp.sock")
	mem := m.Memory
	if mem == "" {
		mem = "512M"
	}
	args := []string{"-nodefaults", "-no-user-config", "-display", "none", "-S", "-no-reboot",
		"-accel", "tcg",
		"-kernel", m.Kernel, "-initrd", m.Initrd, "-append", m.Append,
		"-qmp", "unix:" + sock + ",server=on,wait=off",
		"-chardev", "stdio,id=con,signal=off",
	}
	if m.Type == "" {
		// A board (m.Type) has its own memory size and CPU count.
		args = append(args, "-m", mem, "-smp", "1")
	}
	switch {
	case m.Type != "":
		args = append(args, "-M", m.Type)
	case m.Arch == "arm64":
		args = append(args, "-M", "virt", "-cpu", "cortex-a57")
	default:
		args = append(args, "-M", "pc")
	}
	if m.DTB != "" {
		args = append(args, "-dtb", m.DTB)
	}
	if m.Console == "pci-serial" {
		args = append(args, "-device", "pci-serial,chardev=con")
	} else {
		args = append(args, "-serial", "chardev:con")
	}
	for _, id := range m.Ptys {
		args = append(args, "-chardev", "pty,id="+id)
	}
	for _, d := range m.Devices {
		args = append(args, "-device", d)
	}
	args = append(args, m.Extra...)
	for name, file := range m.FwCfg {
		args = append(args, "-fw_cfg", "name=opt/"+name+",file="+file)
	}
	v := &VM{dir: dir, ptys: map[string]*os.File{}, paths: map[string]string{}, exited: make(chan struct{})}
	v.cond = sync.NewCond(&v.mu)
	logPath := m.Log
	if logPath == "" {
		logPath = filepath.Join(dir, "console.log")
	}
	if v.log, err = os.Create(logPath); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	v.cmd = exec.Command(bin, args...)
	v.cmd.Stderr = v.log
	// QEMU goes when the harness goes, however it ends.
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := v.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if v.stdin, err = v.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := v.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("hil: start %s: %w", bin, err)
	}
	go v.readConsole(stdout)
	go func() {
		err := v.cmd.Wait()
		v.mu.Lock()
		v.err = err
		v.mu.Unlock()
		close(v.exited)
	}()
	if v.qmp, err = dialQMP(ctx, sock, v.exited); err != nil {
		v.Close()
		return nil, fmt.Errorf("hil: QMP: %w\n%s", err, v.Tail(20))
	}
	var chardevs []struct {
		Label    string `json:"label"`
		Filename string `json:"filename"`
	}
	if err := v.qmp.call("query-chardev", nil, &chardevs); err != nil {
		v.Close()
		return nil, err
	}
	for _, c := range chardevs {
		if p, ok := strings.CutPrefix(c.Filename, "pty:"); ok {
			v.paths[c.Label] = p
		}
	}
	for _, id := range m.Ptys {
		p, ok := v.paths[id]
		if !ok {
			v.Close()
			return nil, fmt.Errorf("hil: QEMU names no pty for chardev %s", id)
		}
		f, err := openRaw(p)
		if err != nil {
			v.Close()
			return nil, err
		}
		v.ptys[id] = f
	}
	return v, nil
}

// openRaw opens a pty slave and puts it in raw mode, so nothing the guest
// sends is echoed back or changed on the way.
func openRaw(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("hil: open %s: %w", path, err)
	}
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hil: %s: %w", path, err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hil: raw %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// Pty returns the host path of a pty chardev, for the far end to open.
func (v *VM) Pty(id string) string { return v.paths[id] }

// Flush discards what the guest sent on a pty that nobody read, so the
// next far end starts clean.
func (v *VM) Flush(id string) error {
	f, ok := v.ptys[id]
	if !ok {
		return fmt.Errorf("hil: no pty %s", id)
	}
	return unix.IoctlSetInt(int(f.Fd()), unix.TCFLSH, unix.TCIFLUSH)
}

// Bridge wires two pty chardevs together on the host, as a null-modem
// cable between two of the guest's ports: what the guest sends on one
// arrives on the other. It lasts until the VM closes.
func (v *VM) Bridge(a, b string) error {
	fa, fb := v.ptys[a], v.ptys[b]
	if fa == nil || fb == nil {
		return fmt.Errorf("hil: bridge %s and %s: both must be pty chardevs", a, b)
	}
	go io.Copy(fa, fb)
	go io.Copy(fb, fa)
	return nil
}

// Cont lets the paused guest run.
func (v *VM) Cont() error { return v.qmp.call("cont", nil, nil) }

// QMP runs one monitor command, such as device_del, and decodes its return
// value into ret (nil to ignore it).
func (v *VM) QMP(command string, args any, ret any) error {
	return v.qmp.call(command, args, ret)
}

// Unplug removes a device by id and waits until QEMU has let it go.
func (v *VM) Unplug(ctx context.Context, id string) error {
	if err := v.qmp.call("device_del", map[string]string{"id": id}, nil); err != nil {
		return err
	}
	return v.qmp.waitEvent(ctx, "DEVICE_DELETED", id)
}

// Plug adds a device: driver plus properties such as id, chardev, serial.
func (v *VM) Plug(props map[string]string) error {
	args := map[string]string{}
	for k, p := range props {
		args[k] = p
	}
	return v.qmp.call("device_add", args, nil)
}

// Send writes a line to the guest's console.
func (v *VM) Send(line string) error {
	_, err := io.WriteString(v.stdin, line+"\n")
	return err
}

func (v *VM) readConsole(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		l, err := br.ReadString('\n')
		if l != "" {
			v.log.WriteString(l)
			v.mu.Lock()
			v.lines = append(v.lines, strings.TrimRight(l, "\r\n"))
			v.mu.Unlock()
			v.cond.Broadcast()
		}
		if err != nil {
			v.mu.Lock()
			v.eof = true
			v.mu.Unlock()
			v.cond.Broadcast()
			return
		}
	}
}

// Expect waits for a console line containing s, after the line the last
// Expect matched, and returns it. It fails when the guest stops first.
func (v *VM) Expect(ctx context.Context, s string) (string, error) {
	stop := context.AfterFunc(ctx, func() {
		v.mu.Lock()
		v.cond.Broadcast()
		v.mu.Unlock()
	})
	defer stop()
	v.mu.Lock()
	defer v.mu.Unlock()
	for {
		for ; v.cursor < len(v.lines); v.cursor++ {
			if strings.Contains(v.lines[v.cursor], s) {
				l := v.lines[v.cursor]
				v.cursor++
				return l, nil
			}
		}
		if v.eof {
			return "", fmt.Errorf("the guest stopped before printing %q", s)
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("waiting for %q: %w", s, ctx.Err())
		}
		v.cond.Wait()
	}
}

// Lines returns every console line so far.
func (v *VM) Lines() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.lines...)
}

// Tail returns the last n console lines (and QEMU's own messages), for a
// failure report.
func (v *VM) Tail(n int) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	b, _ := os.ReadFile(v.log.Name())
	return lastLines(string(b), n)
}

// Wait waits for QEMU to exit (the guest powers off) and returns its exit
// error.
func (v *VM) Wait(ctx context.Context) error {
	select {
	case <-v.exited:
		v.mu.Lock()
		defer v.mu.Unlock()
		for !v.eof {
			v.cond.Wait()
		}
		return v.err
	case <-ctx.Done():
		return fmt.Errorf("the guest did not power off: %w", ctx.Err())
	}
}

// Kill stops QEMU and waits until its console is read to the end.
func (v *VM) Kill() {
	select {
	case <-v.exited:
	default:
		v.cmd.Process.Kill()
		<-v.exited
	}
	v.mu.Lock()
	for !v.eof {
		v.cond.Wait()
	}
	v.mu.Unlock()
}

// Close kills QEMU if it still runs and releases the ptys.
func (v *VM) Close() {
	if v.cmd.Process != nil {
		select {
		case <-v.exited:
		default:
			v.cmd.Process.Kill()
			<-v.exited
		}
	}
	if v.qmp != nil {
		v.qmp.conn.Close()
	}
	for _, f := range v.ptys {
		f.Close()
	}
	v.log.Close()
	os.RemoveAll(v.dir)
}

// qmp is a QEMU Machine Protocol connection: one command at a time;
// events are kept for waitEvent.
type qmp struct {
	conn    net.Conn
	mu      sync.Mutex
	replies chan map[string]json.RawMessage
	evmu    sync.Mutex
	events  []map[string]json.RawMessage
	evch    chan struct{}
}

func dialQMP(ctx context.Context, sock string, exited <-chan struct{}) (*qmp, error) {
	var conn net.Conn
	for {
		var err error
		conn, err = net.Dial("unix", sock)
		if err == nil {
			break
		}
		select {
		case <-exited:
			return nil, errors.New("QEMU exited at start")
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	q := &qmp{conn: conn, replies: make(chan map[string]json.RawMessage, 1), evch: make(chan struct{}, 1)}
	go q.read()
	if err := q.call("qmp_capabilities", nil, nil); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

func (q *qmp) read() {
	dec := json.NewDecoder(q.conn)
	for {
		var m map[string]json.RawMessage
		if err := dec.Decode(&m); err != nil {
			close(q.replies)
			return
		}
		switch {
		case m["QMP"] != nil:
		case m["event"] != nil:
			q.evmu.Lock()
			q.events = append(q.events, m)
			q.evmu.Unlock()
			select {
			case q.evch <- struct{}{}:
			default:
			}
		default:
			q.replies <- m
		}
	}
}

func (q *qmp) call(command string, args any, ret any) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("hil: QMP %s: %w", command, err)
	}
	select {
	case m, ok := <-q.replies:
		if !ok {
			return fmt.Errorf("hil: QMP %s: QEMU closed the monitor", command)
		}
		if e := m["error"]; e != nil {
			return fmt.Errorf("hil: QMP %s: %s", command, e)
		}
		if ret != nil {
			return json.Unmarshal(m["return"], ret)
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("hil: QMP %s: no answer in 30 s", command)
	}
}

// waitEvent waits for an event whose data names the device id.
func (q *qmp) waitEvent(ctx context.Context, name, device string) error {
	for {
		q.evmu.Lock()
		for i, e := range q.events {
			var ev string
			json.Unmarshal(e["event"], &ev)
			var data struct {
				Device string `json:"device"`
			}
			json.Unmarshal(e["data"], &data)
			if ev == name && data.Device == device {
				q.events = append(q.events[:i], q.events[i+1:]...)
				q.evmu.Unlock()
				return nil
			}
		}
		q.evmu.Unlock()
		select {
		case <-q.evch:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("hil: waiting for %s %s: %w", name, device, ctx.Err())
		}
	}
}
