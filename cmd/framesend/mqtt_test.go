package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	be "encoding/binary"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/framesend/framesend/device/devicetest"
	"github.com/framesend/framesend/internal/mosquitto"
)

// broker is a real Mosquitto on a loopback port of its own, with
// persistence, so that a restart keeps the sessions.
type broker struct {
	*mosquitto.Broker
	t *testing.T
}

// startBroker starts Mosquitto; extra is added to its configuration.
func startBroker(t *testing.T, extra string) *broker {
	t.Helper()
	bin := requireTool(t, "mosquitto", "mosquitto")
	mb, err := mosquitto.Start(bin, "persistence true\nmax_queued_messages 100000\n"+extra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mb.Stop)
	return &broker{Broker: mb, t: t}
}

// restart starts the broker again, as it was, plus the configuration more.
func (b *broker) restart(more string) {
	b.t.Helper()
	if err := b.Restart(more); err != nil {
		b.t.Fatal(err)
	}
}

func (b *broker) url(topic string) string {
	return fmt.Sprintf("mqtt://%s/%s", b.Addr(), topic)
}

// client connects a publisher or watcher.
func (b *broker) client(id string) mqtt.Client {
	b.t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID(id).SetAutoReconnect(true).SetConnectRetry(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.t.Fatalf("connect %s: %v", id, tok.Error())
	}
	b.t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// leaveSession leaves a persistent session for client id on the broker,
// subscribed to topic at QoS 1, as a run of framesend that went away does.
func (b *broker) leaveSession(id, topic string) {
	b.t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID(id).SetCleanSession(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.t.Fatalf("connect %s: %v", id, tok.Error())
	}
	if tok := c.Subscribe(topic, 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.t.Fatalf("subscribe %s to %s: %v", id, topic, tok.Error())
	}
	c.Disconnect(100)
}

// publish sends numbered 7-byte messages from..to-1 to topic at QoS 1.
func publish(t *testing.T, c mqtt.Client, topic string, from, to int) {
	t.Helper()
	if err := publishRange(c, topic, from, to); err != nil {
		t.Fatal(err)
	}
}

// publishRange is publish for a goroutine other than the test's, which
// must not call t.Fatal.
func publishRange(c mqtt.Client, topic string, from, to int) error {
	var toks []mqtt.Token
	for k := from; k < to; k++ {
		toks = append(toks, c.Publish(topic, 1, false, numbered(k)))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(20 * time.Second) {
			return fmt.Errorf("publish: no PUBACK from the broker within 20s")
		}
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	return nil
}

// numbered returns message k: 7 bytes, k as 4 bytes then a fixed tail, so a
// split or misplaced frame shows.
func numbered(k int) []byte {
	m := []byte{0, 0, 0, 0, 0xa5, 0x5a, 0xee}
	be.BigEndian.PutUint32(m, uint32(k))
	return m
}

// frames splits a stream into message numbers, failing on a malformed frame.
func frames(t *testing.T, data []byte) []int {
	t.Helper()
	if len(data)%7 != 0 {
		t.Fatalf("%d bytes: not whole 7-byte frames", len(data))
	}
	var ks []int
	for i := 0; i < len(data); i += 7 {
		f := data[i : i+7]
		if !bytes.Equal(f[4:], []byte{0xa5, 0x5a, 0xee}) {
			t.Fatalf("frame %d is % x: split or corrupt", i/7, f)
		}
		ks = append(ks, int(be.BigEndian.Uint32(f)))
	}
	return ks
}

// logged is a framesend process whose stderr a test reads as it comes.
type logged struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	eof    chan struct{} // closed when all of stderr has been read
}

// wait waits for the process to exit and for the last of its stderr.
func (r *logged) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	// A process that never finished is diagnosed by what it logged.
	defer func() {
		if t.Failed() {
			t.Logf("its log:\n%s", r.stderr.String())
		}
	}()
	code := waitExit(t, r.cmd, limit)
	<-r.eof
	return code
}

// sendLogged starts framesend send with args, waits for a log line that
// matches re, and returns the process and the match.
func sendLogged(t *testing.T, re string, args ...string) (*logged, []string) {
	t.Helper()
	cmd := command(t, append([]string{"send"}, args...)...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	t.Cleanup(func() { cmd.Process.Kill() })
	r := &logged{cmd: cmd, stderr: &lockedBuffer{}, eof: make(chan struct{})}
	matches := make(chan []string, 1)
	rx := regexp.MustCompile(re)
	go func() {
		defer close(r.eof)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			r.stderr.Write(append(sc.Bytes(), '\n'))
			if m := rx.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case matches <- m:
				default:
				}
			}
		}
	}()
	select {
	case m := <-matches:
		return r, m
	case <-time.After(15 * time.Second):
		t.Fatalf("framesend never logged %q: %s", re, r.stderr.String())
	}
	return nil, nil
}

