package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/framesend/framesend/device/devicetest"
)

// TestUsageMessages: each bad value is one line naming the flag as typed
// and what it takes, exit 2.
func TestUsageMessages(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"send", "--drain-timeout", "5"}, `--drain-timeout "5" has no unit: write a duration such as 5s`},
		{[]string{"send", "--drain-timeout", "soon"}, `--drain-timeout "soon" is not a duration`},
		{[]string{"send", "--frame-size", "99999999999999999999"}, `--frame-size "99999999999999999999" is out of range`},
		{[]string{"send", "--rate", "fast"}, `--rate "fast" is not a number`},
		{[]string{"send", "--count", "1.5"}, `--count "1.5" is not a whole number`},
		{[]string{"send", "--no-lock=maybe"}, `--no-lock "maybe" is not a yes or no`},
		{[]string{"send", "-n5"}, "unknown flag -n5: write -n 5 (with a space) or --count 5"},
		{[]string{"send", "--nope"}, "unknown flag --nope"},
		{[]string{"listen", "-z"}, "unknown flag -z"},
		{[]string{"completion", "fish"}, `no script for "fish": framesend has scripts for bash and zsh`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := runIn(context.Background(), append(c.args, "--port", "/dev/null")...)
			if c.args[0] == "completion" {
				code, _, stderr = runIn(context.Background(), c.args...)
			}
			if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q: want 2 and one line with %q", code, stderr, c.want)
			}
			for _, raw := range []string{"parse error", "strconv", "not defined"} {
				if strings.Contains(stderr, raw) {
					t.Errorf("stderr %q has the parser's text %q", stderr, raw)
				}
			}
		})
	}
}

// TestEnvironmentVariables: a bad variable is framesend's own line naming
// it; booleans take the words /etc/default files use.
func TestEnvironmentVariables(t *testing.T) {
	bad := []struct{ name, value, want string }{
		{"FRAMESEND_BAUD", "abc", `environment variable FRAMESEND_BAUD="abc" (for --baud) is not a whole number`},
		{"FRAMESEND_DRAIN_TIMEOUT", "5", `FRAMESEND_DRAIN_TIMEOUT="5" (for --drain-timeout) has no unit`},
		{"FRAMESEND_RATE", "x", `FRAMESEND_RATE="x" (for --rate) is not a number`},
		{"FRAMESEND_NO_LOCK", "maybe", `FRAMESEND_NO_LOCK="maybe" (for --no-lock) is not a yes or no`},
	}
	for _, c := range bad {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			t.Setenv(c.name, c.value)
			code, _, stderr := runIn(context.Background(), "send", "--port", "/dev/null")
			if code != 2 || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "strconv") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q: want 2 and %q", code, stderr, c.want)
			}
		})
	}
	// yes/no and on/off, as /etc/default files write them, are taken.
	f := newFake(t, devicetest.Options{})
	for _, v := range []string{"yes", "on", "YES", "1", "true"} {
		t.Run("FRAMESEND_NO_LOCK="+v, func(t *testing.T) {
			code, _, stderr := framesend(t, []string{"FRAMESEND_NO_LOCK=" + v}, "send", "--port", f.Path(), "--count", "1")
			if code != 0 {
				t.Errorf("exit %d: %s", code, stderr)
			}
		})
	}
	for _, v := range []string{"no", "off", "0"} {
		t.Run("FRAMESEND_NO_PROGRESS="+v, func(t *testing.T) {
			t.Setenv("FRAMESEND_NO_PROGRESS", v)
			if code, _, stderr := runIn(context.Background(), "send", "--port", f.Path(), "--count", "1"); code != 0 {
				t.Errorf("exit %d: %s", code, stderr)
			}
		})
	}
}

// TestUnusedFlagsFromTheEnvironmentWarn: the same flags set only in the
// environment (a shared /etc/default file) are a warning, not a refusal.
func TestUnusedFlagsFromTheEnvironmentWarn(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	code, _, stderr := framesend(t, []string{"FRAMESEND_CLIENT_ID=pi7", "FRAMESEND_RECONNECT_TIMEOUT=1m"}, "send", "--port", f.Path(), "--count", "1")
	for _, want := range []string{"FRAMESEND_CLIENT_ID is set, but --client-id applies to mqtt:// and mqtts:// sources only", "FRAMESEND_RECONNECT_TIMEOUT is set, but --reconnect-timeout applies with --reconnect only"} {
		if code != 0 || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, stderr %q: want 0 and a warning %q", code, stderr, want)
		}
	}
	// A password with no user to send it with.
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("secret\n"), 0o600)
	code, _, stderr = framesend(t, nil, "send", "--port", f.Path(), "--source", "mqtt://127.0.0.1:1/t", "--mqtt-password-file", pw)
	if code != 2 || !strings.Contains(stderr, "the password needs a user: name one in the URL, as mqtt://USER@127.0.0.1:1/t") {
		t.Errorf("exit %d, stderr %q: want 2 and the missing user named", code, stderr)
	}
	code, _, stderr = framesend(t, []string{"FRAMESEND_MQTT_PASSWORD=pw"}, "send", "--port", f.Path(), "--source", "mqtt://127.0.0.1:1/t", "--connect-timeout", "100ms")
	if !strings.Contains(stderr, "names no user, so the password is not sent") {
		t.Errorf("exit %d, stderr %q: want a warning about the password", code, stderr)
	}
}

// TestCommandsOwnVariables: FRAMESEND_COUNT is send's; listen's --count is
// FRAMESEND_LISTEN_COUNT, so a service's setting never changes a listen.
func TestCommandsOwnVariables(t *testing.T) {
	f := newFake(t, devicetest.Options{})
	f.Write(counterBytes(7 * 3))
	t.Setenv("FRAMESEND_COUNT", "1")
	t.Setenv("FRAMESEND_TIMEOUT", "1ns")
	t.Setenv("FRAMESEND_LISTEN_COUNT", "2")
	code, stdout, stderr := runIn(context.Background(), "listen", "--port", f.Path())
	if code != 0 || strings.Count(stdout, "\n") != 2 {
		t.Errorf("exit %d, %d lines, stderr %q: want the 2 frames FRAMESEND_LISTEN_COUNT asks for", code, strings.Count(stdout, "\n"), stderr)
	}
}
