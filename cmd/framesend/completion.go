package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// The completion scripts ask framesend itself for the words that fit, through
// urfave/cli's --generate-bash-completion, so they follow the commands and
// flags as they are defined.
const bashCompletion = `# bash completion for framesend
# Install: framesend completion bash > /etc/bash_completion.d/framesend
_framesend() {
	local cur words
	cur="${COMP_WORDS[COMP_CWORD]}"
	case "${COMP_WORDS[COMP_CWORD-1]}" in
	--port|-p) COMPREPLY=( $(compgen -f -- "${cur:-/dev/tty}") ); return ;;
	esac
	if [[ "$cur" == -* ]]; then
		words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
	fi
	COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
complete -o bashdefault -o default -F _framesend framesend
`

const zshCompletion = `#compdef framesend
# zsh completion for framesend
# Install: framesend completion zsh > "${fpath[1]}/_framesend"
_framesend() {
	local -a opts
	local cur=${words[-1]}
	if [[ "$cur" == "-"* ]]; then
		opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
	else
		opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
	fi
	if [[ "${opts[1]}" != "" ]]; then
		_describe 'values' opts
	else
		_files
	fi
}
compdef _framesend framesend
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash or zsh)",
		UsageText: "framesend completion bash|zsh",
		Description: "Examples:\n" +
			"   framesend completion bash | sudo tee /etc/bash_completion.d/framesend\n" +
			"   source <(framesend completion bash)\n" +
			"   framesend completion zsh > \"${fpath[1]}/_framesend\"",
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(c.App.Writer, bashCompletion)
			case "zsh":
				fmt.Fprint(c.App.Writer, zshCompletion)
			default:
				return usagef("completion needs a shell: bash or zsh")
			}
			return nil
		},
	}
}

// manCommand prints the man page, generated from the command definitions
// (make man).
func manCommand() *cli.Command {
	return &cli.Command{
		Name:   "man",
		Usage:  "print the man page (troff)",
		Hidden: true,
		Action: func(c *cli.Context) error {
			page, err := c.App.ToManWithSection(1)
			if err != nil {
				return failure{err}
			}
			fmt.Fprint(c.App.Writer, page)
			return nil
		},
	}
}