// inOrder fails unless ks is 0, 1, …, n-1.
func inOrder(t *testing.T, ks []int, n int) {
	t.Helper()
	if len(ks) != n {
		t.Fatalf("far end got %d messages, want %d", len(ks), n)
	}
	for i, k := range ks {
		if k != i {
			t.Fatalf("message %d at position %d: out of order", k, i)
		}
	}
}

const subscribed = "connected and subscribed"

func TestMQTTTenThousandMessages(t *testing.T) {
	b := startBroker(t, "")
	f := newFake(t, devicetest.Options{})
	stop := make(chan struct{})
	got := drain(f, stop, 300*time.Millisecond)
	run, _ := sendLogged(t, subscribed, "--port", f.Path(), "--source", b.url("lab/bench1"), "--client-id", "bench1", "--count", "10000")
	publish(t, b.client("pub"), "lab/bench1", 0, 10000)
	if code := run.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, run.stderr.String())
	}
	close(stop)
	inOrder(t, frames(t, <-got), 10000)
}

func TestMQTTAtLeastOnceAcrossAKill(t *testing.T) {
	b := startBroker(t, "")
	f := newFake(t, devicetest.Options{})
	arrived := collect(f)
	received := func() int { return len(arrived()) / 7 }
	args := []string{"--port", f.Path(), "--source", b.url("lab/pi7"), "--client-id", "pi7"}
	first, _ := sendLogged(t, subscribed, args...)
	pub := b.client("pub")
	const total = 3000
	done := make(chan struct{})
	var published atomic.Int64
	var pubErr error
	go func() {
		defer close(done)
		for k := 0; k < total; k += 100 {
			if pubErr = publishRange(pub, "lab/pi7", k, k+100); pubErr != nil {
				return
			}
			published.Store(int64(k + 100))
			time.Sleep(20 * time.Millisecond) // paces the publisher: no wait for an event
		}
	}()
	waitFor(t, func() bool { return received() >= 500 }, "500 messages before the kill")
	first.cmd.Process.Signal(syscall.SIGKILL)
	first.wait(t, 5*time.Second)
	// Some are published meanwhile, for the broker to queue.
	since := published.Load()
	waitFor(t, func() bool { return published.Load() >= since+200 || published.Load() == total }, "200 messages published with framesend down")
	second, _ := sendLogged(t, subscribed, args...)
	<-done
	if pubErr != nil {
		t.Fatal(pubErr)
	}
	seenAll := func() bool {
		data := arrived()
		whole := data[:len(data)/7*7]
		seen := map[int]bool{}
		for i := 0; i+7 <= len(whole); i += 7 {
			seen[int(be.BigEndian.Uint32(whole[i:]))] = true
		}
		return len(seen) == total
	}
	waitFor(t, seenAll, "every message at least once")
	second.cmd.Process.Signal(syscall.SIGINT)
	if code := second.wait(t, 10*time.Second); code != 0 {
		t.Errorf("second run: exit %d: %s", code, second.stderr.String())
	}
	ks := frames(t, arrived())
	t.Logf("%d messages published, %d frames at the far end (%d repeats)", total, len(ks), len(ks)-total)
}

