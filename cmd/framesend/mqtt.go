package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

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

// mqttConfig turns the mqtt flags into the rest of an mqtt source's
// configuration; the broker, topic and user come from the spec (see
// source.Parse).
func mqttConfig(c *cli.Context, spec *source.Spec, port string, log *slog.Logger) (source.MQTTConfig, error) {
	var cfg source.MQTTConfig
	if spec.Kind == "mqtts" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12} // the source names the server
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
			switch {
			case key == "":
				return cfg, usagef("--mqtt-cert %s needs --mqtt-key: a client certificate goes with its private key", cert)
			case cert == "":
				return cfg, usagef("--mqtt-key %s needs --mqtt-cert: a private key goes with its client certificate", key)
			}
			pair, err := tls.LoadX509KeyPair(cert, key)
			var perr *fs.PathError
			if errors.As(err, &perr) {
				// A file that cannot be read is a failure, as for --mqtt-ca.
				return cfg, failure{fmt.Errorf("--mqtt-cert/--mqtt-key: %w", err)}
			}
			if err != nil {
				return cfg, usagef("--mqtt-cert %s/--mqtt-key %s: %v", cert, key, err)
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
	if cfg.Password != "" && spec.User() == "" {
		// MQTT sends a password only with a user name.
		withUser := strings.Replace(spec.String(), "://", "://USER@", 1)
		if f := c.String("mqtt-password-file"); f != "" {
			return cfg, usagef("--mqtt-password-file %s: the password needs a user: name one in the URL, as %s", f, withUser)
		}
		log.Warn(fmt.Sprintf("FRAMESEND_MQTT_PASSWORD is set, but --source %s names no user, so the password is not sent: name one, as %s", spec, withUser))
		cfg.Password = ""
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
