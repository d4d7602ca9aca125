package main

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

func TestHelpCommandAndOrder(t *testing.T) {
	code, out, stderr := runIn(context.Background(), "help")
	if code != 0 || !strings.Contains(out, "COMMANDS:") || !strings.Contains(out, "MQTT") {
		t.Errorf("framesend help: exit %d, stdout %q, stderr %q: want the help, which mentions MQTT", code, out, stderr)
	}
	code, out, _ = runIn(context.Background(), "help", "listen")
	if code != 0 || !strings.Contains(out, "framesend listen") || !strings.Contains(out, "--expect") {
		t.Errorf("framesend help listen: exit %d, %q", code, out)
	}
	if code, _, stderr := runIn(context.Background(), "help", "nope"); code != 2 || !strings.Contains(stderr, `no command "nope"`) {
		t.Errorf("framesend help nope: exit %d, %q", code, stderr)
	}
	// The port, then the source, come first in send's help.
	_, out, _ = runIn(context.Background(), "send", "--help")
	_, out, _ = strings.Cut(out, "OPTIONS:")
	inOrderText(t, out, "--port", "--baud", "--source", "--frame-size", "--client-id", "--log-level")
	_, out, _ = runIn(context.Background(), "listen", "--help")
	_, out, _ = strings.Cut(out, "OPTIONS:")
	inOrderText(t, out, "--port", "--frame-size", "--format")
}

// inOrderText checks that each of words first appears in s after the one
// before it.
func inOrderText(t *testing.T, s string, words ...string) {
	t.Helper()
	last := -1
	for _, w := range words {
		i := strings.Index(s, w)
		if i < 0 {
			t.Errorf("%q missing", w)
			continue
		}
		if i < last {
			t.Errorf("%q comes before %q, want after", w, words[0])
		}
		last = i
	}
}

func TestManPage(t *testing.T) {
	code, page, stderr := runIn(context.Background(), "man")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, sec := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXAMPLES", "EXIT STATUS", "ENVIRONMENT"} {
		if !regexp.MustCompile(`(?m)^\.SH "?` + sec + `"?$`).MatchString(page) {
			t.Errorf("no %s section", sec)
		}
	}
	for _, odd := range []string{`=""`, "(default: 0)", "(default: 0s)", "(default: false)"} {
		if strings.Contains(page, odd) {
			t.Errorf("the man page shows %q", odd)
		}
	}
	// Every visible flag of every command, and its variable, is there.
	app := newApp(nil, nil, nil)
	env := page[strings.Index(page, ".SH ENVIRONMENT"):]
	for _, c := range visibleCommands(app) {
		sec := page[strings.Index(page, `.SS "framesend `+c.Name+`"`)+4:]
		sec = sec[:strings.Index(sec, "\n.S")]
		for _, f := range visibleFlags(c) {
			if !strings.Contains(sec, `\fB`+troff("--"+f.Names()[0])+`\fR`) {
				t.Errorf("%s --%s is not in the man page", c.Name, f.Names()[0])
			}
			vars := f.(interface{ GetEnvVars() []string }).GetEnvVars()
			if len(vars) != 1 || !strings.Contains(env, troff(vars[0])) || !strings.Contains(sec, troff(vars[0])) {
				t.Errorf("the variable of %s --%s (%v) is not in ENVIRONMENT and in its entry", c.Name, f.Names()[0], vars)
			}
		}
	}
	_, send, _ := strings.Cut(page[strings.Index(page, `.SS "framesend send"`):], ".TP")
	inOrderText(t, send, `\-\-port`, `\-\-source`, `\-\-frame\-size`, `\-\-log\-level`)
	// groff reads it without a warning.
	groff := requireTool(t, "groff", "groff-base")
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff: %v: %s", err, out)
	}
}
