package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/framesend/framesend/device/ptyfake"
	mosquittobroker "github.com/framesend/framesend/internal/mosquitto"
)

// mosquitto is a broker of the bench's own on a free loopback port.
type mosquitto struct{ *mosquittobroker.Broker }

// startMosquitto starts Mosquitto with extra configuration lines.
func startMosquitto(bin, extra string) (*mosquitto, error) {
	b, err := mosquittobroker.Start(bin, "max_queued_messages 2000000\n"+extra)
	if err != nil {
		return nil, err
	}
	return &mosquitto{b}, nil
}

// client connects a paho client; clean false keeps its session.
func (m *mosquitto) client(id string, clean bool) (mqtt.Client, error) {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + m.Addr()).SetClientID(id).SetCleanSession(clean))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect %s: %v", id, tok.Error())
	}
	return c, nil
}

// backlog makes a persistent QoS 1 session for id on topic and publishes n
// numbered messages into it while id is away, so that the receiver under
// test is measured on messages already waiting, not on the publisher.
func (m *mosquitto) backlog(pub mqtt.Client, id, topic string, n int) error {
	sub, err := m.client(id, false)
	if err != nil {
		return err
	}
	if tok := sub.Subscribe(topic, 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("subscribe: %v", tok.Error())
	}
	sub.Disconnect(100)
	toks := make([]mqtt.Token, 0, n)
	for k := range n {
		toks = append(toks, pub.Publish(topic, 1, false, numbered(k)))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
			return fmt.Errorf("publish: %v", tok.Error())
		}
	}
	return nil
}

// mqttReceive starts argv (which sends to the fake) and returns how long
// it took from its start to the last of want frames at the far end, and the
// CPU time it used (with the processes it waited for).
func mqttReceive(fake *ptyfake.PTY, argv []string, want int) (time.Duration, time.Duration, error) {
	stop := make(chan struct{})
	got := readFarEnd(fake, stop, 200*time.Millisecond)
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr lockedWriter
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		close(stop)
		<-got
		return 0, 0, err
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-waited:
	case <-time.After(120 * time.Second):
		cmd.Process.Kill()
		werr = fmt.Errorf("still running after 120 s")
		<-waited
	}
	close(stop)
	res := <-got
	if werr != nil || res.frames != want || res.bad != 0 {
		return 0, 0, fmt.Errorf("%v: %v: %d of %d frames arrived, %d broken: %s", argv, werr, res.frames, want, res.bad, stderr.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return res.last.Sub(start), time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// mqttRows measures QoS 1 messages per second into a pty: framesend's own
// MQTT source (acknowledged after the write) against mosquitto_sub piped
// into framesend's stdin source (acknowledged on receipt, no guarantee),
// with Mosquitto's default in-flight window and a raised one.
func mqttRows(t io.Writer, framesend string, runs int) error {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		fmt.Fprintf(t, "\n(MQTT rows not measured: mosquitto is not installed)\n")
		return nil
	}
	subBin, err := exec.LookPath("mosquitto_sub")
	if err != nil {
		fmt.Fprintf(t, "\n(MQTT rows not measured: mosquitto_sub is not installed)\n")
		return nil
	}
	const n = 20000
	fmt.Fprintf(t, "\n| MQTT QoS 1 into a pty, %d waiting 7-byte messages, median of %d | framesend --source mqtt (acknowledged after the write) | mosquitto_sub -q 1 -N \\| framesend --source stdin (acknowledged on receipt) | ratio (target ≥ 0.8) |\n|---|---|---|---|\n", n, runs)
	for _, w := range []struct {
		name, conf string
	}{
		{"Mosquitto's default max_inflight_messages 20", ""},
		{"max_inflight_messages 1000", "max_inflight_messages 1000"},
	} {
		broker, err := startMosquitto(bin, w.conf)
		if err != nil {
			return err
		}
		defer broker.Stop()
		pub, err := broker.client("bench-pub", true)
		if err != nil {
			return err
		}
		var fr, pr, ratios, fc, pc []float64
		for run := range runs {
			fake, err := ptyfake.New(ptyfake.Options{})
			if err != nil {
				return err
			}
			id := fmt.Sprintf("bench-fs-%d", run)
			topic := "bench/" + id
			if err := broker.backlog(pub, id, topic, n); err != nil {
				return err
			}
			d1, c1, err := mqttReceive(fake, []string{framesend, "send", "--port", fake.Path(), "--source", "mqtt://" + broker.Addr() + "/" + topic, "--client-id", id, "--count", strconv.Itoa(n)}, n)
			if err != nil {
				return err
			}
			id = fmt.Sprintf("bench-sub-%d", run)
			topic = "bench/" + id
			if err := broker.backlog(pub, id, topic, n); err != nil {
				return err
			}
			host, port, _ := net.SplitHostPort(broker.Addr())
			shell := fmt.Sprintf("%s -h %s -p %s -q 1 -c -i %s -t %s -N -C %d | %s send --port %s --source stdin", subBin, host, port, id, topic, n, framesend, fake.Path())
			d2, c2, err := mqttReceive(fake, []string{"sh", "-c", shell}, n)
			if err != nil {
				return err
			}
			fake.Close()
			fr = append(fr, n/d1.Seconds())
			pr = append(pr, n/d2.Seconds())
			ratios = append(ratios, d2.Seconds()/d1.Seconds())
			fc = append(fc, c1.Seconds()/n*1e6)
			pc = append(pc, c2.Seconds()/n*1e6)
		}
		pub.Disconnect(100)
		broker.Stop()
		med := func(xs []float64) float64 { s := slices.Clone(xs); slices.Sort(s); return s[len(s)/2] }
		fmt.Fprintf(t, "| %s | %.0f msgs/s, %.1f µs CPU a message | %.0f msgs/s, %.1f µs CPU a message (both processes) | × %.2f |\n", w.name, med(fr), med(fc), med(pr), med(pc), med(ratios))
		fmt.Fprintf(os.Stderr, "mqtt %s done\n", w.name)
	}
	return nil
}

// lockedWriter is a buffer safe for the writes of exec's copying goroutine.
type lockedWriter struct {
	mu  sync.Mutex
	buf []byte
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
