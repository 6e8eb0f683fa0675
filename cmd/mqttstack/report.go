package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/mqttstack/mqttstack/internal/atomicfile"
	"github.com/mqttstack/mqttstack/loadtest/result"
	"github.com/mqttstack/mqttstack/scenarios"
)

func init() {
	register("report", "show, merge or render result files (show | merge | html)", runReport)
}

const reportUsage = `usage:
  mqttstack report show  [-scenario S] RESULT.json...
  mqttstack report merge -o merged.json [-scenario S] RESULT.json...
  mqttstack report html  -o report.html [-scenario S] RESULT.json...

show prints the summary of a run; merge combines the results of the shards
of one run exactly (histograms, counters, series, errors); html writes one
self-contained HTML report with plots. Several results are shards of one
run and are merged first; merge refuses results of different scenarios and
shards that overlap.

-scenario (a file or a built-in name) evaluates its thresholds against the
result - needed after a merge, whose shards' own verdicts do not add up.
Exit code 1 when thresholds fail, 2 for bad input.
`

func runReport(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, reportUsage)
		if len(args) == 0 {
			return usageErrorf("report: name a subcommand: show, merge or html")
		}
		return flag.ErrHelp
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "show", "merge", "html":
	default:
		fmt.Fprint(stderr, reportUsage)
		return usageErrorf("report: unknown subcommand %q (show, merge or html)", sub)
	}
	fs := newFlagSet("report "+sub, stderr)
	fs.Usage = func() { fmt.Fprint(stderr, reportUsage+"\nflags:\n"); fs.PrintDefaults() }
	out := ""
	if sub != "show" {
		what := map[string]string{"merge": "merged result JSON", "html": "HTML report"}[sub]
		fs.StringVar(&out, "o", "", "write the "+what+" to this file (required)")
	}
	scenarioArg := fs.String("scenario", "", "evaluate the thresholds of this scenario (file or built-in name)")
	files, err := parseInterspersed(fs, rest)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usageErrorf("report %s: name at least one result file (the JSON `mqttstack run` wrote)", sub)
	}
	if sub != "show" && out == "" {
		return usageErrorf("report %s: -o FILE is required", sub)
	}

	r, err := loadResults(files)
	if err != nil {
		return err
	}
	if *scenarioArg != "" {
		s, err := scenarios.Resolve(*scenarioArg)
		if err != nil {
			return withCode(exitUsage, fmt.Errorf("report %s: -scenario: %w", sub, err))
		}
		if s.Name != "" && r.Meta.Scenario != "" && s.Name != r.Meta.Scenario {
			return usageErrorf("report %s: -scenario %s is scenario %q but the results ran %q: give the scenario the run used",
				sub, *scenarioArg, s.Name, r.Meta.Scenario)
		}
		r.Thresholds = result.Evaluate(r, s.Thresholds)
	}

	switch sub {
	case "show":
		if err := result.WriteConsole(stdout, r, nil); err != nil {
			return withCode(exitCouldNotRun, fmt.Errorf("report show: %w", err))
		}
	case "merge":
		if err := result.WriteJSON(out, r); err != nil {
			return withCode(exitCouldNotRun, fmt.Errorf("report merge: %w", err))
		}
		fmt.Fprintf(stdout, "merged %d results into %s\n", len(files), out)
	case "html":
		var buf bytes.Buffer
		if err := result.WriteHTML(&buf, r); err != nil {
			return withCode(exitCouldNotRun, fmt.Errorf("report html: %w", err))
		}
		if err := atomicfile.Write(out, buf.Bytes(), 0o644); err != nil {
			return withCode(exitCouldNotRun, fmt.Errorf("report html: writing %s: %w", out, err))
		}
		abs, _ := filepath.Abs(out)
		fmt.Fprintf(stdout, "wrote %s\n", abs)
	}
	if !result.Passed(r.Thresholds) {
		return withCode(exitFailed, fmt.Errorf("report %s: %s", sub, failedSummary(r.Thresholds)))
	}
	return nil
}

// loadResults reads every file, and merges them when there are several.
func loadResults(files []string) (*result.Result, error) {
	var rs []*result.Result
	var errs []string
	for _, f := range files {
		r, err := result.ReadJSON(f)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		rs = append(rs, r)
	}
	if len(errs) > 0 {
		return nil, withCode(exitUsage, errors.New(strings.Join(errs, "\n")))
	}
	if len(rs) == 1 {
		return rs[0], nil
	}
	m, err := result.Merge(rs...)
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	return m, nil
}

func failedSummary(outcomes []result.ThresholdOutcome) string {
	var failed []string
	for _, o := range outcomes {
		if !o.Passed {
			failed = append(failed, o.Metric)
		}
	}
	return fmt.Sprintf("%d of %d thresholds failed (%s)", len(failed), len(outcomes), strings.Join(failed, ", "))
}

// parseInterspersed parses flags anywhere among the arguments, so that
// `report html a.json b.json -o report.html` works as people type it. A lone
// "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var after []string
	for i, a := range args {
		if a == "--" {
			args, after = args[:i], args[i+1:]
			break
		}
	}
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(pos, after...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
