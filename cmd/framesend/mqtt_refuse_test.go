package main

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/framesend/framesend/device/devicetest"
)

// refusingBroker is a stand-in for a broker with an ACL (EMQX, HiveMQ, AWS
// IoT): it accepts every connection, grants the subscriptions of the first
// grant connections, closing each of those 300 ms after its SUBACK, and
// answers every later subscription with the failure code 0x80. It returns
// the broker's host:port.
func refusingBroker(t *testing.T, grant int) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var conns sync.Map
	t.Cleanup(func() {
		l.Close()
		conns.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
		wg.Wait()
	})
	var n atomic.Int32
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			granted := int(n.Add(1)) <= grant
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				var mu sync.Mutex // writes from this loop and the timer
				write := func(p packets.ControlPacket) {
					mu.Lock()
					defer mu.Unlock()
					p.Write(c)
				}
				for {
					p, err := packets.ReadPacket(c)
					if err != nil {
						return
					}
					switch p := p.(type) {
					case *packets.ConnectPacket:
						write(packets.NewControlPacket(packets.Connack))
					case *packets.SubscribePacket:
						ack := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
						ack.MessageID = p.MessageID
						for range p.Topics {
							if granted {
								ack.ReturnCodes = append(ack.ReturnCodes, 1)
							} else {
								ack.ReturnCodes = append(ack.ReturnCodes, 0x80)
							}
						}
						write(ack)
						if granted {
							time.AfterFunc(300*time.Millisecond, func() { c.Close() })
						}
					case *packets.PublishPacket:
						if p.Qos == 1 {
							ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
							ack.MessageID = p.MessageID
							write(ack)
						}
					case *packets.PingreqPacket:
						write(packets.NewControlPacket(packets.Pingresp))
					case *packets.DisconnectPacket:
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// A subscription the broker refuses (0x80) ends the run with exit 1 and
// one line naming the topic and the fix, whether at start or after a
// reconnect; framesend never says it is subscribed to it.
func TestMQTTRefusedSubscription(t *testing.T) {
	t.Run("at start", func(t *testing.T) {
		addr := refusingBroker(t, 0)
		f := newFake(t, devicetest.Options{})
		code, _, stderr := framesend(t, nil, "send", "--port", f.Path(), "--source", "mqtt://"+addr+"/plant/secret/#", "--connect-timeout", "5s")
		checkRefused(t, code, stderr)
		if strings.Contains(stderr, subscribed) {
			t.Errorf("framesend says %q of a refused subscription: %s", subscribed, stderr)
		}
	})
	t.Run("after a reconnect", func(t *testing.T) {
		addr := refusingBroker(t, 1)
		f := newFake(t, devicetest.Options{})
		run, _ := sendLogged(t, subscribed, "--port", f.Path(), "--source", "mqtt://"+addr+"/plant/secret/#", "--connect-timeout", "5s")
		code := run.wait(t, 20*time.Second)
		checkRefused(t, code, run.stderr.String())
	})
}

func checkRefused(t *testing.T, code int, stderr string) {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "refused the subscription") {
			lines = append(lines, l)
		}
	}
	if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], "plant/secret/#") || !strings.Contains(lines[0], "ACL") {
		t.Errorf("exit %d, %d lines on the refusal; want exit 1 and one line naming plant/secret/# and the broker's ACL: %s", code, len(lines), stderr)
	}
}

// Flags are all checked before the broker is dialled: a bad one is a usage
// error even with no broker to reach.
func TestMQTTFlagsCheckedBeforeDialling(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--write-timeout", "-1s"}, "--write-timeout -1s is negative"},
		{[]string{"--reconnect", "--reconnect-timeout", "-1s"}, "--reconnect-timeout -1s is negative"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			args := append([]string{"--source", "mqtt://127.0.0.1:1/t", "--connect-timeout", "2s"}, c.args...)
			code, stderr, _ := sendTo(t, nil, args...)
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, c.want)
			}
		})
	}
}

// A run that fails after the broker was dialled (here: the port cannot be
// opened) closes the connection: the broker does not publish the last
// will, as it does for a client that vanished.
func TestMQTTClosedWhenThePortFails(t *testing.T) {
	b := startBroker(t, "")
	w := b.client("watch")
	wills := make(chan string, 4)
	if tok := w.Subscribe("framesend/nope/status", 1, func(_ mqtt.Client, m mqtt.Message) { wills <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	missing := fmt.Sprintf("%s/ttyNOPE", t.TempDir())
	code, _, stderr := framesend(t, nil, "send", "--port", missing, "--source", b.url("t"), "--client-id", "nope", "--connect-timeout", "5s")
	if code == 0 {
		t.Fatalf("exit 0 with no port: %s", stderr)
	}
	select {
	case p := <-wills:
		t.Errorf("the broker published the last will %s: framesend left without closing its connection (%s)", p, stderr)
	case <-time.After(1500 * time.Millisecond):
	}
}
