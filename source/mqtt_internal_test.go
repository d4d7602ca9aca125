package source

import (
	"bytes"
	"context"
	"fmt"
	"github.com/framesend/framesend/internal/testenv"
	"log/slog"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	mosq "github.com/framesend/framesend/internal/mosquitto"
	"github.com/framesend/framesend/pipeline"
)

// fakeMessage is a message whose Ack waits on hold (when not nil) and
// then records itself.
type fakeMessage struct {
	payload []byte
	hold    chan struct{}
	acked   *[]string
	mu      *sync.Mutex
}

func (f *fakeMessage) Duplicate() bool   { return false }
func (f *fakeMessage) Qos() byte         { return 1 }
func (f *fakeMessage) Retained() bool    { return false }
func (f *fakeMessage) Topic() string     { return "t" }
func (f *fakeMessage) MessageID() uint16 { return 1 }
func (f *fakeMessage) Payload() []byte   { return f.payload }
func (f *fakeMessage) Ack() {
	if f.hold != nil {
		<-f.hold
	}
	f.mu.Lock()
	*f.acked = append(*f.acked, string(f.payload))
	f.mu.Unlock()
}

// idleMQTT is an MQTT source with no client, fed through receive.
func idleMQTT() *MQTT {
	m := &MQTT{ready: make(chan struct{}, 1), failed: make(chan error, 1)}
	m.log = slog.New(slog.DiscardHandler)
	m.acks.init()
	return m
}

type sink struct{ bytes.Buffer }

// An ack that blocks inside the MQTT client (its connection being lost)
// never holds up the sender: the run writes everything and ends.
func TestMQTTAckNeverBlocksTheSender(t *testing.T) {
	m := idleMQTT()
	var mu sync.Mutex
	var acked []string
	hold := make(chan struct{})
	for i := range 50 {
		f := &fakeMessage{payload: []byte(fmt.Sprintf("m%03d", i)), acked: &acked, mu: &mu}
		if i == 0 {
			f.hold = hold // the first ack is stuck
		}
		m.receive(nil, f)
	}
	cfg := pipeline.DefaultConfig()
	cfg.FrameSize, cfg.Count, cfg.Source, cfg.Align = 4, 50, m, pipeline.AlignDatagram
	var w sink
	done := make(chan error, 1)
	go func() { _, err := pipeline.Run(context.Background(), &w, cfg); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(hold)
		t.Fatal("the run did not end while an ack was stuck: the sender waits on acknowledgements")
	}
	if w.Len() != 200 {
		t.Fatalf("%d bytes written, want 200", w.Len())
	}
	close(hold)
	m.acks.wait(5 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(acked) != 50 {
		t.Fatalf("%d acks, want 50", len(acked))
	}
	for i, a := range acked {
		if want := fmt.Sprintf("m%03d", i); a != want {
			t.Fatalf("ack %d is for %s, want %s: out of order", i, a, want)
		}
	}
}

// A stuck ack of a lost connection does not hold back the acks of the
// next one; the acks still queued for the lost one are dropped, and the
// goroutines end once paho lets go.
func TestMQTTStuckAckHoldsBackNoNewConnection(t *testing.T) {
	var a acker
	a.init()
	var mu sync.Mutex
	var acked []string
	hold := make(chan struct{})
	msg := func(p string, h chan struct{}) heldMessage {
		return heldMessage{msg: &fakeMessage{payload: []byte(p), hold: h, acked: &acked, mu: &mu}, conn: a.connection()}
	}
	a.push(msg("old1", hold)) // stuck inside the client
	a.push(msg("old2", nil))
	for end := time.Now().Add(5 * time.Second); ; { // until old1 is inside the client
		a.mu.Lock()
		inside := len(a.queued[0]) == 1
		a.mu.Unlock()
		if inside {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the first ack was never handed to the client")
		}
		time.Sleep(time.Millisecond)
	}
	a.newConnection()
	for _, p := range []string{"new1", "new2", "new3"} {
		a.push(msg(p, nil))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d acks of the new connection made while an old one is stuck, want 3", n)
		}
		time.Sleep(time.Millisecond)
	}
	if g := a.goroutines(); g != 1 {
		t.Errorf("%d ack goroutines with one ack stuck, want 1", g)
	}
	close(hold)
	for a.goroutines() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d ack goroutines left once nothing is stuck", a.goroutines())
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "new1 new2 new3 old1"; fmt.Sprint(acked) != "["+want+"]" {
		t.Errorf("acks %v, want [%s] (old2 dropped: its connection is gone)", acked, want)
	}
	if a.dropped != 1 {
		t.Errorf("%d acks dropped, want 1", a.dropped)
	}
}

