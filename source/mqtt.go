package source

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"golang.org/x/net/proxy"

	"github.com/framesend/framesend/internal/warnlimit"
	"github.com/framesend/framesend/pipeline"
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

// ErrMQTTUnreachable is a broker that could not be reached within
// MQTTConfig's connect timeout.
var ErrMQTTUnreachable = errors.New("not reachable")

// MQTT is a datagram source: each message on the subscribed topic is one
// datagram. It delivers at least once into the port: a message is
// acknowledged to the broker (PUBACK) only once the sender has written all
// of its frames, and the session is persistent (clean session off), so
// messages not yet acknowledged, and those published while framesend was
// away, come again when it connects. A message can therefore arrive twice.
//
// paho's reader is never held up: a message is put in an unbounded list
// (paho must not be blocked with ordered delivery, or pings go unanswered
// and the client reconnects in a loop), and what that list holds is bounded
// by the broker's in-flight window, the unacknowledged QoS 1 messages it
// sends before waiting for a PUBACK (Mosquitto's max_inflight_messages, 20
// by default). A broker with an unlimited window is warned about when the
// list passes heldWarn bytes. Acknowledgements are handed to paho by
// goroutines of the source's own, never by the sender.
type MQTT struct {
	name    string // what errors call it
	cfg     MQTTConfig
	client  mqtt.Client
	refused atomic.Int64    // messages on topics not subscribed to
	warned  warnlimit.Limit // for the stray-message warning
	pending heldMessage     // not yet all in a block; Fill only
	off     int             // bytes of pending already in a block
	log     *slog.Logger

	mu        sync.Mutex
	held      []heldMessage // received, not yet in a block
	heldBytes int
	heldWarn  bool          // the large list was logged
	ready     chan struct{} // a message was added to held
	failed    chan error    // a refused subscription after a reconnect
	acks      acker
	closeOnce sync.Once
}

// heldMessage is a message and the connection it came on.
type heldMessage struct {
	msg  mqtt.Message
	conn uint64
}

// heldWarn is how many bytes of messages not yet written make framesend
// warn that the broker does not bound its in-flight window.
const heldWarn = 64 << 20

// DialMQTT connects to the broker and subscribes, retrying with backoff while
// the broker cannot be reached, until cfg.ConnectTimeout or ctx is done. It
// fails at once if the broker refuses the credentials. Once connected the
// client reconnects by itself, with backoff, when the connection drops, and
// resubscribes.
func DialMQTT(ctx context.Context, cfg MQTTConfig, log *slog.Logger) (*MQTT, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &MQTT{cfg: cfg, log: log, ready: make(chan struct{}, 1), failed: make(chan error, 1)}
	m.acks.init()
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
		SetTLSConfig(cfg.TLS).
		SetCustomOpenConnectionFn(dialBuffered)
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
			var refused *SubscriptionRefusedError
			if errors.As(err, &refused) {
				// After a reconnect: the run ends with it, through Fill.
				select {
				case m.failed <- err:
				default:
				}
				return
			}
			log.Error("mqtt: "+err.Error(), "broker", cfg.Broker, "topic", cfg.Topic, "client_id", cfg.ClientID)
			return
		}
		log.Info("mqtt: connected and subscribed", "broker", cfg.Broker, "topic", cfg.Topic, "client_id", cfg.ClientID)
	})
	// paho calls this before each new connection, and only once every
	// message of the lost one has been handed to receive: acks still
	// waiting for the lost connection are dropped (paho would drop them:
	// the broker sends those messages again on the new one).
	opts.SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) { m.acks.newConnection() })
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
				var refused *SubscriptionRefusedError
				if errors.As(err, &refused) {
					return nil, err
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
			return nil, fmt.Errorf("mqtt %s: %w within %v: %v", cfg.Broker, ErrMQTTUnreachable, cfg.ConnectTimeout, err)
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

// receive is paho's handler. Messages are in order; it never blocks.
func (m *MQTT) receive(_ mqtt.Client, msg mqtt.Message) {
	h := heldMessage{msg: msg, conn: m.acks.connection()}
	m.mu.Lock()
	m.held = append(m.held, h)
	m.heldBytes += len(msg.Payload())
	warn := m.heldBytes > heldWarn && !m.heldWarn
	if warn {
		m.heldWarn = true
	}
	n, size := len(m.held), m.heldBytes
	m.mu.Unlock()
	select {
	case m.ready <- struct{}{}:
	default:
	}
	if warn {
		m.log.Warn("mqtt: the broker sends more unacknowledged messages than the port takes, and framesend holds them all: limit the broker's in-flight window (Mosquitto: max_inflight_messages)",
			"broker", m.cfg.Broker, "held_messages", n, "held_bytes", size)
	}
}

// next takes the oldest held message, if any.
func (m *MQTT) next() (heldMessage, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.held) == 0 {
		return heldMessage{}, false
	}
	h := m.held[0]
	m.held[0] = heldMessage{}
	m.held = m.held[1:]
	m.heldBytes -= len(h.msg.Payload())
	if len(m.held) == 0 {
		m.held = nil // let the array go
	}
	return h, true
}