func TestMQTTTwoDevicesAndStatus(t *testing.T) {
	b := startBroker(t, "")
	watch := b.client("watch")
	var mu sync.Mutex
	states := map[string]string{}
	watch.Subscribe("framesend/+/status", 1, func(_ mqtt.Client, m mqtt.Message) {
		var s struct{ State string }
		jsonUnmarshal(string(m.Payload()), &s)
		mu.Lock()
		states[m.Topic()] = s.State
		mu.Unlock()
	}).Wait()
	state := func(id string) string {
		mu.Lock()
		defer mu.Unlock()
		return states["framesend/"+id+"/status"]
	}
	type dev struct {
		f   *devicetest.PTY
		run *logged
		got <-chan []byte
	}
	stop := make(chan struct{})
	devs := map[string]*dev{}
	for _, id := range []string{"d1", "d2"} {
		f := newFake(t, devicetest.Options{})
		devs[id] = &dev{f: f, got: drain(f, stop, 300*time.Millisecond),
			run: mustLog(t, subscribed, "--port", f.Path(), "--source", b.url("fleet/"+id), "--client-id", id, "--stats-interval", "200ms")}
	}
	pub := b.client("pub")
	publish(t, pub, "fleet/d1", 0, 50)
	publish(t, pub, "fleet/d2", 1000, 1050)
	waitFor(t, func() bool { return state("d1") == "online" && state("d2") == "online" }, "both online on the status topic")
	waitFor(t, func() bool { return progressFrames(devs["d2"].run.stderr.String()) >= 50 }, "d2 to write its 50")
	devs["d2"].run.cmd.Process.Signal(syscall.SIGKILL)
	waitFor(t, func() bool { return state("d2") == "offline" }, "d2 offline (its last will) after the kill")
	if state("d1") != "online" {
		t.Errorf("d1 = %q, want online", state("d1"))
	}
	devs["d1"].run.cmd.Process.Signal(syscall.SIGINT)
	devs["d1"].run.wait(t, 10*time.Second)
	close(stop)
	for id, base := range map[string]int{"d1": 0, "d2": 1000} {
		ks := frames(t, <-devs[id].got)
		if len(ks) != 50 {
			t.Errorf("%s got %d messages, want its 50", id, len(ks))
		}
		for _, k := range ks {
			if k < base || k >= base+50 {
				t.Errorf("%s got message %d, which was for the other device", id, k)
			}
		}
	}
	if state("d1") != "offline" {
		t.Errorf("d1 after a clean stop = %q, want offline", state("d1"))
	}
}

func TestMQTTBrokerRestart(t *testing.T) {
	b := startBroker(t, "")
	f := newFake(t, devicetest.Options{})
	stop := make(chan struct{})
	got := drain(f, stop, 300*time.Millisecond)
	run, _ := sendLogged(t, subscribed, "--port", f.Path(), "--source", b.url("lab/r"), "--client-id", "r1", "--count", "200", "--stats-interval", "100ms")
	publish(t, b.client("pub1"), "lab/r", 0, 100)
	waitFor(t, func() bool { return progressFrames(run.stderr.String()) >= 100 }, "the first 100 written")
	b.Halt()
	waitFor(t, func() bool { return strings.Contains(run.stderr.String(), "connection lost") }, "framesend to see the broker gone")
	b.restart("")
	waitFor(t, func() bool { return strings.Count(run.stderr.String(), subscribed) >= 2 }, "framesend to reconnect")
	publish(t, b.client("pub2"), "lab/r", 100, 200)
	if code := run.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, run.stderr.String())
	}
	close(stop)
	if ks := frames(t, <-got); len(ks) != 200 {
		t.Fatalf("far end got %d messages, want 200: %v; framesend said: %s", len(ks), ks, run.stderr.String())
	} else {
		inOrder(t, ks, 200)
	}
	if !strings.Contains(run.stderr.String(), "connection lost") {
		t.Errorf("no log of the lost connection: %s", run.stderr.String())
	}
}

