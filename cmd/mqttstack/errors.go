package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mqttstack/mqttstack/internal/levenshtein"
)

// Exit codes. They ride on errors (see exitError) and are decided once, in
// exitCode.
const (
	exitOK = 0
	// exitFailed: the run happened and its verdict is negative (thresholds
	// failed, a security check failed or was inconclusive, a certificate is
	// inside the expiry window).
	exitFailed = 1
	// exitUsage: bad flags or arguments, unknown command, and bad input:
	// a file the command was given that is missing or does not parse
	// (scenario, target, result, PKI, stack output).
	exitUsage = 2
	// exitCouldNotRun: the run could not be carried out (target
	// unreachable, broker died, missing daemon, a write failed) - distinct
	// from a negative verdict.
	exitCouldNotRun = 3
	// exitInterrupted: Ctrl-C; a partial report was still written.
	exitInterrupted = 130
)

// exitError carries the exit code of an error and, apart from the error's
// own text, the advice cmd adds to it. Packages return facts ("unknown
// flag --devcies"); the hint is the command layer's ("did you mean
// --devices? see 'mqttstack run --help'").
type exitError struct {
	code int
	err  error
	hint string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode prints err (once, on one line plus whatever lines the error
// itself holds) and maps it to the process exit code. An error without a
// code is one the command could not get past: exitCouldNotRun.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	code, hint := exitCouldNotRun, ""
	var ee *exitError
	if errors.As(err, &ee) {
		code, hint = ee.code, ee.hint
	}
	msg := err.Error()
	if hint != "" {
		msg += " (" + hint + ")"
	}
	if msg != "" {
		fmt.Fprintf(stderr, "mqttstack: %s\n", msg)
	}
	return code
}

// name is c's path without the program name ("certs check"), the prefix of
// its error messages; "" for the root.
func name(c *cobra.Command) string {
	return strings.TrimPrefix(strings.TrimPrefix(c.CommandPath(), c.Root().Name()), " ")
}

// withCode prefixes err with c's name (unless a package already did) and
// gives it an exit code.
func withCode(c *cobra.Command, code int, err error) error {
	if err == nil {
		return nil
	}
	if n := name(c); n != "" && !strings.HasPrefix(err.Error(), n+":") {
		// "export: x" from package certs under "certs export" reads
		// "certs export: x", not "certs export: export: x"
		err = &prefixed{msg: n + ": " + strings.TrimPrefix(err.Error(), c.Name()+": "), err: err}
	}
	return &exitError{code: code, err: err}
}

// prefixed is err with the command's path in front of its text.
type prefixed struct {
	msg string
	err error
}

func (p *prefixed) Error() string { return p.msg }
func (p *prefixed) Unwrap() error { return p.err }

// badInput: a file or value the user gave is missing or wrong (exit 2).
// The error names the file and the fix; no help hint, since the flags were
// right.
func badInput(c *cobra.Command, err error) error { return withCode(c, exitUsage, err) }

// couldNotRun: the command could not be carried out (exit 3).
func couldNotRun(c *cobra.Command, err error) error { return withCode(c, exitCouldNotRun, err) }

// failed: a negative verdict (exit 1).
func failed(c *cobra.Command, err error) error { return withCode(c, exitFailed, err) }

// usageErrorf: the command line itself is wrong (exit 2); the hint points
// at c's help.
func usageErrorf(c *cobra.Command, format string, a ...any) error {
	return usageHint(c, "", format, a...)
}

// usageHint is usageErrorf with advice put before the pointer to the help.
func usageHint(c *cobra.Command, advice, format string, a ...any) error {
	e := withCode(c, exitUsage, fmt.Errorf(format, a...)).(*exitError)
	e.hint = helpHint(c)
	switch {
	case strings.HasSuffix(advice, "?"):
		e.hint = advice + " " + e.hint
	case advice != "":
		e.hint = advice + "; " + e.hint
	}
	return e
}

func helpHint(c *cobra.Command) string {
	return fmt.Sprintf("see '%s --help'", c.CommandPath())
}

// flagError turns pflag's errors into one usage line with a suggestion.
func flagError(c *cobra.Command, err error) error {
	var (
		notExist *pflag.NotExistError
		noValue  *pflag.ValueRequiredError
		invalid  *pflag.InvalidValueError
	)
	switch {
	case errors.As(err, &notExist) && notExist.GetSpecifiedShortnames() == "":
		n := notExist.GetSpecifiedName()
		if s := suggestFlag(c, n); s != "" {
			return usageHint(c, fmt.Sprintf("did you mean --%s?", s), "unknown flag --%s", n)
		}
		return usageErrorf(c, "unknown flag --%s", n)
	case errors.As(err, &notExist):
		return usageErrorf(c, "unknown flag -%s in -%s", notExist.GetSpecifiedName(), notExist.GetSpecifiedShortnames())
	case errors.As(err, &noValue):
		return usageErrorf(c, "--%s needs a value", noValue.GetFlag().Name)
	case errors.As(err, &invalid):
		f := invalid.GetFlag()
		return usageErrorf(c, "--%s %q: %s", f.Name, invalid.GetValue(), wantOf(f.Value.Type()))
	}
	return usageErrorf(c, "%v", err)
}

func wantOf(typ string) string {
	switch typ {
	case "int", "int64", "uint", "uint64":
		return "not a whole number"
	case "bool":
		return "give true or false"
	case "duration":
		return "not a duration (e.g. 30s, 5m, 720h)"
	}
	return "not a valid " + typ
}

// suggestFlag is the flag of c closest to n in edit distance, or "".
func suggestFlag(c *cobra.Command, n string) string {
	best, bestD := "", 3
	if len(n) <= 3 {
		bestD = 2
	}
	c.Flags().VisitAll(func(f *pflag.Flag) {
		d := levenshtein.Distance(n, f.Name)
		if strings.HasPrefix(f.Name, n) && len(n) >= 2 {
			d = 1
		}
		if d < bestD {
			best, bestD = f.Name, d
		}
	})
	return best
}

// Positional argument validators: each refuses with one usage line.

// noArgs refuses any positional argument.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageHint(c, "this command takes flags only", "unexpected argument %q", args[0])
	}
	return nil
}

