package pipeline

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// MQTTConfig is where an MQTT source connects and what it subscribes to.
type MQTTConfig struct {
	Broker   string // tcp://host:port or ssl://host:port
	Topic    string // may hold the wildcards + and #
	ClientID string // stable across restarts: the broker keeps the session under it
	Username string
	Password string
	TLS      *tls.Config // for ssl://
	// ConnectTimeout bounds the wait for the broker at start; 0 waits for
	// ever, retrying with backoff.
	ConnectTimeout time.Duration
	// StatusTopic gets the retained status; its last will is {"state":"offline"}.
	StatusTopic string
}

// ErrMQTTRefused is the broker refusing the connection: bad credentials or
// not authorised. Retrying does not help.
var ErrMQTTRefused = errors.New("the broker refused the connection")

// MQTT is a datagram source: each message on the subscribed topic is one
// datagram. It delivers at least once into the port: a message is
// acknowledged to the broker (PUBACK) only once the sender has written all
// of its frames, and the session is persistent (clean session off), so
// messages not yet acknowledged, and those published while framesend was
// away, come again when it connects. A message can therefore arrive twice.
type MQTT struct {
	cfg     MQTTConfig
	client  mqtt.Client
	msgs    chan mqtt.Message
	refused atomic.Int64 // messages on topics not subscribed to
	warned  atomic.Int64 // when the last stray was logged, in Unix ns
	pending mqtt.Message // not yet all in a block; Fill only
	off     int          // bytes of pending already in a block
	log     *slog.Logger
}

// DialMQTT connects to the broker and subscribes, retrying with backoff while
// the broker cannot be reached, until cfg.ConnectTimeout or ctx is done. It
// fails at once if the broker refuses the credentials. Once connected the
// client reconnects by itself, with backoff, when the connection drops, and
// resubscribes.
func DialMQTT(ctx context.Context, cfg MQTTConfig, log *slog.Logger) (*MQTT, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &MQTT{cfg: cfg, log: log, msgs: make(chan mqtt.Message, 1024)}
	opts := mqtt.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(cfg.ClientID).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		SetOrderMatters(true).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(30 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetTLSConfig(cfg.TLS)
	if cfg.Username != "" {
		opts.SetUsername(cfg.Username).SetPassword(cfg.Password)
	}
	if cfg.StatusTopic != "" {
		opts.SetBinaryWill(cfg.StatusTopic, []byte(`{"state":"offline"}`), 1, true)
	}
	// The first subscription's outcome, for DialMQTT to wait on.
	subscribed := make(chan error, 1)
	opts.SetOnConnectHandler(func(c mqtt.Client) {
		// Subscribing again after a reconnect is harmless, and needed if
		// the broker lost the session.
		err := m.subscribe(c)
		select {
		case subscribed <- err:
		default:
		}
		if err != nil {
			log.Error("mqtt: "+err.Error(), "broker", cfg.Broker, "topic", cfg.Topic, "client_id", cfg.ClientID)
			return
		}
		log.Info("mqtt: connected and subscribed", "broker", cfg.Broker, "topic", cfg.Topic, "client_id", cfg.ClientID)
	})
	opts.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		log.Warn("mqtt: connection lost; reconnecting", "broker", cfg.Broker, "error", err.Error())
	})
	opts.SetDefaultPublishHandler(m.stray)
	m.client = mqtt.NewClient(opts)
	// A persistent session's waiting messages arrive as soon as the broker
	// accepts the connection, before OnConnect has renewed the
	// subscription: routed only from then, the first of them would find no
	// handler and stay unacknowledged, and the broker, its in-flight window
	// full, would send nothing more.
	m.client.AddRoute(cfg.Topic, m.receive)

	var deadline time.Time
	if cfg.ConnectTimeout > 0 {
		deadline = time.Now().Add(cfg.ConnectTimeout)
	}
	backoff := 500 * time.Millisecond
	for {
		tok := m.client.Connect()
		tok.Wait()
		err := tok.Error()
		if err == nil {
			// Messages published before the broker has the subscription
			// would never reach a new session: return once it has it.
			select {
			case err = <-subscribed:
			case <-ctx.Done():
				err = ctx.Err()
			}
			if err != nil {
				m.client.Disconnect(0)
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, fmt.Errorf("mqtt %s: %w", cfg.Broker, err)
			}
			return m, nil
		}
		// A certificate the client does not trust will not change by
		// waiting.
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("mqtt %s: %w", cfg.Broker, err)
		}
		if ct, ok := tok.(*mqtt.ConnectToken); ok {
			switch ct.ReturnCode() {
			case packets.ErrRefusedBadUsernameOrPassword, packets.ErrRefusedNotAuthorised, packets.ErrRefusedIDRejected:
				return nil, fmt.Errorf("mqtt %s: %w: %v", cfg.Broker, ErrMQTTRefused, err)
			}
		}
		if !deadline.IsZero() && time.Now().Add(backoff).After(deadline) {
			return nil, fmt.Errorf("mqtt %s: not reachable within %v (--connect-timeout): %v", cfg.Broker, cfg.ConnectTimeout, err)
		}
		log.Warn("mqtt: broker not reachable; retrying", "broker", cfg.Broker, "in", backoff.String(), "error", err.Error())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// receive is paho's handler. Messages are in order; it blocks only if the