func TestMQTTBadInput(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--source", "mqtt://127.0.0.1"}, 2, "no topic"},
		{[]string{"--source", "mqtt:///t"}, 2, "no broker host"},
		{[]string{"--source", "mqtt://bob:secret@127.0.0.1/t"}, 2, "bob:****@"},
		{[]string{"--source", "mqtt://127.0.0.1:x/t"}, 2, "not a port"},
		{[]string{"--source", "mqtt://127.0.0.1:1883x/t"}, 2, "not a port"},
		{[]string{"--source", "mqtt://127.0.0.1:70000/t"}, 2, "not a port"},
		{[]string{"--source", "mqtt://127.0.0.1/t", "--overflow", "drop-newest"}, 2, "would lose messages"},
		{[]string{"--source", "mqtt://127.0.0.1:1/t", "--connect-timeout", "1s"}, 1, "not reachable within 1s"},
		{[]string{"--source", "mqtt://127.0.0.1/a/#/b"}, 2, `# must be the last level`},
		{[]string{"--source", "mqtt://127.0.0.1/a/b+"}, 2, `+ and # must fill a whole level, as in a/+/c or a/#, not "b+"`},
		{[]string{"--source", "mqtt://127.0.0.1/a/b#"}, 2, `must fill a whole level`},
		{[]string{"--source", "mqtt://127.0.0.1/t", "--mqtt-key", "k.pem"}, 2, "--mqtt-key applies to mqtts:// sources only"},
		{[]string{"--source", "mqtt://127.0.0.1/t", "--mqtt-ca", "ca.pem"}, 2, "--mqtt-ca applies to mqtts:// sources only"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, stderr, _ := sendTo(t, nil, c.args...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, c.code, c.want)
			}
			if strings.Contains(stderr, "secret") {
				t.Errorf("the password shows in the output: %q", stderr)
			}
		})
	}
	t.Run("refused password", func(t *testing.T) {
		passwd := requireTool(t, "mosquitto_passwd", "mosquitto")
		pwfile := filepath.Join(t.TempDir(), "passwd")
		if out, err := exec.Command(passwd, "-b", "-c", pwfile, "bob", "right").CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v %s", err, out)
		}
		os.Chmod(pwfile, 0o644)
		b := startBroker(t, "allow_anonymous false\npassword_file "+pwfile)
		f := newFake(t, devicetest.Options{})
		src := "mqtt://bob@" + b.Addr() + "/t"
		code, _, stderr := framesend(t, []string{"FRAMESEND_MQTT_PASSWORD=wrong"}, "send", "--port", f.Path(), "--source", src, "--connect-timeout", "5s")
		if code != 1 || !strings.Contains(stderr, "refused the connection") {
			t.Errorf("wrong password: exit %d, %q", code, stderr)
		}
		pw := filepath.Join(t.TempDir(), "pw")
		os.WriteFile(pw, []byte("right\n"), 0o600)
		run, _ := sendLogged(t, subscribed, "--port", f.Path(), "--source", src, "--mqtt-password-file", pw, "--connect-timeout", "5s")
		run.cmd.Process.Signal(syscall.SIGINT)
		if code := run.wait(t, 10*time.Second); code != 0 {
			t.Errorf("right password from a file: exit %d: %s", code, run.stderr.String())
		}
	})
}

// TestMQTTClientCertificateInput checks the client certificate flags before
// the broker is dialled: one without the other, or a pair that is not a
// certificate and its key, is a usage error naming the flag; a file that
// cannot be read is a failure, as for --mqtt-ca. The broker address is one
// nobody listens on, so a check that let the dial happen would show as
// "not reachable" instead.
func TestMQTTClientCertificateInput(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	spec := "mqtts://127.0.0.1:1/t"
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--mqtt-cert", junk}, 2, "--mqtt-cert " + junk + " needs --mqtt-key"},
		{[]string{"--mqtt-key", junk}, 2, "--mqtt-key " + junk + " needs --mqtt-cert"},
		{[]string{"--mqtt-cert", junk, "--mqtt-key", junk}, 2, "--mqtt-cert " + junk + "/--mqtt-key " + junk + ": tls:"},
		{[]string{"--mqtt-cert", missing, "--mqtt-key", junk}, 1, "no such file or directory"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			args := append([]string{"--source", spec, "--connect-timeout", "1s"}, c.args...)
			code, stderr, _ := sendTo(t, nil, args...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, c.code, c.want)
			}
			if strings.Contains(stderr, "reachable") {
				t.Errorf("the broker was dialled before the flags were checked: %q", stderr)
			}
		})
	}
}

// Messages framesend has received but not yet written are not acknowledged:
// killed while it paces them out slowly, it gets them again on restart.
func TestMQTTAcknowledgesOnlyWrittenMessages(t *testing.T) {
	b := startBroker(t, "")
	f := newFake(t, devicetest.Options{})
	got := collect(f)
	distinct := func() int {
		b := got()
		seen := map[int]bool{}
		for _, k := range frames(t, b[:len(b)/7*7]) {
			seen[k] = true
		}
		return len(seen)
	}
	args := []string{"--port", f.Path(), "--source", b.url("lab/slow"), "--client-id", "slow"}
	first, _ := sendLogged(t, subscribed, append(args, "--rate", "20")...)
	publish(t, b.client("pub"), "lab/slow", 0, 100)
	// At 20 a second, the rest are received or queued, not yet written.
	waitFor(t, func() bool { return distinct() >= 10 }, "10 messages written before the kill")
	first.cmd.Process.Signal(syscall.SIGKILL)
	first.wait(t, 5*time.Second)
	second, _ := sendLogged(t, subscribed, args...)
	waitFor(t, func() bool { return distinct() == 100 },
		"all 100 messages at the far end (the missing ones were acknowledged unwritten and lost)")
	second.cmd.Process.Signal(syscall.SIGINT)
	second.wait(t, 10*time.Second)
	data := got()
	ks := frames(t, data[:len(data)/7*7]) // the reader may be mid-frame
	t.Logf("%d frames for 100 messages", len(ks))
}