// oneArg wants exactly one argument, described by what ("a scenario").
func oneArg(what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return usageErrorf(c, "name %s", what)
		case len(args) > 1:
			return usageHint(c, "give only "+what, "unexpected argument %q", args[1])
		}
		return nil
	}
}

// atMostOne allows zero or one argument.
func atMostOne(what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) > 1 {
			return usageHint(c, "give at most "+what, "unexpected argument %q", args[1])
		}
		return nil
	}
}

// atLeastOne wants one argument or more.
func atLeastOne(what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageErrorf(c, "name %s", what)
		}
		return nil
	}
}

// Command groups (the root, certs, local, report, target) run nothing of
// their own: bare, they name their subcommands; with an unknown word, they
// suggest the closest.

func groupArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	what := "subcommand"
	if !c.HasParent() {
		what = "command"
	}
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		return usageHint(c, fmt.Sprintf("did you mean %s?", s[0]), "unknown %s %q", what, args[0])
	}
	return usageHint(c, "one of "+strings.Join(subcommandNames(c), ", "), "unknown %s %q", what, args[0])
}

func groupRun(c *cobra.Command, _ []string) error {
	what := "subcommand"
	if !c.HasParent() {
		what = "command"
	}
	return usageErrorf(c, "name a %s: %s", what, strings.Join(subcommandNames(c), ", "))
}

func subcommandNames(c *cobra.Command) []string {
	var names []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() && s.Name() != "help" {
			names = append(names, s.Name())
		}
	}
	return names
}

// singleDashLongFlags rewrites "-name" to "--name" where name is a long
// flag of the command args select, so that command lines written for the
// flag package (report merge -scenario smoke) keep working. A word that
// is the value of the flag before it is left alone.
func singleDashLongFlags(root *cobra.Command, args []string) []string {
	c, _, err := root.Find(args)
	if err != nil {
		return args
	}
	c.InitDefaultHelpFlag() // -help too
	lookup := func(n string) *pflag.Flag {
		if f := c.Flags().Lookup(n); f != nil {
			return f
		}
		return c.InheritedFlags().Lookup(n)
	}
	out := make([]string, len(args))
	copy(out, args)
	for i := 0; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			n, _, hasValue := strings.Cut(a[1:], "=")
			if f := lookup(n); f != nil && len(n) > 1 {
				out[i] = "-" + a
				if !hasValue && f.NoOptDefVal == "" {
					i++ // the flag's value
				}
			}
			continue
		}
		if n, _, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "="); strings.HasPrefix(a, "--") && !hasValue {
			if f := lookup(n); f != nil && f.NoOptDefVal == "" {
				i++
			}
		}
	}
	return out
}