// queue is full, and the broker sends no more than its in-flight limit of
// unacknowledged messages anyway.
func (m *MQTT) receive(_ mqtt.Client, msg mqtt.Message) {
	m.msgs <- msg
}

// subscribeTimeout bounds the wait for the broker's SUBACK.
const subscribeTimeout = 30 * time.Second

// subscribe subscribes to the topic and waits until the broker has the
// subscription.
func (m *MQTT) subscribe(c mqtt.Client) error {
	tok := c.Subscribe(m.cfg.Topic, 1, m.receive)
	if !tok.WaitTimeout(subscribeTimeout) {
		return fmt.Errorf("subscribe %s: no answer from the broker within %v", m.cfg.Topic, subscribeTimeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("subscribe %s: %w", m.cfg.Topic, err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok && st.Result()[m.cfg.Topic] == 0x80 {
		return fmt.Errorf("subscribe %s: the broker refused the subscription (not allowed for this user?)", m.cfg.Topic)
	}
	return nil
}

// stray takes a message on a topic framesend did not subscribe to: one from
// a subscription that an earlier run with this client ID left in the
// persistent session. It is acknowledged (unacknowledged, it would hold the
// broker's in-flight window for ever), counted as refused, and logged at
// most once a second.
func (m *MQTT) stray(_ mqtt.Client, msg mqtt.Message) {
	n := m.refused.Add(1)
	if now := time.Now().UnixNano(); now-m.warned.Load() >= int64(time.Second) {
		m.warned.Store(now)
		m.log.Warn("mqtt: a message on a topic not subscribed to (a subscription left in the session by an earlier run with this --client-id?); acknowledged and dropped",
			"topic", msg.Topic(), "subscribed", m.cfg.Topic, "refused_total", n)
	}
	msg.Ack()
}

// Refused returns how many messages came on topics not subscribed to.
func (m *MQTT) Refused() int64 { return m.refused.Load() }

// BlockSize makes room for a large message.
func (m *MQTT) BlockSize() int { return MaxDatagram }

// Fill waits for the next message and adds it to b with its
// acknowledgement, then whatever else has arrived and fits, without
// waiting. A message larger than a block goes in pieces over as many
// blocks as it needs; it is acknowledged once its last byte is written.
func (m *MQTT) Fill(ctx context.Context, b *Block) error {
	for b.Len() == 0 && b.Datagrams() == 0 {
		if m.pending == nil {
			select {
			case m.pending = <-m.msgs:
				m.off = 0
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !m.addPending(b) {
			return nil // b is full with a piece of a large message
		}
	}
	for m.pending == nil {
		select {
		case msg := <-m.msgs:
			m.pending, m.off = msg, 0
			if !b.Fits(len(msg.Payload())) {
				return nil // it starts the next block
			}
			m.addPending(b)
		default:
			return nil
		}
	}
	return nil
}

// addPending adds what is left of the pending message to b, all of it if
// it fits, and reports whether it did.
func (m *MQTT) addPending(b *Block) bool {
	rest := m.pending.Payload()[m.off:]
	spare := b.DatagramSpare()
	if len(rest) <= len(spare) {
		b.CommitDatagramAck(copy(spare, rest), m.pending.Ack)
		m.pending = nil
		return true
	}
	b.CommitDatagramPart(copy(spare, rest))
	m.off += len(spare)
	return false
}

// PublishStatus publishes payload, retained, to the status topic.
func (m *MQTT) PublishStatus(payload []byte) {
	if m.cfg.StatusTopic == "" {
		return
	}
	m.client.Publish(m.cfg.StatusTopic, 1, true, payload)
}

// Close publishes the final status, if any, and disconnects.
func (m *MQTT) Close(final []byte) {
	if m.cfg.StatusTopic != "" && final != nil {
		m.client.Publish(m.cfg.StatusTopic, 1, true, final).WaitTimeout(2 * time.Second)
	}
	m.client.Disconnect(500)
}
