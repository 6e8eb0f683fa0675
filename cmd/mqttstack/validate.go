package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttstack/mqttstack/scenarios"
)

func newValidateCmd(a *app) *cobra.Command {
	var f struct {
		list, print bool
		devices     int
	}
	c := &cobra.Command{
		Use:   "validate FILE|NAME...",
		Short: "Check scenario files or built-ins (every problem at once)",
		Long: `Checks scenario files (or built-ins by name) and prints every problem as
file:line: path: message (fix). All arguments are checked before the exit
code is decided, so CI sees every broken file in one run.

Exit codes: 0 all valid, 2 any invalid (or bad flags).`,
		Example: `  mqttstack validate my-scenario.yaml
  mqttstack validate scenarios/*.yaml smoke
  mqttstack validate --devices 20000 launch
  mqttstack validate --print my-scenario.yaml`,
		RunE: func(c *cobra.Command, args []string) error {
			if f.list {
				if len(args) > 0 {
					return usageErrorf(c, "unexpected argument %q (--list takes none)", args[0])
				}
				return listBuiltins(a.stdout)
			}
			if len(args) == 0 {
				return usageErrorf(c, "name a scenario file or a built-in (%s)", strings.Join(scenarios.BuiltinNames(), ", "))
			}
			if c.Flags().Changed("devices") && f.devices < 1 {
				return usageErrorf(c, "--devices %d: must be at least 1", f.devices)
			}
			return runValidate(c, a, args, f.devices, f.print)
		},
	}
	c.Flags().BoolVar(&f.list, "list", false, "list the built-in scenarios and exit")
	c.Flags().IntVar(&f.devices, "devices", 0, "check with fleet.count overridden, as run --devices would")
	c.Flags().BoolVar(&f.print, "print", false, "print each valid scenario in canonical form (defaults spelled out)")
	return c
}

// runValidate checks each argument (a file or a built-in name) and reports
// all of them, valid or not, before deciding the exit code: CI wants the
// full list of broken files in one run.
func runValidate(c *cobra.Command, a *app, args []string, devices int, print bool) error {
	stdout, stderr := a.stdout, a.stderr
	var bad []string
	for _, arg := range args {
		s, err := scenarios.Resolve(arg)
		if err == nil && devices > 0 {
			s, err = s.WithDevices(devices)
		}
		if err != nil {
			bad = append(bad, arg)
			fmt.Fprintf(stderr, "%v\n", err)
			continue
		}
		if print {
			out, err := s.Format()
			if err != nil {
				return couldNotRun(c, fmt.Errorf("format %s: %w", arg, err))
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
		return badInput(c, fmt.Errorf("%d of %d invalid: %s", len(bad), len(args), strings.Join(bad, ", ")))
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

func newScenariosCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "scenarios [NAME]",
		Short: "List the built-in scenarios, or print one as YAML",
		Long: `Without NAME lists the built-in scenarios; with NAME prints its YAML, a
starting point for your own.`,
		Example: `  mqttstack scenarios
  mqttstack scenarios launch > my.yaml`,
		Args: atMostOne("one scenario name"),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return listBuiltins(a.stdout)
			}
			src, err := scenarios.BuiltinSource(args[0])
			if err != nil {
				return badInput(c, err)
			}
			_, err = a.stdout.Write(src)
			return err
		},
	}
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
