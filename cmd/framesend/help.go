package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// categoryOrder is the order flag categories appear in, in --help and the
// man page: what every run names first (the port, the source) comes first.
var categoryOrder = []string{catSerial, catLine, catSource, catFrames, catMQTT, catOutput}

// flagCategory is one category of a command's flags, in definition order.
type flagCategory struct {
	name  string
	flags []cli.Flag
}

func (c flagCategory) Name() string { return c.name }
func (c flagCategory) Flags() []cli.VisibleFlag {
	out := make([]cli.VisibleFlag, 0, len(c.flags))
	for _, f := range c.flags {
		out = append(out, f.(cli.VisibleFlag))
	}
	return out
}

// categories groups cmd's visible flags by category, in categoryOrder, and
// in each category in the order the command defines them.
func categories(cmd *cli.Command) []flagCategory {
	var out []flagCategory
	index := map[string]int{}
	for _, f := range visibleFlags(cmd) {
		name := ""
		if cf, ok := f.(cli.CategorizableFlag); ok {
			name = cf.GetCategory()
		}
		i, ok := index[name]
		if !ok {
			i = len(out)
			index[name] = i
			out = append(out, flagCategory{name: name})
		}
		out[i].flags = append(out[i].flags, f)
	}
	rank := func(name string) int {
		if i := slices.Index(categoryOrder, name); i >= 0 {
			return i
		}
		return len(categoryOrder)
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i].name) < rank(out[j].name) })
	return out
}

// orderedCategories is categories for the help template.
func orderedCategories(data any) []cli.VisibleFlagCategory {
	cmd, ok := data.(*cli.Command)
	if !ok {
		return nil
	}
	var out []cli.VisibleFlagCategory
	for _, c := range categories(cmd) {
		out = append(out, c)
	}
	return out
}

const orderedFlagTemplate = `{{range orderedCategories .}}
   {{if .Name}}{{.Name}}

   {{end}}{{$flglen := len .Flags}}{{range $i, $e := .Flags}}{{if eq (subtract $flglen $i) 1}}{{$e}}
{{else}}{{$e}}
   {{end}}{{end}}{{end}}`

// setupHelp makes every command's --help list its flags in categoryOrder.
func setupHelp(app *cli.App) {
	cli.HelpPrinter = func(w io.Writer, templ string, data any) {
		cli.HelpPrinterCustom(w, templ, data, map[string]any{"orderedCategories": orderedCategories})
	}
	tmpl := strings.Replace(cli.CommandHelpTemplate, `{{template "visibleFlagCategoryTemplate" .}}`, orderedFlagTemplate, 1)
	for _, c := range app.Commands {
		c.CustomHelpTemplate = tmpl
	}
}

// helpAction is framesend help [COMMAND].
func helpAction(c *cli.Context, args []string) error {
	switch len(args) {
	case 0:
		return cli.ShowAppHelp(c)
	case 1:
		for _, cmd := range c.App.Commands {
			if cmd.Name == args[0] && !cmd.Hidden {
				return cli.ShowCommandHelp(c, args[0])
			}
		}
		return usagef("help: no command %q: run framesend help for the list", args[0])
	}
	return usagef("help takes one command, got %q", strings.Join(args, " "))
}

