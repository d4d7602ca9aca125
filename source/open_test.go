package source

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framesend/framesend/pipeline"
)

// Each kind of spec says what its source is before anything is opened, and
// the opened source says the same of itself.
func TestOpenSaysWhatTheSourceIs(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "data.bin")
	os.WriteFile(bin, make([]byte, 7*10+3), 0o644)
	hex := filepath.Join(dir, "frames.hex")
	os.WriteFile(hex, []byte("01 02 03\n04 05 06 07 08 09 0a 0b\n"), 0o644)
	stream := pipeline.Traits{}
	lines := pipeline.Traits{Datagrams: true}
	cases := []struct {
		spec   string
		kind   string
		traits pipeline.Traits
		// Frames known in advance with 7-byte frames, padded: as one
		// stream, then aligned on datagrams.
		stream, aligned int64
	}{
		{"counter", "counter", stream, 0, 0},
		{"stdin", "stdin", stream, 0, 0},
		{"file:" + bin, "file", stream, 11, 11},
		{"hex:" + hex, "hex", lines, 2, 3},
		{"hex:-", "hex", lines, 0, 0},
		{"udp:127.0.0.1:0", "udp", pipeline.Traits{Datagrams: true, Messages: true, Live: true}, 0, 0},
	}
	if runtime.GOOS != "linux" {
		cases = cases[:len(cases)-1] // the udp source needs Linux
	}
	for _, c := range cases {
		t.Run(c.spec, func(t *testing.T) {
			s, err := Parse(c.spec)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := c.traits
			want.Name = c.spec
			if s.Kind != c.kind || s.Traits != want {
				t.Errorf("Parse: kind %q, traits %+v; want %q, %+v", s.Kind, s.Traits, c.kind, want)
			}
			o, err := Open(context.Background(), c.spec, Options{Stdin: bytes.NewReader(nil)})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer o.Close()
			d, ok := o.Source.(pipeline.Describer)
			if !ok {
				t.Fatalf("the opened %T does not describe itself", o.Source)
			}
			got := d.Describe()
			if c.kind == "hex" && c.spec == "hex:-" {
				want.Name = "stdin" // what its errors call it
			}
			if got != want || o.Traits != got {
				t.Errorf("opened: Describe %+v, Traits %+v; want %+v", got, o.Traits, want)
			}
			if n := o.Frames(7, pipeline.AlignStream, pipeline.PartialPad); n != c.stream {
				t.Errorf("Frames(stream) = %d, want %d", n, c.stream)
			}
			if n := o.Frames(7, pipeline.AlignDatagram, pipeline.PartialPad); n != c.aligned {
				t.Errorf("Frames(datagram) = %d, want %d", n, c.aligned)
			}
		})
	}
}