// mosquitto starts a broker on a loopback port of its own; extra is added
// to its configuration. It returns the broker's tcp:// URL.
func mosquitto(t *testing.T, extra string) string {
	t.Helper()
	bin := testenv.Tool(t, "mosquitto", "mosquitto")
	b, err := mosq.Start(bin, "max_queued_messages 100000\n"+extra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return "tcp://" + b.Addr()
}

// With a broker that does not bound its in-flight window, messages the
// port has not taken yet pile up; paho's reader must go on reading (a
// PUBACK for framesend's own publish still comes), not stop with a full
// queue.
func TestMQTTReaderGoesOnWithManyMessagesHeld(t *testing.T) {
	broker := mosquitto(t, "max_inflight_messages 0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := DialMQTT(ctx, MQTTConfig{Broker: broker, Topic: "in", ClientID: "held-test", StatusTopic: "status", ConnectTimeout: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(nil)
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("held-pub"))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal("publisher:", tok.Error())
	}
	defer pub.Disconnect(100)
	const n = 3000
	var last mqtt.Token
	for i := range n {
		last = pub.Publish("in", 1, false, []byte(fmt.Sprintf("%06d", i)))
	}
	if !last.WaitTimeout(20*time.Second) || last.Error() != nil {
		t.Fatal("publish:", last.Error())
	}
	// Nothing is taken from the source: every message waits in it.
	for end := time.Now().Add(10 * time.Second); ; {
		m.mu.Lock()
		held := len(m.held)
		m.mu.Unlock()
		if held == n {
			break
		}
		if time.Now().After(end) {
			t.Errorf("%d of %d messages reached the source: the client stopped reading", held, n)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	tok := m.client.Publish("status", 1, true, []byte(`{"state":"online"}`))
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("a publish of framesend's own got no PUBACK with %d messages held: %v", n, tok.Error())
	}
}

// countingWriter counts what it takes.
type countingWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *countingWriter) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Len()
}

// atMessage records how many bytes were written when it was acked.
type atMessage struct {
	fakeMessage
	w  *countingWriter
	at *[]int
}

func (a *atMessage) Ack() {
	n := a.w.Len()
	a.fakeMessage.Ack()
	a.mu.Lock()
	*a.at = append(*a.at, n)
	a.mu.Unlock()
}

// Fill gives a message larger than a block in pieces, whole and in place
// between the others, and each message is acknowledged only once its last
// byte is written.
func TestMQTTFillSplitsALargeMessageAndAcksItWhenWritten(t *testing.T) {
	m := idleMQTT()
	w := &countingWriter{}
	var mu sync.Mutex
	var acked []string
	var at []int
	big := bytes.Repeat([]byte("0123456789"), (pipeline.MaxDatagram+5000)/10)
	payloads := [][]byte{[]byte("first"), big, []byte("last message")}
	var want []byte
	var ends []int
	for _, p := range payloads {
		want = append(want, p...)
		if r := len(p) % 10; r != 0 {
			want = append(want, make([]byte, 10-r)...)
		}
		ends = append(ends, len(want))
		m.receive(nil, &atMessage{fakeMessage: fakeMessage{payload: p, acked: &acked, mu: &mu}, w: w, at: &at})
	}
	cfg := pipeline.DefaultConfig()
	cfg.FrameSize, cfg.Count, cfg.Source, cfg.Align, cfg.Pad = 10, int64(len(want)/10), m, pipeline.AlignDatagram, 0
	cfg.Batch = 3 // many writes for the large message
	st, err := pipeline.Run(context.Background(), w, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.buf.Bytes(), want) {
		t.Fatalf("wrote %d bytes, want the %d of the three messages, each padded, in order", w.Len(), len(want))
	}
	if st.Datagrams != 3 {
		t.Errorf("datagrams = %d, want 3 (the large one counted once)", st.Datagrams)
	}
	m.acks.wait(5 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(acked) != 3 {
		t.Fatalf("%d acks, want 3", len(acked))
	}
	for i := range payloads {
		if acked[i] != string(payloads[i]) {
			t.Fatalf("ack %d is for a %d-byte message, want the %d-byte one: out of order", i, len(acked[i]), len(payloads[i]))
		}
		if at[i] < ends[i] {
			t.Fatalf("message %d acked with %d bytes written, before its end at %d", i, at[i], ends[i])
		}
	}
}