// tlsFiles writes a CA, and a server certificate for 127.0.0.1 that it
// signed, as PEM files, and returns their paths.
func tlsFiles(t *testing.T) (ca, cert, key string) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "framesend test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644)
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}

func TestMQTTOverTLS(t *testing.T) {
	ca, cert, key := tlsFiles(t)
	b := startBroker(t, "")
	// A second listener, with TLS, on its own port.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	tlsPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	b.restart(fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s", tlsPort, ca, cert, key))
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort))
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "the TLS listener")
	src := fmt.Sprintf("mqtts://127.0.0.1:%d/lab/tls", tlsPort)

	f := newFake(t, devicetest.Options{})
	stop := make(chan struct{})
	got := drain(f, stop, 300*time.Millisecond)
	run, _ := sendLogged(t, subscribed, "--port", f.Path(), "--source", src, "--mqtt-ca", ca, "--client-id", "tls1", "--count", "20")
	publish(t, b.client("pub"), "lab/tls", 0, 20)
	if code := run.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, run.stderr.String())
	}
	close(stop)
	if ks := frames(t, <-got); len(ks) != 20 {
		t.Errorf("far end got %d messages over TLS, want 20", len(ks))
	}

	// Without the CA the broker's certificate is not trusted: a clear
	// error at once, not endless retries.
	f2 := newFake(t, devicetest.Options{})
	start := time.Now()
	code, _, stderr := framesend(t, nil, "send", "--port", f2.Path(), "--source", src, "--client-id", "tls2")
	if code != 1 || !strings.Contains(stderr, "certificate") {
		t.Errorf("untrusted broker: exit %d, %q", code, stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("hang-guard: took %v to give up on an untrusted certificate", d)
	}
}

// progressFrames returns the frame count of the last progress line in log.
func progressFrames(log string) int {
	m := regexp.MustCompile(`progress.*?\bframes[=":]+(\d+)`).FindAllStringSubmatch(log, -1)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// collect reads the fake's far end in the background until it is closed;
// the function returned gives a copy of what has arrived so far.
func collect(f *devicetest.PTY) func() []byte {
	var mu sync.Mutex
	var data []byte
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			mu.Lock()
			data = append(data, buf[:n]...)
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return append([]byte(nil), data...)
	}
}

// mustLog is sendLogged for where only the process is wanted.
func mustLog(t *testing.T, re string, args ...string) *logged {
	t.Helper()
	r, _ := sendLogged(t, re, args...)
	return r
}

// A message larger than a queue block (70,000 bytes) is sent whole, and is
// acknowledged only once its last byte is written: killed before that,
// framesend gets it again.
func TestMQTTLargeMessageIsSentWhole(t *testing.T) {
	b := startBroker(t, "")
	big := make([]byte, 70_000) // 10,000 frames of 7 bytes
	for i := range big {
		big[i] = byte(i*7 + i/251)
	}
	pub := b.client("pub")
	topic := "lab/big"

	// A device that reads nothing: the message cannot be written whole.
	stalled := newFake(t, devicetest.Options{})
	first, _ := sendLogged(t, subscribed, "--port", stalled.Path(), "--source", b.url(topic), "--client-id", "big")
	if tok := pub.Publish(topic, 1, false, big); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	publish(t, pub, topic, 1, 2)
	// The big message is being written: its first bytes reach the device.
	// Reading them leaves far more of it than the pty holds unwritten.
	if head := readUntil(t, stalled, 7); !bytes.Equal(head, big[:len(head)]) {
		t.Fatalf("the stalled device got % x, want the start of the big message", head)
	}
	first.cmd.Process.Signal(syscall.SIGKILL)
	first.wait(t, 5*time.Second)

	// The next run, on a device that reads, gets it again, whole.
	f := newFake(t, devicetest.Options{})
	stop := make(chan struct{})
	got := drain(f, stop, 300*time.Millisecond)
	// 10,001 frames: the big message and message 1; the run ends by itself
	// once both are written, however long the broker takes to send them.
	second, _ := sendLogged(t, subscribed, "--port", f.Path(), "--source", b.url(topic), "--client-id", "big", "--summary", "json", "--count", "10001")
	if code := second.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, second.stderr.String())
	}
	close(stop)
	data := <-got
	if want := append(append([]byte(nil), big...), numbered(1)...); !bytes.Equal(data, want) {
		t.Fatalf("far end got %d bytes, want the 70,000-byte message whole and then message 1 (first difference at %d): %s",
			len(data), firstDiff(data, want), second.stderr.String())
	}
	var st struct{ Datagrams, Dropped, Refused int64 }
	out := strings.TrimSpace(second.stderr.String())
	if err := jsonUnmarshal(out[strings.LastIndex(out, "\n")+1:], &st); err != nil || st.Datagrams != 2 || st.Dropped != 0 || st.Refused != 0 {
		t.Errorf("summary: %+v (%v), want 2 datagrams, none dropped or refused", st, err)
	}
	if strings.Contains(second.stderr.String(), "WARN") {
		t.Errorf("a warning about a whole message: %s", second.stderr.String())
	}

	// Both were acknowledged: a third run gets only what is published
	// after it subscribed. The broker sends a session's unacknowledged
	// messages again at the connect, before anything new, so once the new
	// message is at the device an old one would be there before it.
	f3 := newFake(t, devicetest.Options{})
	stop3 := make(chan struct{})
	seen3 := &lockedBuffer{}
	got3 := drainInto(f3, stop3, 200*time.Millisecond, seen3)
	third, _ := sendLogged(t, subscribed, "--port", f3.Path(), "--source", b.url(topic), "--client-id", "big")
	publish(t, pub, topic, 2, 3)
	waitFor(t, func() bool { return bytes.Contains(seen3.Bytes(), numbered(2)) }, "message 2 at the third device")
	third.cmd.Process.Signal(syscall.SIGINT)
	third.wait(t, 10*time.Second)
	close(stop3)
	if data := <-got3; !bytes.Equal(data, numbered(2)) {
		t.Errorf("a third run got %d bytes, want only message 2's 7: a message was not acknowledged after it was written", len(data))
	}
}

