package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// GoBuild builds the main package pkg into out the way the tests that
// exec it need: with -race when the tests themselves run under -race, so
// that the race detector also watches the binary's own goroutines, which
// are the product's real concurrency. race false builds without it
// whatever the tests run under (for a test that measures the binary's
// memory, which the detector's shadow memory would swamp). It returns the
// go tool's output on failure.
func GoBuild(out, pkg string, race bool) error {
	args := []string{"build"}
	if race && Race {
		args = append(args, "-race")
	}
	args = append(args, "-o", out, pkg)
	if b, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// RaceLog collects the race reports of binaries built by GoBuild. Under
// -race, NewRaceLog sets GORACE in this process's environment, which every
// child inherits: a child stops at its first data race (halt_on_error)
// with exit status 66 and writes the report, "WARNING: DATA RACE" and
// both stacks, to a file in the log's directory named after its PID, so a
// race is seen whatever the test does with the child's stderr.
type RaceLog struct {
	dir string // "" when the tests do not run under -race
}

// RaceExitCode is the exit status of a child that found a data race.
const RaceExitCode = 66

// NewRaceLog makes the directory of the reports and sets GORACE. Without
// -race it does nothing and its methods find nothing.
func NewRaceLog() (*RaceLog, error) {
	if !Race {
		return &RaceLog{}, nil
	}
	dir, err := os.MkdirTemp("", "framesend-race-")
	if err != nil {
		return nil, err
	}
	// Children run as uid 65534 write here too.
	if err := os.Chmod(dir, 0o777); err != nil {
		return nil, err
	}
	// atexit_sleep_ms: the detector's default holds every exiting process
	// for a second (for reports still being written by other threads);
	// the tests start hundreds. 50 ms still lets a report in progress end.
	os.Setenv("GORACE", fmt.Sprintf("log_path=%s halt_on_error=1 exitcode=%d atexit_sleep_ms=50", filepath.Join(dir, "race"), RaceExitCode))
	return &RaceLog{dir: dir}, nil
}

// Check fails t with the report of process pid if it wrote one, and
// removes the report so that Rest does not give it again.
func (l *RaceLog) Check(t testing.TB, pid int) {
	t.Helper()
	if l.dir == "" {
		return
	}
	path := filepath.Join(l.dir, fmt.Sprintf("race.%d", pid))
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	os.Remove(path)
	t.Errorf("framesend (PID %d) found a data race:\n%s", pid, b)
}

// Rest returns the reports no Check claimed (of children started some
// other way, a shell's say), one after the other, and removes the
// directory.
func (l *RaceLog) Rest() string {
	if l.dir == "" {
		return ""
	}
	defer os.RemoveAll(l.dir)
	files, _ := filepath.Glob(filepath.Join(l.dir, "race.*"))
	var all strings.Builder
	for _, f := range files {
		b, _ := os.ReadFile(f)
		fmt.Fprintf(&all, "%s:\n%s\n", filepath.Base(f), b)
	}
	return all.String()
}
