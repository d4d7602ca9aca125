package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportOfARealRun runs go test -json on a small package with a test
// that passes, two that skip and one that fails, and checks the report.
func TestReportOfARealRun(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/m\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "m_test.go"), []byte(`package m

import "testing"

func TestPasses(t *testing.T) {}
func TestNeedsAUnicorn(t *testing.T) { t.Skip("no unicorn here: install one") }
func TestSkipsInASubtest(t *testing.T) {
	t.Run("sub", func(t *testing.T) { t.Skipf("needs %s", "socat") })
}
func TestFails(t *testing.T) { t.Log("the output of a failure"); t.Fail() }
`), 0o644)
	cmd := exec.Command("go", "test", "-json", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	events, _ := cmd.Output()
	var out bytes.Buffer
	ok := report(bytes.NewReader(events), &out)
	s := out.String()
	if ok {
		t.Errorf("report says all passed:\n%s", s)
	}
	for _, want := range []string{
		"the output of a failure",
		"2 tests skipped:",
		"SKIP example.com/m TestNeedsAUnicorn: m_test.go:6: no unicorn here: install one",
		"SKIP example.com/m TestSkipsInASubtest/sub: m_test.go:8: needs socat",
		"FAIL\texample.com/m",
		"tests: 2 passed, 1 failed, 2 skipped\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "TestPasses") {
		t.Errorf("a passing test is in the report:\n%s", s)
	}
}
