package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mqttstack/mqttstack/scenarios"
)

func init() {
	register("validate", "check scenario files or built-ins (every problem at once)", runValidate)
	register("scenarios", "list the built-in scenarios, or print one as YAML", runScenarios)
}

// runValidate checks each argument (a file or a built-in name) and reports
// all of them, valid or not, before deciding the exit code: CI wants the
// full list of broken files in one run.
func runValidate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", stderr)
	list := fs.Bool("list", false, "list the built-in scenarios and exit")
	devices := fs.Int("devices", 0, "check with fleet.count overridden, as run --devices would")
	print := fs.Bool("print", false, "print each valid scenario in canonical form (defaults spelled out)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mqttstack validate [flags] FILE|NAME...\n\n"+
			"Checks scenario files (or built-ins by name) and prints every problem as\n"+
			"file:line: path: message (fix). Exit code 2 when any is invalid.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *list {
		return listBuiltins(stdout)
	}
	if fs.NArg() == 0 {
		return usageErrorf("validate: name a scenario file or a built-in (%s)", strings.Join(scenarios.BuiltinNames(), ", "))
	}
	if *devices < 0 {
		return usageErrorf("validate: --devices %d: must be >= 1", *devices)
	}
	var bad []string
	for _, arg := range fs.Args() {
		s, err := scenarios.Resolve(arg)
		if err == nil && *devices > 0 {
			s, err = s.WithDevices(*devices)
		}
		if err != nil {
			bad = append(bad, arg)
			fmt.Fprintf(stderr, "%v\n", err)
			continue
		}
		if *print {
			out, err := s.Format()
			if err != nil {
				return fmt.Errorf("validate: format %s: %w", arg, err)
			}
			if _, err := stdout.Write(out); err != nil {
				return err
			}
			continue
		}
		if _, err := fmt.Fprintln(stdout, summary(s)); err != nil {
			return err
		}
	}
	if len(bad) > 0 {
		return usageErrorf("validate: %d of %d invalid: %s", len(bad), fs.NArg(), strings.Join(bad, ", "))
	}
	return nil
}

// summary is the one-line verdict on a valid scenario.
func summary(s *scenarios.Scenario) string {
	noun := "devices"
	if s.Fleet.Count == 1 {
		noun = "device"
	}
	return fmt.Sprintf("ok: %s (%d %s, %d stages, ~%s)", s.Name, s.Fleet.Count, noun, len(s.Stages), roughDuration(s.EstimatedDuration()))
}

// roughDuration rounds to what a person plans with: seconds under an hour,
// minutes above, without the trailing zero units of time.Duration.String.
func roughDuration(d time.Duration) string {
	if d >= time.Hour {
		d = d.Round(time.Minute)
	} else {
		d = d.Round(time.Second)
	}
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

func runScenarios(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("scenarios", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mqttstack scenarios [NAME]\n\n"+
			"Without NAME lists the built-in scenarios; with NAME prints its YAML,\n"+
			"a starting point for your own (mqttstack scenarios launch > my.yaml).")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch fs.NArg() {
	case 0:
		return listBuiltins(stdout)
	case 1:
		src, err := scenarios.BuiltinSource(fs.Arg(0))
		if err != nil {
			return withCode(exitUsage, err)
		}
		_, err = stdout.Write(src)
		return err
	}
	return usageErrorf("scenarios: at most one name, got %d", fs.NArg())
}

// listBuiltins prints one line per built-in: name, size, length, description.
func listBuiltins(stdout io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDEVICES\tLENGTH\tDESCRIPTION")
	for _, name := range scenarios.BuiltinNames() {
		s, err := scenarios.Builtin(name)
		if err != nil {
			// A built-in that does not parse is a bug of this build, which
			// the scenarios tests catch; say so rather than hide it.
			return fmt.Errorf("built-in scenario %s: %w", name, err)
		}
		fmt.Fprintf(tw, "%s\t%d\t~%s\t%s\n", s.Name, s.Fleet.Count, roughDuration(s.EstimatedDuration()), s.Description)
	}
	return tw.Flush()
}