// troff escapes s for the man page.
func troff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	var b strings.Builder
	for i, line := range strings.Split(s, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			b.WriteString(`\&`)
		}
		for _, r := range line {
			if r > 126 {
				fmt.Fprintf(&b, `\[u%04X]`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

// splitExamples cuts a command's description into its text and the
// example lines after "Examples:".
func splitExamples(desc string) (string, []string) {
	text, ex, ok := strings.Cut(desc, "Examples:\n")
	if !ok {
		return desc, nil
	}
	var lines []string
	for _, l := range strings.Split(ex, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.TrimSpace(text), lines
}

// paragraphs writes text as man page paragraphs, one per blank-line
// separated block.
func paragraphs(b *strings.Builder, text string) {
	for _, p := range strings.Split(strings.TrimSpace(text), "\n\n") {
		fmt.Fprintf(b, ".PP\n%s\n", troff(strings.TrimSpace(p)))
	}
}

// defaultText is a flag's default as the man page shows it, or "" when the
// default is nothing or zero (the usage then says what zero means).
func defaultText(f cli.DocGenerationFlag) string {
	v := f.GetDefaultText()
	if v == "" {
		v = f.GetValue()
	}
	v = strings.Trim(v, `"`)
	switch v {
	case "", "0", "0s", "false", "[]":
		return ""
	}
	return v
}

// placeholder is the name of a flag's value in the man page.
func placeholder(f cli.DocGenerationFlag) (string, string) {
	usage, name := f.GetUsage(), ""
	if i := strings.IndexByte(usage, '`'); i >= 0 {
		if j := strings.IndexByte(usage[i+1:], '`'); j >= 0 {
			name = usage[i+1 : i+1+j]
			usage = usage[:i] + name + usage[i+2+j:]
		}
	}
	if name == "" {
		switch f.(type) {
		case *cli.DurationFlag:
			name = "DURATION"
		case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Float64Flag:
			name = "N"
		default:
			name = "VALUE"
		}
	}
	return name, usage
}

// manPage is framesend's man page, generated from the command definitions.
func manPage(app *cli.App) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH FRAMESEND 1 \"\" \"framesend %s\" \"User Commands\"\n", troff(app.Version))
	b.WriteString(".nh\n") // no hyphens inside flag and variable names
	fmt.Fprintf(&b, ".SH NAME\nframesend \\- %s\n", troff(app.Usage))
	b.WriteString(".SH SYNOPSIS\n")
	for _, c := range visibleCommands(app) {
		fmt.Fprintf(&b, ".br\n\\fBframesend %s\\fR [\\fIflags\\fR]\n", c.Name)
	}
	b.WriteString(".SH DESCRIPTION\n")
	paragraphs(&b, app.Description)

	b.WriteString(".SH COMMANDS\n")
	var examples []string
	envs := map[string][]string{}
	var envOrder []string
	for _, c := range visibleCommands(app) {
		text, ex := splitExamples(c.Description)
		examples = append(examples, ex...)
		fmt.Fprintf(&b, ".SS \"framesend %s\"\n", c.Name)
		paragraphs(&b, c.Usage+".")
		if text != "" {
			paragraphs(&b, text)
		}
		for _, cat := range categories(c) {
			if cat.name != "" {
				fmt.Fprintf(&b, ".PP\n\\fI%s\\fR\n", troff(cat.name))
			}
			for _, f := range cat.flags {
				d, ok := f.(cli.DocGenerationFlag)
				if !ok {
					continue
				}
				var names []string
				for _, n := range flagNames(f) {
					names = append(names, `\fB`+troff(n)+`\fR`)
				}
				head := strings.Join(names, ", ")
				name, usage := placeholder(d)
				if d.TakesValue() {
					head += ` \fI` + troff(name) + `\fR`
				}
				fmt.Fprintf(&b, ".TP\n%s\n%s", head, troff(usage))
				if def := defaultText(d); def != "" {
					fmt.Fprintf(&b, " (default: %s)", troff(def))
				}
				b.WriteString(".\n")
				for _, e := range d.GetEnvVars() {
					fmt.Fprintf(&b, "Also \\fB%s\\fR.\n", troff(e))
					if _, seen := envs[e]; !seen {
						envOrder = append(envOrder, e)
					}
					if !slices.Contains(envs[e], c.Name) {
						envs[e] = append(envs[e], c.Name)
					}
				}
			}
		}
	}

	b.WriteString(".SH EXAMPLES\n")
	for _, e := range examples {
		fmt.Fprintf(&b, ".PP\n.EX\n%s\n.EE\n", troff(e))
	}

	b.WriteString(".SH EXIT STATUS\n")
	for _, s := range []struct{ code, what string }{
		{"0", "Success; a stop by SIGINT or SIGTERM is a success too (queued frames are sent, up to --drain-timeout, and the summary printed). A second SIGINT quits at once with 130."},
		{"1", "A failure at run time: the port could not be opened or went away, a write failed or stalled, a verification failed, or stdout could not be written."},
		{"2", "Bad usage: an unknown command or flag, a bad flag value or environment variable, or flags that do not go together."},
	} {
		fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", s.code, troff(s.what))
	}

	b.WriteString(".SH ENVIRONMENT\n")
	paragraphs(&b, "Every flag can also be set in the environment, as FRAMESEND_ and the flag's name in capitals with - as _; a flag on the command line wins over its variable. Boolean variables take true/false, yes/no, on/off or 1/0. A variable that does not parse is a usage error naming the variable.")
	sort.Strings(envOrder)
	for _, e := range envOrder {
		fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", troff(e), troff("framesend "+strings.Join(envs[e], ", ")))
	}
	fmt.Fprintf(&b, ".TP\n.B FRAMESEND_MQTT_PASSWORD\n%s\n", troff("framesend send: the MQTT password (never on the command line)."))

	b.WriteString(".SH FILES\n")
	fmt.Fprintf(&b, ".TP\n.B /etc/default/framesend\n%s\n", troff("Settings (FRAMESEND_ variables) of the framesend@.service systemd unit."))
	b.WriteString(".SH SEE ALSO\n.BR stty (1),\n.BR socat (1)\n")
	return b.String()
}
