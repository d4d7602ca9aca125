package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// valueProblem says what is wrong with v as the value of flag f, and how to
// write it, or returns "" when v parses. Command-line values and
// environment variables are checked by the same rules.
func valueProblem(f cli.Flag, v string) string {
	switch f.(type) {
	case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag:
		_, err := strconv.ParseInt(v, 0, 64)
		if _, uok := f.(*cli.UintFlag); uok {
			_, err = strconv.ParseUint(v, 0, 64)
		}
		if _, iok := f.(*cli.IntFlag); iok && err == nil {
			if n, _ := strconv.ParseInt(v, 0, 64); n > math.MaxInt32 && strconv.IntSize == 32 {
				err = strconv.ErrRange
			}
		}
		switch {
		case errors.Is(err, strconv.ErrRange):
			return "is out of range: far larger than any value it takes"
		case err != nil:
			return "is not a whole number"
		}
	case *cli.Float64Flag:
		_, err := strconv.ParseFloat(v, 64)
		switch {
		case errors.Is(err, strconv.ErrRange):
			return "is out of range"
		case err != nil:
			return "is not a number"
		}
	case *cli.DurationFlag:
		if _, err := time.ParseDuration(v); err != nil {
			if _, ferr := strconv.ParseFloat(v, 64); ferr == nil {
				return "has no unit: write a duration such as " + v + "s or " + v + "ms"
			}
			return "is not a duration: write one such as 5s, 500ms or 1m30s"
		}
	case *cli.BoolFlag:
		if _, ok := parseBool(v); !ok {
			return "is not a yes or no: use true or false (also yes/no, on/off, 1/0)"
		}
	}
	return ""
}

// parseBool reads the yes/no words /etc/default files and humans use.
func parseBool(v string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "t", "true", "yes", "y", "on":
		return true, true
	case "0", "f", "false", "no", "n", "off":
		return false, true
	}
	return false, false
}

// commandFor returns the command args run, or nil.
func commandFor(app *cli.App, args []string) *cli.Command {
	for _, a := range args[1:] {
		if strings.HasPrefix(a, "-") {
			continue
		}
		for _, c := range app.Commands {
			if c.HasName(a) {
				return c
			}
		}
		return nil
	}
	return nil
}

// checkEnv checks the environment variables of the flags of the command args
// run, before the flags are parsed: a bad one is a usage error naming the
// variable, and a boolean written yes/no or on/off is taken as true/false.
func checkEnv(app *cli.App, args []string) error {
	cmd := commandFor(app, args)
	if cmd == nil {
		return nil
	}
	for _, f := range cmd.Flags {
		d, ok := f.(cli.DocGenerationFlag)
		if !ok {
			continue
		}
		for _, name := range d.GetEnvVars() {
			v, set := os.LookupEnv(name)
			if !set || v == "" {
				continue
			}
			if p := valueProblem(f, v); p != "" {
				return usagef("environment variable %s=%q (for --%s) %s; fix or unset it", name, v, f.Names()[0], p)
			}
			if _, isBool := f.(*cli.BoolFlag); isBool {
				b, _ := parseBool(v)
				os.Setenv(name, strconv.FormatBool(b))
			}
		}
	}
	return nil
}

var (
	invalidValue = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-([^:]+): `)
	undefined    = regexp.MustCompile(`^flag provided but not defined: -(.+)$`)
)

// usageMessage rewrites the flag parser's message for a bad command line
// as one line that names the flag as it was typed and what it takes.
func usageMessage(c *cli.Context, msg string) string {
	var flags []cli.Flag
	if c.Command != nil {
		flags = c.Command.Flags
	}
	if m := invalidValue.FindStringSubmatch(msg); m != nil {
		for _, f := range flags {
			for _, n := range f.Names() {
				if n != m[2] {
					continue
				}
				if p := valueProblem(f, m[1]); p != "" {
					return fmt.Sprintf("--%s %q %s", f.Names()[0], m[1], p)
				}
			}
		}
		return fmt.Sprintf("invalid value %q for --%s", m[1], m[2])
	}
	if m := undefined.FindStringSubmatch(msg); m != nil {
		name := m[1]
		typed := "--" + name
		if args, ok := c.App.Metadata["args"].([]string); ok {
			for _, a := range args {
				if a == "-"+name || strings.HasPrefix(a, "-"+name+"=") {
					typed = "-" + name
				}
			}
		}
		if typed == "-"+name && len(name) > 1 {
			// -n5: a short flag with its value run on.
			for _, f := range flags {
				for _, n := range f.Names() {
					if len(n) == 1 && n == name[:1] {
						return fmt.Sprintf("unknown flag %s: write -%s %s (with a space) or --%s %s", typed, n, name[1:], f.Names()[0], name[1:])
					}
				}
			}
		}
		return fmt.Sprintf("unknown flag %s", typed)
	}
	return msg
}

// unusedFlag is a flag that has no effect in the combination a command
// line makes: ok is false when it does not apply, and why says what it
// needs.
type unusedFlag struct {
	flag string
	ok   bool
	why  string
}

// onCommandLine reports whether flag (or one of its aliases) was typed on
// the command line, not only set in the environment.
func onCommandLine(c *cli.Context, flag string) bool {
	args, _ := c.App.Metadata["args"].([]string)
	names := []string{flag}
	for _, f := range c.Command.Flags {
		if slices.Contains(f.Names(), flag) {
			names = f.Names()
		}
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		for _, n := range names {
			for _, dash := range []string{"-", "--"} {
				if a == dash+n || strings.HasPrefix(a, dash+n+"=") {
					return true
				}
			}
		}
	}
	return false
}

// refuseUnused holds every command to one rule for flags that would be
// ignored: typed on the command line, such a flag is a usage error; set in
// the environment (a shared /etc/default file), a warning.
func refuseUnused(c *cli.Context, log *slog.Logger, rules []unusedFlag) error {
	for _, r := range rules {
		if r.ok || !c.IsSet(r.flag) {
			continue
		}
		if onCommandLine(c, r.flag) {
			return usagef("--%s %s; leave it out", r.flag, r.why)
		}
		log.Warn(fmt.Sprintf("%s is set, but --%s %s: ignored", env(r.flag)[0], r.flag, r.why))
	}
	return nil
}
