package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestSharedFlagsAgree checks that a flag two commands share under one
// environment variable, which makes it the same setting, is the same flag:
// same type and same short names, so FRAMESEND_X set once means one thing.
// A flag whose meaning is the command's own carries the command in its
// variable (FRAMESEND_LISTEN_COUNT) and is not compared.
func TestSharedFlagsAgree(t *testing.T) {
	type seen struct {
		command string
		flag    cli.Flag
	}
	byEnv := map[string]seen{}
	app := newApp(strings.NewReader(""), &strings.Builder{}, &strings.Builder{})
	for _, cmd := range app.Commands {
		for _, f := range cmd.Flags {
			ef, ok := f.(interface{ GetEnvVars() []string })
			if !ok || len(ef.GetEnvVars()) == 0 {
				continue
			}
			key := strings.Join(ef.GetEnvVars(), ",")
			first, ok := byEnv[key]
			if !ok {
				byEnv[key] = seen{cmd.Name, f}
				continue
			}
			if a, b := fmt.Sprintf("%T", first.flag), fmt.Sprintf("%T", f); a != b {
				t.Errorf("%s: %s's is a %s, %s's a %s", key, first.command, a, cmd.Name, b)
			}
			if a, b := first.flag.Names(), f.Names(); !slices.Equal(a, b) {
				t.Errorf("%s: %s's is %v, %s's %v", key, first.command, a, cmd.Name, b)
			}
		}
	}
	if _, ok := byEnv["FRAMESEND_JSON"]; !ok {
		t.Error("no command has --json under FRAMESEND_JSON")
	}
}