// The mqtt source is acknowledged: the spec says so, and so does the
// source once the broker is dialled.
func TestOpenMQTTIsAcknowledged(t *testing.T) {
	broker := strings.TrimPrefix(mosquitto(t, ""), "tcp://")
	spec := "mqtt://" + broker + "/in"
	s, err := Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	want := pipeline.Traits{Name: spec, Datagrams: true, Messages: true, Acknowledged: true}
	if s.Traits != want {
		t.Errorf("Parse: traits %+v, want %+v", s.Traits, want)
	}
	o, err := s.Open(context.Background(), Options{MQTT: MQTTConfig{ClientID: "open-test", ConnectTimeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, ok := o.Source.(*MQTT); !ok || o.Traits != want {
		t.Errorf("opened %T with traits %+v, want *MQTT with %+v", o.Source, o.Traits, want)
	}
	// The pipeline refuses to drop what it acknowledges.
	cfg := pipeline.DefaultConfig()
	cfg.Source, cfg.Overflow = o.Source, pipeline.OverflowDropNewest
	var cerr *pipeline.ConfigError
	if _, err := pipeline.Run(context.Background(), &bytes.Buffer{}, cfg); !errors.As(err, &cerr) || cerr.Field != "Overflow" {
		t.Errorf("Run with drop-newest = %v, want a *ConfigError on Overflow", err)
	}
}

// A mistake in a spec is a *SpecError, found without opening anything,
// whose message names the spec and the fix.
func TestParseRefuses(t *testing.T) {
	cases := []struct{ spec, want string }{
		{"ftp:x", `source "ftp:x" is not a source: use counter, stdin, file:PATH, hex:PATH (hex:- for stdin), udp:[HOST:]PORT or mqtt[s]://[USER@]HOST[:PORT]/TOPIC`},
		{"counter:7", `"counter:7" is not a source`},
		{"mqtt:x", `"mqtt:x" is not a source`},
		{"file:", "source file: needs a path, as in file:capture.bin"},
		{"hex:", "source hex: needs a path"},
		{"udp:", "source udp: needs a port"},
		{"udp:70000", `source udp:70000: "70000" is not a port: use 0 to 65535`},
		{"udp:300.1.2.3:9000", `"300.1.2.3" is not an address of this machine`},
		{"mqtt://127.0.0.1", "source mqtt://127.0.0.1: no topic"},
		{"mqtt:///t", "no broker host"},
		{"mqtt://127.0.0.1:x/t", `"x" is not a port`},
		{"mqtts://127.0.0.1:0/t", `"0" is not a port`},
		{"mqtt://127.0.0.1/a/#/b", "# must be the last level"},
		{"mqtt://127.0.0.1/a/b+", `+ and # must fill a whole level, as in a/+/c or a/#, not "b+"`},
	}
	for _, c := range cases {
		_, err := Parse(c.spec)
		var serr *SpecError
		if !errors.As(err, &serr) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want a *SpecError with %q", c.spec, err, c.want)
		}
	}
	// A password in the URL is hidden in the error too.
	_, err := Parse("mqtt://bob:secret@127.0.0.1/t")
	var serr *SpecError
	if !errors.As(err, &serr) || !errors.Is(err, ErrPasswordInURL) || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "bob:****@") || serr.Spec != "mqtt://bob:****@127.0.0.1/t" {
		t.Errorf("Parse with a password = %v, want a *SpecError for ErrPasswordInURL with the password hidden", err)
	}
	// Not mistakes: a kind without an argument may end in ':'.
	for _, spec := range []string{"counter", "counter:", "stdin:", "hex:-", "udp:9000", "mqtts://u@broker.lan/a/+/c"} {
		if _, err := Parse(spec); err != nil {
			t.Errorf("Parse(%q) = %v, want no error", spec, err)
		}
	}
}

// What cannot be opened is a failure, not a *SpecError; bad hex in a file
// is a *HexError; a stop while a FIFO waits for its writer is ErrStopped.
func TestOpenFailures(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.hex")
	os.WriteFile(bad, []byte("01 zz\n"), 0o644)
	var serr *SpecError
	var herr *HexError
	for spec, want := range map[string]string{
		"file:" + filepath.Join(dir, "missing"): "no such file",
		"hex:" + dir:                            "is a directory",
	} {
		_, err := Open(context.Background(), spec, Options{})
		if err == nil || errors.As(err, &serr) || errors.As(err, &herr) || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q) = %v, want a failure with %q", spec, err, want)
		}
	}
	if _, err := Open(context.Background(), "hex:"+bad, Options{}); !errors.As(err, &herr) || herr.Line != 1 || herr.Token != "zz" {
		t.Errorf("Open(bad hex) = %v, want a *HexError for zz on line 1", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, spec := range []string{"file:" + fifo, "hex:" + fifo} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Open(ctx, spec, Options{}); !errors.Is(err, ErrStopped) {
			t.Errorf("Open(%q) stopped = %v, want ErrStopped", spec, err)
		}
		// A writer lets the open left waiting finish, and close.
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	}
}