// SubscriptionRefusedError is the broker answering the subscription with
// the failure code 0x80, as brokers do for a topic the user may not read.
type SubscriptionRefusedError struct {
	Broker, Topic, User string
}

func (e *SubscriptionRefusedError) Error() string {
	who := "this client"
	if e.User != "" {
		who = "user " + e.User
	}
	return fmt.Sprintf("mqtt %s: the broker refused the subscription to %s (return code 0x80): allow %s to read that topic in the broker's ACL, or subscribe to a topic it may read", e.Broker, e.Topic, who)
}

// dialBuffered opens the connection to the broker as the MQTT client would
// (tcp:// or ssl://, through a proxy named in the environment), but with
// the reads of a plain TCP connection going through a buffer: the client
// reads each packet's header a byte at a time, which on a bare socket is
// three or four system calls a message. A TLS connection buffers its
// records itself.
func dialBuffered(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: o.ConnectTimeout}
	}
	switch uri.Scheme {
	case "tcp", "mqtt":
		c, err := proxy.FromEnvironmentUsing(d).Dial("tcp", uri.Host)
		if err != nil {
			return nil, err
		}
		return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, 16<<10)}, nil
	case "ssl", "tls", "mqtts":
		if os.Getenv("all_proxy") == "" {
			return tls.DialWithDialer(d, "tcp", uri.Host, o.TLSConfig)
		}
		c, err := proxy.FromEnvironment().Dial("tcp", uri.Host)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(c, o.TLSConfig)
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, err
		}
		return tc, nil
	}
	return nil, fmt.Errorf("unknown broker scheme %q", uri.Scheme)
}

// bufferedConn is a connection whose reads go through r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

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
		return &SubscriptionRefusedError{Broker: m.cfg.Broker, Topic: m.cfg.Topic, User: m.cfg.Username}
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
	if m.warned.Allow() {
		m.log.Warn("mqtt: a message on a topic not subscribed to (a subscription left in the session by an earlier run with this client ID?); acknowledged and dropped",
			"topic", msg.Topic(), "subscribed", m.cfg.Topic, "refused_total", n)
	}
	m.acks.push(heldMessage{msg: msg, conn: m.acks.connection()}) // never in paho's reader
}

// Refused returns how many messages came on topics not subscribed to.
func (m *MQTT) Refused() int64 { return m.refused.Load() }

// BlockSize makes room for a large message.
func (m *MQTT) BlockSize() int { return pipeline.MaxDatagram }

