// Command testreport reads `go test -json` on stdin and prints what make
// test shows: each package's result, the whole output of every test that
// failed, and at the end the list of tests that skipped, each with its
// reason. It exits 1 when any test or package failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type skip struct{ name, reason string }

func main() {
	if !report(os.Stdin, os.Stdout) {
		os.Exit(1)
	}
}

// report prints the report of the events on r to w and returns false if
// any test or package failed.
func report(r io.Reader, w io.Writer) bool {
	in := bufio.NewScanner(r)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	output := map[string][]string{} // by package and test
	var skips []skip
	failed := false
	var passes, fails int
	for in.Scan() {
		line := in.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintln(w, string(line)) // not from test2json: a build error, say
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output", "build-output":
			if e.Test == "" {
				// Package lines: "ok pkg 1.2s", "FAIL pkg", a panic.
				if !strings.HasPrefix(e.Output, "=== ") && !strings.HasPrefix(e.Output, "PASS") {
					fmt.Fprint(w, e.Output)
				}
				continue
			}
			output[key] = append(output[key], e.Output)
		case "fail", "build-fail":
			failed = true
			if e.Test != "" {
				fails++
				fmt.Fprint(w, strings.Join(output[key], ""))
			}
			delete(output, key)
		case "skip":
			if e.Test != "" {
				skips = append(skips, skip{e.Package + " " + e.Test, reason(output[key])})
			}
			delete(output, key)
		case "pass":
			if e.Test != "" {
				passes++
			}
			delete(output, key)
		}
	}
	sort.Slice(skips, func(i, j int) bool { return skips[i].name < skips[j].name })
	if len(skips) > 0 {
		fmt.Fprintf(w, "\n%d tests skipped:\n", len(skips))
		for _, s := range skips {
			fmt.Fprintf(w, "  SKIP %s: %s\n", s.name, s.reason)
		}
	} else {
		fmt.Fprintln(w, "\nno test skipped")
	}
	if failed {
		fmt.Fprintln(w, "FAIL: some tests failed (their output is above)")
	}
	// The closing line counts tests and subtests alike.
	fmt.Fprintf(w, "tests: %d passed, %d failed, %d skipped\n", passes, fails, len(skips))
	return !failed
}

// reason is the message a skipped test logged, without the run and skip
// lines around it.
func reason(lines []string) string {
	var out []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return "(no reason given)"
	}
	return strings.Join(out, " ")
}
