package main

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqttstack/mqttstack/internal/atomicfile"
	"github.com/mqttstack/mqttstack/loadtest/result"
	"github.com/mqttstack/mqttstack/scenarios"
)

func newReportCmd(a *app) *cobra.Command {
	c := newGroupCmd("report", "Show, merge or render result files (show | merge | html)",
		`Reads the result.json files that mqttstack run writes. Several results are
the shards of one run and are merged first, exactly (histograms, counters,
series, errors); results of different scenarios, or shards that overlap,
are refused.

--scenario (a file or a built-in name) evaluates its thresholds against the
result: needed after a merge, whose shards' own verdicts do not add up.
Exit codes: 0 ok, 1 thresholds failed, 2 bad flags or result file, 3 could
not write.`,
		`  mqttstack report show results/smoke-20261121T120000Z/result.json
  mqttstack report merge -o merged.json --scenario soak shard-*/result-shard-*.json
  mqttstack report html -o report.html merged.json`)
	for _, sub := range []struct{ name, short, long, example, out string }{
		{"show", "Print the summary of a run", "Prints the console summary of a result (several: of their merge).",
			"  mqttstack report show results/try1/result.json\n  mqttstack report show --scenario smoke merged.json", ""},
		{"merge", "Merge the results of the shards of one run into one result", "Merges the results of the shards of one run exactly and writes one result file.",
			"  mqttstack report merge -o merged.json --scenario soak shard-1/result-shard-1of2.json shard-2/result-shard-2of2.json", "merged result JSON"},
		{"html", "Write one self-contained HTML report with plots", "Writes one self-contained HTML report with plots (several results: of their merge).",
			"  mqttstack report html -o report.html results/try1/result.json\n  mqttstack report html merged.json -o report.html", "HTML report"},
	} {
		c.AddCommand(newReportSubCmd(a, sub.name, sub.short, sub.long, sub.example, sub.out))
	}
	return c
}

// newReportSubCmd is show, merge or html: out names what -o writes ("" for
// show, which has no -o).
func newReportSubCmd(a *app, sub, short, long, example, out string) *cobra.Command {
	var f struct{ out, scenario string }
	c := &cobra.Command{
		Use:     sub + " RESULT.json...",
		Short:   short,
		Long:    long,
		Example: example,
		Args:    atLeastOne("at least one result file, the JSON that mqttstack run wrote"),
		RunE: func(c *cobra.Command, files []string) error {
			if out != "" && f.out == "" {
				return usageErrorf(c, "--out FILE is required (the %s to write)", out)
			}
			return runReport(c, a, sub, files, f.out, f.scenario)
		},
	}
	if out != "" {
		c.Flags().StringVarP(&f.out, "out", "o", "", "write the "+out+" to this file (required)")
	}
	c.Flags().StringVar(&f.scenario, "scenario", "", "evaluate the thresholds of this scenario (file or built-in name)")
	return c
}

func runReport(c *cobra.Command, a *app, sub string, files []string, out, scenarioArg string) error {
	stdout := a.stdout
	r, err := loadResults(c, files)
	if err != nil {
		return err
	}
	if scenarioArg != "" {
		s, err := scenarios.Resolve(scenarioArg)
		if err != nil {
			return badInput(c, fmt.Errorf("--scenario: %w", err))
		}
		if s.Name != "" && r.Meta.Scenario != "" && s.Name != r.Meta.Scenario {
			return badInput(c, fmt.Errorf("--scenario %s is scenario %q but the results ran %q: give the scenario the run used",
				scenarioArg, s.Name, r.Meta.Scenario))
		}
		r.Thresholds = result.Evaluate(r, s.Thresholds)
	}

	switch sub {
	case "show":
		if err := result.WriteConsole(stdout, r, nil); err != nil {
			return couldNotRun(c, err)
		}
	case "merge":
		if err := result.WriteJSON(out, r); err != nil {
			return couldNotRun(c, err)
		}
		fmt.Fprintf(stdout, "merged %d results into %s\n", len(files), out)
	case "html":
		var buf bytes.Buffer
		if err := result.WriteHTML(&buf, r); err != nil {
			return couldNotRun(c, err)
		}
		if err := atomicfile.Write(out, buf.Bytes(), 0o644); err != nil {
			return couldNotRun(c, fmt.Errorf("writing %s: %w", out, err))
		}
		abs, _ := filepath.Abs(out)
		fmt.Fprintf(stdout, "wrote %s\n", abs)
	}
	if !result.Passed(r.Thresholds) {
		return failed(c, errors.New(failedSummary(r.Thresholds)))
	}
	return nil
}

// loadResults reads every file, and merges them when there are several.
func loadResults(c *cobra.Command, files []string) (*result.Result, error) {
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
		return nil, badInput(c, errors.New(strings.Join(errs, "\n")))
	}
	if len(rs) == 1 {
		return rs[0], nil
	}
	m, err := result.Merge(rs...)
	if err != nil {
		return nil, badInput(c, err)
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
