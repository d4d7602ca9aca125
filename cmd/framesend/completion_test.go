package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bashComplete runs the generated bash script in a real bash, as bash's
// programmable completion does: COMP_WORDS and COMP_CWORD set, the function
// called, COMPREPLY read back.
func bashComplete(t *testing.T, words ...string) []string {
	t.Helper()
	bash := requireTool(t, "bash", "bash")
	script := `source <("$FRAMESEND" completion bash) || exit 3
complete -p framesend >/dev/null || exit 4
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
_framesend
printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command(bash, append([]string{"--norc", "-c", script, "bash"}, words...)...)
	cmd.Env = append(os.Environ(), "FRAMESEND="+binary)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v: %s", err, out)
	}
	return strings.Fields(string(out))
}

func TestBashCompletion(t *testing.T) {
	cases := []struct {
		words    []string
		want     []string
		wantNone []string
	}{
		{[]string{"framesend", ""}, []string{"send", "listen", "doctor", "help"}, nil},
		{[]string{"framesend", "se"}, []string{"send"}, []string{"listen"}},
		{[]string{"framesend", "send", "--"}, []string{"--port", "--source", "--rate", "--frame-size", "--client-id", "--help"}, []string{"--expect", "--window"}},
		{[]string{"framesend", "send", "--so"}, []string{"--source"}, []string{"--port"}},
		{[]string{"framesend", "listen", "--"}, []string{"--port", "--expect", "--format", "--quiet"}, []string{"--source"}},
		{[]string{"framesend", "loopback", "--w"}, []string{"--window"}, nil},
		{[]string{"framesend", "doctor", "--"}, []string{"--port", "--json"}, nil},
		{[]string{"framesend", "send", "--parity", ""}, []string{"none", "odd", "even", "mark", "space"}, []string{"--port"}},
		{[]string{"framesend", "listen", "--format", "j"}, []string{"jsonl"}, nil},
		{[]string{"framesend", "send", "--rate", ""}, nil, []string{"--port"}},
		{[]string{"framesend", "completion", ""}, []string{"bash", "zsh"}, nil},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.words, " "), func(t *testing.T) {
			got := bashComplete(t, c.words...)
			for _, w := range c.want {
				if !contains(got, w) {
					t.Errorf("offered %q, want %q among them", got, w)
				}
			}
			for _, w := range c.wantNone {
				if contains(got, w) {
					t.Errorf("offered %q, want no %q", got, w)
				}
			}
			if c.want == nil && len(got) != 0 {
				t.Errorf("offered %q, want nothing", got)
			}
		})
	}
	// Every flag of every command is offered.
	for _, c := range visibleCommands(newApp(nil, nil, nil)) {
		got := bashComplete(t, "framesend", c.Name, "--")
		for _, f := range visibleFlags(c) {
			if !contains(got, "--"+f.Names()[0]) {
				t.Errorf("framesend %s --<TAB> does not offer --%s", c.Name, f.Names()[0])
			}
		}
	}
	// --port completes paths, starting at /dev/tty.
	if got := bashComplete(t, "framesend", "send", "--port", ""); len(got) == 0 || !strings.HasPrefix(got[0], "/dev/tty") {
		t.Errorf("--port offered %q, want /dev/tty… paths", got)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// interactive is a shell running in a tmux pane, typed into as a user
// would, with the screen read back.
type interactive struct {
	t    *testing.T
	tmux string
	sock string
}

func startInteractive(t *testing.T, env []string, shell ...string) *interactive {
	t.Helper()
	tmux := requireTool(t, "tmux", "tmux")
	sh := &interactive{t: t, tmux: tmux, sock: filepath.Join(t.TempDir(), "tmux.sock")}
	args := append([]string{"-S", sh.sock, "-f", "/dev/null", "new-session", "-d", "-x", "250", "-y", "50", "env"}, env...)
	if out, err := exec.Command(tmux, append(args, shell...)...).CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command(tmux, "-S", sh.sock, "kill-server").Run() })
	sh.waitFor("ready>")
	return sh
}

func (sh *interactive) keys(keys ...string) {
	sh.t.Helper()
	if out, err := exec.Command(sh.tmux, append([]string{"-S", sh.sock, "send-keys", "-t", "0", "--"}, keys...)...).CombinedOutput(); err != nil {
		sh.t.Fatalf("tmux send-keys: %v: %s", err, out)
	}
}

func (sh *interactive) screen() string {
	out, _ := exec.Command(sh.tmux, "-S", sh.sock, "capture-pane", "-p", "-t", "0").Output()
	return string(out)
}

// waitForEmptyPrompt waits until the last line on the screen is a prompt
// with nothing typed after it.
func (sh *interactive) waitForEmptyPrompt() {
	sh.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines := strings.Split(strings.TrimRight(sh.screen(), "\n "), "\n")
		if strings.TrimSpace(lines[len(lines)-1]) == "ready>" {
			return
		}
		if time.Now().After(deadline) {
			sh.t.Fatalf("no empty prompt on the screen:\n%s", sh.screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor waits until every one of want is on the screen.
func (sh *interactive) waitFor(want ...string) string {
	sh.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := sh.screen()
		missing := ""
		for _, w := range want {
			if !strings.Contains(s, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return s
		}
		if time.Now().After(deadline) {
			sh.t.Fatalf("%q never showed on the screen:\n%s", missing, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCompletionInInteractiveShells types framesend command lines and TAB
// into a real bash and a real zsh with the generated scripts loaded.
func TestCompletionInInteractiveShells(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink(binary, filepath.Join(dir, "framesend")); err != nil {
		t.Fatal(err)
	}
	path := "PATH=" + dir + ":" + os.Getenv("PATH")
	t.Run("bash", func(t *testing.T) {
		requireTool(t, "bash", "bash")
		rc := filepath.Join(dir, "bashrc")
		os.WriteFile(rc, []byte("source <(framesend completion bash)\nbind 'set show-all-if-ambiguous on'\nPS1='ready> '\n"), 0o644)
		sh := startInteractive(t, []string{path, "TERM=xterm", "INPUTRC=/dev/null"}, "bash", "--noprofile", "--rcfile", rc, "-i")
		checkInteractive(sh)
	})
	t.Run("zsh", func(t *testing.T) {
		requireTool(t, "zsh", "zsh")
		fdir := filepath.Join(dir, "zfunc")
		os.Mkdir(fdir, 0o755)
		out, err := command(t, "completion", "zsh").Output()
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(fdir, "_framesend"), out, 0o644)
		zdot := filepath.Join(dir, "zdot")
		os.Mkdir(zdot, 0o755)
		os.WriteFile(filepath.Join(zdot, ".zshrc"), []byte("fpath=("+fdir+" $fpath)\nautoload -Uz compinit\ncompinit -u -D\nPS1='ready> '\n"), 0o644)
		sh := startInteractive(t, []string{path, "TERM=xterm", "ZDOTDIR=" + zdot}, "zsh", "-i")
		checkInteractive(sh)
	})
}

func checkInteractive(sh *interactive) {
	// A unique prefix completes in place.
	sh.keys("framesend sen", "Tab")
	sh.waitFor("ready> framesend send")
	sh.keys("--sou", "Tab")
	sh.waitFor("framesend send --source")
	sh.keys("C-u")
	// An ambiguous one lists the flags that fit.
	sh.keys("framesend listen --", "Tab")
	sh.waitFor("--expect", "--format", "--quiet", "--frame-size")
	// C-u, not C-c: a signal can land while the completion function still
	// runs and be lost, where a key waits its turn in the terminal's input.
	sh.keys("C-u")
	sh.waitForEmptyPrompt()
	sh.keys("framesend send --parity ", "Tab")
	sh.waitFor("mark", "space", "even")
}