// Fill waits for the next message and adds it to b with its
// acknowledgement, then whatever else has arrived and fits, without
// waiting. A message larger than a block goes in pieces over as many
// blocks as it needs; it is acknowledged once its last byte is written.
//
// A subscription the broker refuses after a reconnect ends the run: Fill
// returns a *SubscriptionRefusedError.
func (m *MQTT) Fill(ctx context.Context, b *pipeline.Block) error {
	for b.Len() == 0 && b.Datagrams() == 0 {
		for m.pending.msg == nil {
			select {
			case err := <-m.failed:
				return err
			default:
			}
			var ok bool
			if m.pending, ok = m.next(); ok {
				m.off = 0
				break
			}
			select {
			case <-m.ready:
			case err := <-m.failed:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !m.addPending(b) {
			return nil // b is full with a piece of a large message
		}
	}
	for m.pending.msg == nil {
		h, ok := m.next()
		if !ok {
			return nil
		}
		m.pending, m.off = h, 0
		if !b.Fits(len(h.msg.Payload())) {
			return nil // it starts the next block
		}
		m.addPending(b)
	}
	return nil
}

// addPending adds what is left of the pending message to b, all of it if
// it fits, and reports whether it did.
func (m *MQTT) addPending(b *pipeline.Block) bool {
	rest := m.pending.msg.Payload()[m.off:]
	spare := b.DatagramSpare()
	if len(rest) <= len(spare) {
		h := m.pending
		// The sender calls this: it only queues the ack.
		b.CommitDatagramAck(copy(spare, rest), func() { m.acks.push(h) })
		m.pending = heldMessage{}
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

// Close hands the acks already queued to paho (waiting up to two seconds),
// publishes the final status, if any, and disconnects. Calling it again
// does nothing.
func (m *MQTT) Close(final []byte) {
	m.closeOnce.Do(func() {
		m.acks.wait(2 * time.Second)
		if m.cfg.StatusTopic != "" && final != nil {
			m.client.Publish(m.cfg.StatusTopic, 1, true, final).WaitTimeout(2 * time.Second)
		}
		m.client.Disconnect(500)
	})
}

// acker hands acknowledgements to paho off the sender's goroutine, in the
// order they come, one goroutine per connection: paho's Ack can block
// while a connection is being lost, and a blocked ack must not hold back
// those of the next connection. Acks for a connection already replaced are
// dropped, as paho itself drops them (the broker sends those messages
// again on the new connection: at least once holds). A goroutine exits
// when its queue is empty or its connection is gone, so no more than one
// per connection whose acks are still queued exists; one stuck inside paho
// exits when paho lets its Ack return.
type acker struct {
	mu      sync.Mutex
	conn    uint64 // the connection now
	queued  map[uint64][]heldMessage
	running map[uint64]bool // a goroutine works on that connection's queue
	busy    int             // acks queued or being handed to paho
	dropped int64           // acks for a replaced connection
}

func (a *acker) init() {
	a.queued = map[uint64][]heldMessage{}
	a.running = map[uint64]bool{}
}

func (a *acker) connection() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.conn
}

// newConnection drops what is queued for earlier connections.
func (a *acker) newConnection() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.conn++
	for c, q := range a.queued {
		if c < a.conn {
			a.dropped += int64(len(q))
			a.busy -= len(q)
			delete(a.queued, c)
		}
	}
}

// push queues an ack; it never blocks for long.
func (a *acker) push(h heldMessage) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if h.conn < a.conn {
		a.dropped++
		return
	}
	a.queued[h.conn] = append(a.queued[h.conn], h)
	a.busy++
	if !a.running[h.conn] {
		a.running[h.conn] = true
		go a.work(h.conn)
	}
}

func (a *acker) work(conn uint64) {
	for {
		a.mu.Lock()
		q := a.queued[conn]
		if len(q) == 0 || conn < a.conn {
			delete(a.running, conn)
			a.mu.Unlock()
			return
		}
		h := q[0]
		if len(q) == 1 {
			delete(a.queued, conn)
		} else {
			a.queued[conn] = q[1:]
		}
		a.mu.Unlock()
		h.msg.Ack()
		a.mu.Lock()
		a.busy--
		a.mu.Unlock()
	}
}

// wait waits until every queued ack is handed to paho, or limit.
func (a *acker) wait(limit time.Duration) {
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		a.mu.Lock()
		busy := a.busy
		a.mu.Unlock()
		if busy <= 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// running counts the ack goroutines; for tests.
func (a *acker) goroutines() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.running)
}

// Describe says that m is a source of messages that acknowledges each once
// it is written: none may be dropped.
func (m *MQTT) Describe() pipeline.Traits {
	return pipeline.Traits{Name: m.name, Datagrams: true, Messages: true, Acknowledged: true}
}

// mqttKind and mqttsKind subscribe to a topic on a broker, over TCP or TLS.
var (
	mqttKind = kind{
		name:   "mqtt",
		usage:  "mqtt[s]://[USER@]HOST[:PORT]/TOPIC",
		traits: (&MQTT{}).Describe(),
		parse:  parseMQTT,
		open:   openMQTT,
	}
	mqttsKind = kind{
		name:   "mqtts",
		traits: (&MQTT{}).Describe(),
		parse:  parseMQTT,
		open:   openMQTT,
	}
)

