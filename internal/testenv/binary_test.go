package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// racy is a program with a data race on x.
const racy = `package main

func main() {
	x := 0
	done := make(chan bool)
	go func() { x++; done <- true }()
	x++
	<-done
	println(x)
}
`

// errorRecorder is a testing.TB whose Errorf is recorded, not reported.
type errorRecorder struct {
	testing.TB
	errors []string
}

func (r *errorRecorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// A race in a program GoBuild built is reported by the child itself (exit
// status 66) and by RaceLog: Check fails the test that started it, with
// the report, and Rest gives what no Check claimed.
func TestRaceInAChildFailsTheTest(t *testing.T) {
	if !Race {
		Impossible(t, "the tests run without -race, so the binaries they build do too (make test uses -race)")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "racy.go")
	if err := os.WriteFile(src, []byte(racy), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "racy")
	if err := GoBuild(bin, src, true); err != nil {
		t.Fatal(err)
	}
	log, err := NewRaceLog()
	if err != nil {
		t.Fatal(err)
	}
	run := func() int {
		t.Helper()
		cmd := exec.Command(bin)
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != RaceExitCode {
			t.Fatalf("the racy program: %v, want exit status %d", err, RaceExitCode)
		}
		return cmd.Process.Pid
	}

	rec := &errorRecorder{TB: t}
	log.Check(rec, run())
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "WARNING: DATA RACE") || !strings.Contains(rec.errors[0], "racy.go") {
		t.Errorf("Check reported %q, want one failure with the race report", rec.errors)
	}
	other := run() // not claimed by a Check
	if rest := log.Rest(); !strings.Contains(rest, fmt.Sprintf("race.%d", other)) || !strings.Contains(rest, "WARNING: DATA RACE") {
		t.Errorf("Rest = %q, want the report of PID %d", rest, other)
	}
}

// Without a race nothing is reported.
func TestNoRaceNoReport(t *testing.T) {
	log, err := NewRaceLog()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	rec := &errorRecorder{TB: t}
	log.Check(rec, cmd.Process.Pid)
	if len(rec.errors) != 0 {
		t.Errorf("Check reported %q for a process with no race", rec.errors)
	}
	if rest := log.Rest(); rest != "" {
		t.Errorf("Rest = %q, want nothing", rest)
	}
}
