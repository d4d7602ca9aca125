package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/framesend/framesend/pipeline"
	"github.com/framesend/framesend/source"
)

func mqttFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "client-id", Usage: "mqtt: the client ID the broker keeps the session under; keep it stable across restarts (default framesend-HOSTNAME-PORTNAME)", EnvVars: env("client-id"), Category: catMQTT},
		&cli.DurationFlag{Name: "connect-timeout", Usage: "mqtt: give up if the broker cannot be reached at start within this long; 0 = keep retrying", EnvVars: env("connect-timeout"), Category: catMQTT},
		&cli.BoolFlag{Name: "drain", Usage: "mqtt: drain the port (tcdrain) before acknowledging a message, not only write it", EnvVars: env("drain"), Category: catMQTT},
		&cli.StringFlag{Name: "mqtt-ca", Usage: "mqtts: CA certificate `FILE` (PEM) to verify the broker with", EnvVars: env("mqtt-ca"), Category: catMQTT},
		&cli.StringFlag{Name: "mqtt-cert", Usage: "mqtts: client certificate `FILE` (PEM)", EnvVars: env("mqtt-cert"), Category: catMQTT},
		&cli.StringFlag{Name: "mqtt-key", Usage: "mqtts: client key `FILE` (PEM)", EnvVars: env("mqtt-key"), Category: catMQTT},
		&cli.StringFlag{Name: "mqtt-password-file", Usage: "mqtt: read the password from `FILE` (or set FRAMESEND_MQTT_PASSWORD); never on the command line", EnvVars: env("mqtt-password-file"), Category: catMQTT},
	}
}

// mqttConfig turns --source mqtt://[user@]HOST[:PORT]/TOPIC (or mqtts://)
// and the mqtt flags into the source's config. The topic is everything after
// the host, wildcards included, so it is not parsed as a URL (# would be a
// fragment).
func mqttConfig(c *cli.Context, spec, port string, log *slog.Logger) (source.MQTTConfig, error) {
	scheme, rest, _ := strings.Cut(spec, "://")
	hostPart, topic, ok := strings.Cut(rest, "/")
	if !ok || topic == "" {
		return source.MQTTConfig{}, usagef("--source %s: no topic: use %s://[user@]HOST[:PORT]/TOPIC, such as mqtt://broker.lan/devices/pi7/frames", spec, scheme)
	}
	cfg := source.MQTTConfig{Topic: topic}
	if user, host, found := strings.Cut(hostPart, "@"); found {
		if strings.Contains(user, ":") {
			return cfg, usagef("--source %s: a password in the URL would show in ps and in logs: set FRAMESEND_MQTT_PASSWORD or use --mqtt-password-file", redact(spec))
		}
		cfg.Username, hostPart = user, host
	}
	if hostPart == "" {
		return cfg, usagef("--source %s: no broker host: use %s://HOST[:PORT]/TOPIC", spec, scheme)
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
		return cfg, usagef("--source %s: %q is not a broker host", spec, hostPart)
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return cfg, usagef("--source %s: %q is not a port", spec, p)
	}
	cfg.Broker = "tcp://" + net.JoinHostPort(host, p)
	if scheme == "mqtts" {
		cfg.Broker = "ssl://" + net.JoinHostPort(host, p)
		tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if ca := c.String("mqtt-ca"); ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return cfg, failure{fmt.Errorf("--mqtt-ca: %w", err)}
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return cfg, usagef("--mqtt-ca %s: no PEM certificate in it", ca)
			}
		}
		if cert, key := c.String("mqtt-cert"), c.String("mqtt-key"); cert != "" || key != "" {
			pair, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				return cfg, usagef("--mqtt-cert/--mqtt-key: %v", err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		cfg.TLS = tc
	}
	cfg.Password = os.Getenv("FRAMESEND_MQTT_PASSWORD")
	if f := c.String("mqtt-password-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return cfg, failure{fmt.Errorf("--mqtt-password-file: %w", err)}
		}
		cfg.Password = strings.TrimRight(string(b), "\r\n")
	}
	if cfg.Password != "" && cfg.Username == "" {
		// MQTT sends a password only with a user name.
		if f := c.String("mqtt-password-file"); f != "" {
			return cfg, usagef("--mqtt-password-file %s: the password needs a user: name one in the URL, as %s://USER@%s/%s", f, scheme, hostPart, topic)
		}
		log.Warn(fmt.Sprintf("FRAMESEND_MQTT_PASSWORD is set, but --source %s names no user, so the password is not sent: name one, as %s://USER@%s/%s", spec, scheme, hostPart, topic))
		cfg.Password = ""
	}
	if err := checkTopicFilter(topic); err != nil {
		return cfg, usagef("--source %s: %v", spec, err)
	}
	cfg.ClientID = c.String("client-id")
	if cfg.ClientID == "" {
		hostname, _ := os.Hostname()
		cfg.ClientID = "framesend-" + hostname + "-" + filepath.Base(port)
	}
	cfg.ConnectTimeout = c.Duration("connect-timeout")
	if cfg.ConnectTimeout < 0 {
		return cfg, usagef("--connect-timeout %v is negative", cfg.ConnectTimeout)
	}
	cfg.StatusTopic = "framesend/" + cfg.ClientID + "/status"
	return cfg, nil
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

// status is what framesend publishes, retained, on its status topic.
type status struct {
	State      string `json:"state"` // online or offline
	Port       string `json:"port"`
	Device     string `json:"device"` // present or gone
	Frames     int64  `json:"frames"`
	Dropped    int64  `json:"dropped"`
	Reconnects int64  `json:"reconnects"`
	Time       string `json:"time"`
}

// publishStatus publishes the fleet status every interval (10 s if 0)
// until ctx is done. It returns when its goroutine has exited.
func publishStatus(ctx context.Context, m *source.MQTT, port string, live *pipeline.Live, gone func() bool, interval time.Duration) func() {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			m.PublishStatus(statusJSON("online", port, live, gone))
			select {
			case <-t.C:
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

func statusJSON(state, port string, live *pipeline.Live, gone func() bool) []byte {
	s := status{State: state, Port: port, Device: "present", Frames: live.Frames(), Dropped: live.Dropped(), Reconnects: live.Reconnects(), Time: time.Now().UTC().Format(time.RFC3339)}
	if gone() {
		s.Device = "gone"
	}
	b, _ := json.Marshal(s)
	return b
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
