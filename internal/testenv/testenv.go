// Package testenv is the one place where a framesend test decides it
// cannot run in the environment it finds. A test that needs something one
// can install (a tool, root) skips saying what to install, and fails
// instead when FRAMESEND_REQUIRE_TOOLS is set, as it is in CI, so a missing
// package never turns a test into a silent pass. A test that needs what no
// package gives (a spare 16550, an IPv6 loopback) skips through Impossible,
// whose reason says so; make test lists every skip at the end.
package testenv

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Required reports whether FRAMESEND_REQUIRE_TOOLS is set.
func Required() bool { return os.Getenv("FRAMESEND_REQUIRE_TOOLS") != "" }

// Need skips the test saying msg (what is missing and how to get it), or
// fails it when FRAMESEND_REQUIRE_TOOLS is set.
func Need(t testing.TB, msg string) {
	t.Helper()
	if Required() {
		t.Fatal(msg + ", and FRAMESEND_REQUIRE_TOOLS is set")
	}
	t.Skip(msg)
}

// Tool returns the path of the command name, or goes through Need saying
// to install the Debian package pkg.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Need(t, fmt.Sprintf("%s is not installed (apt-get install %s); this test needs it", name, pkg))
	}
	return path
}

// Root goes through Need unless the test runs as root; why says what root
// is needed for.
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Need(t, "this test must run as root: "+why)
	}
}

// Impossible skips the test for a reason that installing nothing on this
// machine can remove; it skips even with FRAMESEND_REQUIRE_TOOLS set.
func Impossible(t testing.TB, reason string) {
	t.Helper()
	t.Skip("cannot run on this machine, whatever is installed: " + reason)
}

// Nobody is the user and group a root test runs an unprivileged side as.
var Nobody = &syscall.Credential{Uid: 65534, Gid: 65534}

// Unprivileged makes a test that must run as a user other than root run
// as one. Called by a user other than root, it returns true and the test
// goes on. Called by root, it runs this same test again in a copy of the
// test binary as uid 65534, reports that run's output and result, and
// returns false: the caller returns at once. So the test runs in CI, which
// runs as root.
func Unprivileged(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return true
	}
	if os.Getenv("FRAMESEND_TESTENV_CHILD") != "" {
		t.Fatal("still root in the unprivileged run")
	}
	// The go tool's work directory is private to root: copy the binary to
	// a directory uid 65534 may enter.
	dir, err := os.MkdirTemp("", "framesend-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(self))
	if err := copyFile(self, bin); err != nil {
		t.Fatal(err)
	}
	cwd, _ := os.Getwd()
	cmd := exec.Command(bin, "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Dir = cwd
	cmd.Env = append(os.Environ(), "FRAMESEND_TESTENV_CHILD=1", "TMPDIR="+dir, "GOCOVERDIR=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: Nobody}
	out, err := cmd.CombinedOutput()
	// Each line is prefixed, so that go test -json does not read the
	// run's own "--- PASS" lines as results of this one.
	quoted := "uid 65534| " + strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "\nuid 65534| ")
	if err != nil {
		t.Fatalf("the run as uid %d failed: %v\n%s", Nobody.Uid, err, quoted)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("the run as uid %d did not pass %s:\n%s", Nobody.Uid, t.Name(), quoted)
	}
	t.Logf("passed as uid %d", Nobody.Uid)
	return false
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