// Messages waiting in a persistent session arrive right after the broker
// accepts the connection, before the subscription is renewed: none may be
// left unacknowledged for want of a handler (the broker would then hold
// its in-flight window for ever and send nothing more).
func TestMQTTBacklogWaitingAtConnect(t *testing.T) {
	b := startBroker(t, "")
	pub := b.client("pub")
	for run := range 5 {
		id := fmt.Sprintf("backlog%d", run)
		topic := "lab/" + id
		// The session exists, with a subscription, while framesend is away.
		b.leaveSession(id, topic)
		publish(t, pub, topic, 0, 2000)
		f := newFake(t, devicetest.Options{})
		stop := make(chan struct{})
		got := drain(f, stop, 200*time.Millisecond)
		run, _ := sendLogged(t, subscribed, "--port", f.Path(), "--source", b.url(topic), "--client-id", id, "--count", "2000")
		code := run.wait(t, 20*time.Second)
		close(stop)
		data := <-got
		if code != 0 {
			t.Fatalf("exit %d with %d of 2000 messages at the device: %s", code, len(data)/7, run.stderr.String())
		}
		inOrder(t, frames(t, data), 2000)
	}
}

// A subscription an earlier run left in the session (another topic, same
// client ID) brings messages framesend did not ask for: they are refused,
// counted, and do not hold back the ones it did ask for.
func TestMQTTMessagesOnAnOldSubscriptionAreRefused(t *testing.T) {
	b := startBroker(t, "")
	pub := b.client("pub")
	b.leaveSession("moved", "lab/old")
	publish(t, pub, "lab/old", 0, 50) // more than the broker's in-flight window
	f := newFake(t, devicetest.Options{})
	stop := make(chan struct{})
	got := drain(f, stop, 200*time.Millisecond)
	run, _ := sendLogged(t, subscribed, "--port", f.Path(), "--source", b.url("lab/new"), "--client-id", "moved", "--count", "100", "--summary", "json")
	publish(t, pub, "lab/new", 0, 100)
	code := run.wait(t, 20*time.Second)
	close(stop)
	data := <-got
	if code != 0 {
		t.Fatalf("exit %d with %d of 100 messages at the device: %s", code, len(data)/7, run.stderr.String())
	}
	inOrder(t, frames(t, data), 100)
	var st struct{ Refused int64 }
	out := strings.TrimSpace(run.stderr.String())
	if err := jsonUnmarshal(out[strings.LastIndex(out, "\n")+1:], &st); err != nil || st.Refused != 50 {
		t.Errorf("refused = %d (%v), want the 50 messages of the old subscription: %s", st.Refused, err, out)
	}
	if !strings.Contains(out, "not subscribed to") {
		t.Errorf("no warning about the old subscription: %s", out)
	}
}