// parseMQTT reads mqtt[s]://[user@]HOST[:PORT]/TOPIC. The topic is
// everything after the host, wildcards included, so it is not parsed as a
// URL (# would be a fragment).
func parseMQTT(s *Spec) error {
	scheme := s.Kind
	rest, ok := strings.CutPrefix(s.Arg, "//")
	if !ok {
		return errNotASource
	}
	hostPart, topic, ok := strings.Cut(rest, "/")
	if !ok || topic == "" {
		return specErrorf(s.spec, "%s: no topic: use %s://[user@]HOST[:PORT]/TOPIC, such as mqtt://broker.lan/devices/pi7/frames", s.spec, scheme)
	}
	if user, host, found := strings.Cut(hostPart, "@"); found {
		if strings.Contains(user, ":") {
			r := redact(s.spec)
			return &SpecError{Spec: r, Detail: r + ": " + ErrPasswordInURL.Error(), Err: ErrPasswordInURL}
		}
		s.mqtt.Username, hostPart = user, host
	}
	if hostPart == "" {
		return specErrorf(s.spec, "%s: no broker host: use %s://HOST[:PORT]/TOPIC", s.spec, scheme)
	}
	defPort := "1883"
	if scheme == "mqtts" {
		defPort = "8883"
	}
	host, p, err := net.SplitHostPort(hostPart)
	if err != nil {
		host, p = strings.Trim(hostPart, "[]"), defPort
	}
	if host == "" || strings.ContainsAny(host, " /") {
		return specErrorf(s.spec, "%s: %q is not a broker host", s.spec, hostPart)
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return specErrorf(s.spec, "%s: %q is not a port", s.spec, p)
	}
	if err := checkTopicFilter(topic); err != nil {
		return specErrorf(s.spec, "%s: %v", s.spec, err)
	}
	s.mqtt.Topic = topic
	s.mqtt.Broker = "tcp://" + net.JoinHostPort(host, p)
	if scheme == "mqtts" {
		s.mqtt.Broker = "ssl://" + net.JoinHostPort(host, p)
	}
	s.host = host
	return nil
}

// openMQTT dials the broker (see DialMQTT) with Options.MQTT and what the
// spec says.
func openMQTT(ctx context.Context, s *Spec, o Options) (*Opened, error) {
	cfg := o.MQTT
	cfg.Broker, cfg.Topic, cfg.Username = s.mqtt.Broker, s.mqtt.Topic, s.mqtt.Username
	if cfg.Username == "" {
		cfg.Password = "" // MQTT sends a password only with a user name
	}
	switch {
	case s.Kind != "mqtts":
		cfg.TLS = nil
	case cfg.TLS == nil:
		cfg.TLS = &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
	case cfg.TLS.ServerName == "":
		cfg.TLS = cfg.TLS.Clone()
		cfg.TLS.ServerName = s.host
	}
	m, err := DialMQTT(ctx, cfg, o.Logger)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ErrStopped
		}
		return nil, err
	}
	m.name = s.spec
	// Closed on every way out; a caller that publishes a final status
	// closes it first with that (MQTT.Close).
	return opened(s, m, func() { m.Close(nil) }), nil
}

// redact hides what follows a ':' in the user part of a URL.
func redact(spec string) string {
	scheme, rest, _ := strings.Cut(spec, "://")
	if at := strings.Index(rest, "@"); at >= 0 {
		if colon := strings.Index(rest[:at], ":"); colon >= 0 {
			rest = rest[:colon] + ":****" + rest[at:]
		}
	}
	return scheme + "://" + rest
}

// checkTopicFilter checks an MQTT topic filter as the broker would: a + or
// # fills a whole level, # only the last.
func checkTopicFilter(topic string) error {
	if len(topic) > 65535 || strings.ContainsRune(topic, 0) || !utf8.ValidString(topic) {
		return fmt.Errorf("topic %q is not a valid MQTT topic filter (UTF-8, no NUL, at most 65535 bytes)", topic)
	}
	levels := strings.Split(topic, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return fmt.Errorf("topic %q: # must be the last level, as in a/b/#", topic)
		case l != "#" && strings.Contains(l, "#"), l != "+" && strings.Contains(l, "+"):
			return fmt.Errorf("topic %q: + and # must fill a whole level, as in a/+/c or a/#, not %q", topic, l)
		}
	}
	return nil
}
