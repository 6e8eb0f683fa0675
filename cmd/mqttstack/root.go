package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// newRootCmd builds the whole command tree for one execution. Every
// command is a function of a (no globals, no init registration); add a
// command by writing newXxxCmd(a) in its own file and one line below.
func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "mqttstack",
		Short: "Provision, load-test and security-check a small MQTT stack",
		Long: `mqttstack provisions, load-tests and security-checks a small MQTT stack:
Mosquitto (mTLS, one certificate per device, ACLs), nginx (TLS, MQTT over
WebSockets, status page) and a private device CA.

Exit codes: 0 ok, 1 negative verdict (thresholds or checks failed,
certificates expiring), 2 usage error or bad input file, 3 could not run,
130 interrupted.`,
		Example: `  mqttstack local up                 # private CA, Mosquitto and nginx on 127.0.0.1
  mqttstack run smoke                # 1,000 virtual mTLS devices against it
  mqttstack security                 # the tier-1 security checks
  mqttstack help run                 # the flags of one command`,
		Args:                       groupArgs,
		RunE:                       groupRun,
		SuggestionsMinimumDistance: 2,
		SilenceErrors:              true, // exitCode prints the error, once
		SilenceUsage:               true, // a usage error is one line, not the whole help
		CompletionOptions:          cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout) // help goes to stdout
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(flagError)
	root.SetUsageTemplate(usageTemplate)
	root.SetHelpCommand(newHelpCmd(a))

	root.AddCommand(newCertsCmd(a))
	root.AddCommand(newLocalCmd(a))
	root.AddCommand(newRunCmd(a))
	root.AddCommand(newReportCmd(a))
	root.AddCommand(newSecurityCmd(a))
	root.AddCommand(newDevicesCmd(a))
	root.AddCommand(newScenariosCmd(a))
	root.AddCommand(newValidateCmd(a))
	root.AddCommand(newTargetCmd(a))
	root.AddCommand(newDeployCmd(a))
	root.AddCommand(newCompletionCmd(a))
	root.AddCommand(newVersionCmd(a))
	return root
}

// usageTemplate is cobra's default without the parts we do not use
// (aliases, groups), and with one synopsis for a group, whose own RunE only
// reports a missing subcommand.
const usageTemplate = `Usage:{{if .HasAvailableSubCommands}}
  {{.CommandPath}} <command> [flags]{{else}}
  {{.UseLine}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} <command> --help" for more information about a command.{{end}}
`

// newGroupCmd is a command that only holds subcommands.
func newGroupCmd(use, short, long, example string) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Long:    long,
		Example: example,
		Args:    groupArgs,
		RunE:    groupRun,
		// suggest subcommands within two edits ("isue" → issue)
		SuggestionsMinimumDistance: 2,
	}
}

// newHelpCmd replaces cobra's help command: an unknown topic is a usage
// error (exit 2), not the root's help with exit 0.
func newHelpCmd(_ *app) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "Help about any command: 'mqttstack help run' prints what 'mqttstack run --help' prints.",
		Example: `  mqttstack help
  mqttstack help certs issue`,
		ValidArgsFunction: func(c *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			t, _, err := c.Root().Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, s := range t.Commands() {
				if s.IsAvailableCommand() {
					names = append(names, cobra.CompletionWithDesc(s.Name(), s.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			t, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return usageErrorf(c.Root(), "help: unknown help topic %q", strings.Join(args, " "))
			}
			t.InitDefaultHelpFlag() // as '--help' shows it
			return t.Help()
		},
	}
}

// targetFlagUsage is the --target flag's text, the same in every command.
const targetFlagUsage = "target file (default $MQTTSTACK_TARGET, else .mqttstack/local/target.json)"

// targetPath resolves an empty --target: $MQTTSTACK_TARGET, else the local
// stack's target.
func (a *app) targetPath(flag string) string {
	if flag != "" {
		return flag
	}
	if p := a.getenv("MQTTSTACK_TARGET"); p != "" {
		return p
	}
	return filepath.Join(".mqttstack", "local", "target.json")
}

func newCompletionCmd(_ *app) *cobra.Command {
	c := newGroupCmd("completion", "Print a shell completion script (bash, zsh, fish)",
		"Prints the completion script for a shell on stdout. Load it in the current\nshell, or install it where the shell looks for completions.",
		`  source <(mqttstack completion bash)
  mqttstack completion zsh > "${fpath[1]}/_mqttstack"
  mqttstack completion fish > ~/.config/fish/completions/mqttstack.fish`)
	for _, sh := range []struct {
		name, example string
		gen           func(c *cobra.Command) error
	}{
		{"bash", "  source <(mqttstack completion bash)\n  mqttstack completion bash > /etc/bash_completion.d/mqttstack",
			func(c *cobra.Command) error { return c.Root().GenBashCompletionV2(c.OutOrStdout(), true) }},
		{"zsh", "  mqttstack completion zsh > \"${fpath[1]}/_mqttstack\"",
			func(c *cobra.Command) error { return c.Root().GenZshCompletion(c.OutOrStdout()) }},
		{"fish", "  mqttstack completion fish > ~/.config/fish/completions/mqttstack.fish",
			func(c *cobra.Command) error { return c.Root().GenFishCompletion(c.OutOrStdout(), true) }},
	} {
		c.AddCommand(&cobra.Command{
			Use:     sh.name,
			Short:   fmt.Sprintf("Print the %s completion script", sh.name),
			Example: sh.example,
			Args:    noArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				if err := sh.gen(c); err != nil {
					return couldNotRun(c, err)
				}
				return nil
			},
		})
	}
	return c
}
