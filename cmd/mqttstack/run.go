package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/mqttstack/mqttstack/certs"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/mqttstack/mqttstack/internal/atomicfile"
	"github.com/mqttstack/mqttstack/loadtest"
	"github.com/mqttstack/mqttstack/loadtest/result"
	"github.com/mqttstack/mqttstack/scenarios"
	"github.com/mqttstack/mqttstack/target"
)

func init() {
	register("run", "run a load scenario against a target (built-in name or YAML file)", runRun)
}

const runUsage = `usage: mqttstack run SCENARIO|FILE [--target FILE] [--devices N] [--out DIR] [--quiet] [--shard i/n] [--allow-load] [--observer-qos0]

Runs a load scenario (a built-in name such as smoke, launch, burst,
reconnect-storm, soak, or a YAML file) against the target (default: the
local stack's, see mqttstack local up). Missing device identities are issued
into the target's PKI first. Writes result.json and report.html to --out
(default results/<scenario>-<UTC timestamp>) and prints the report.

A target outside 127.0.0.0/8 (a stack you deployed) needs --allow-load.
Identities are issued only where the PKI holds the CA key (the operator's
machine); elsewhere (a Kubernetes shard) they must already be there.

Exit codes: 0 thresholds passed, 1 thresholds failed, 2 bad input,
3 could not run (broker unreachable or died), 130 interrupted (the partial
report is still written). A shard of several (--shard i/n, n > 1) reports
its thresholds but leaves the verdict to the merged result
(mqttstack report merge -scenario SCENARIO …): percentiles and rates of a
slice say little about the fleet.
`

type runFlags struct {
	target  string
	devices int
	out     string
	quiet   bool
	shard   string
	obsQoS0 bool
	allow   bool
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, runUsage+"\nflags:\n"); fs.PrintDefaults() }
	var f runFlags
	fs.StringVar(&f.target, "target", target.DefaultPath(), "target file")
	fs.IntVar(&f.devices, "devices", 0, "override the scenario's device count")
	fs.StringVar(&f.out, "out", "", "directory for result.json and report.html (default results/<scenario>-<timestamp>)")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress bars")
	fs.StringVar(&f.shard, "shard", "", "run shard i of n (i/n, 1-based) of the fleet")
	fs.BoolVar(&f.allow, "allow-load", false, "allow a target outside 127.0.0.0/8 (only a stack you own)")
	fs.BoolVar(&f.obsQoS0, "observer-qos0", false, "subscribe the observer at QoS 0 (not limited by the broker's per-client in-flight window and queue)")
	// The scenario may come before or after the flags.
	var positional []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != 1 {
		fs.Usage()
		return usageErrorf("run: name exactly one scenario (got %d)", len(positional))
	}

	sc, err := scenarios.Resolve(positional[0])
	if err != nil {
		return usageErrorf("run: %v", err)
	}
	if f.devices != 0 {
		if sc, err = sc.WithDevices(f.devices); err != nil {
			return usageErrorf("run: --devices %d: %v", f.devices, err)
		}
	}
	var shard loadtest.Shard
	if f.shard != "" {
		if shard, err = loadtest.ParseShard(f.shard); err != nil {
			return usageErrorf("run: --shard: %v", err)
		}
	}
	tg, err := target.Load(f.target)
	if err != nil {
		return withCode(exitCouldNotRun, fmt.Errorf("run: %w", err))
	}
	started := time.Now().UTC()
	out := f.out
	if out == "" {
		out = filepath.Join("results", sc.Name+"-"+started.Format("20060102T150405Z"))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return withCode(exitCouldNotRun, fmt.Errorf("run: %w", err))
	}

	// Issue missing identities only where the CA key is: a shard pod gets
	// its identities as Secrets and never the key.
	_, keyErr := os.Stat(certs.PathsOf(tg.PKIDir).CAKey)
	plan, err := loadtest.Compile(ctx, sc, tg, loadtest.CompileOptions{Shard: shard, Issue: keyErr == nil, AllowRemote: f.allow})
	if err != nil {
		return withCode(exitCouldNotRun, fmt.Errorf("run: %w", err))
	}
	if len(plan.Issued) > 0 {
		fmt.Fprintf(stderr, "issued %d device identities into %s\n", len(plan.Issued), tg.PKIDir)
	}
	if os.Getenv("GOGC") == "" {
		// Thousands of idle connections are mostly live memory: a GC target
		// of 50% instead of 100% took the resident set per idle device
		// from ~55-59 KiB to ~49 KiB in BenchmarkConnect5000, with no
		// measurable CPU cost per connect. GOGC in the environment wins.
		debug.SetGCPercent(50)
	}
	res, runErr := loadtest.Run(ctx, plan, loadtest.Options{Progress: stderr, Quiet: f.quiet, Log: stderr, ObserverQoS0: f.obsQoS0})
	if res == nil {
		if errors.Is(runErr, context.Canceled) {
			return withCode(exitInterrupted, runErr)
		}
		return withCode(exitCouldNotRun, runErr)
	}

	outcomes := result.Evaluate(res, sc.Thresholds)
	res.Thresholds = outcomes
	name := "result.json"
	if shard.Count > 1 {
		name = fmt.Sprintf("result-shard-%dof%d.json", shard.Index+1, shard.Count)
	}
	jsonPath := filepath.Join(out, name)
	if err := result.WriteJSON(jsonPath, res); err != nil {
		return withCode(exitCouldNotRun, fmt.Errorf("run: write %s: %w", jsonPath, err))
	}
	htmlPath := filepath.Join(out, strings.TrimSuffix(strings.Replace(name, "result", "report", 1), ".json")+".html")
	var html bytes.Buffer
	if err := result.WriteHTML(&html, res); err != nil {
		fmt.Fprintf(stderr, "run: html report: %v\n", err)
		htmlPath = ""
	} else if err := atomicfile.Write(htmlPath, html.Bytes(), 0o644); err != nil {
		return withCode(exitCouldNotRun, fmt.Errorf("run: write %s: %w", htmlPath, err))
	}
	if err := result.WriteConsole(stdout, res, outcomes); err != nil {
		return withCode(exitCouldNotRun, fmt.Errorf("run: %w", err))
	}
	fmt.Fprintf(stdout, "\nresult: %s\n", jsonPath)
	if htmlPath != "" {
		fmt.Fprintf(stdout, "report: %s\n", htmlPath)
	}

	switch {
	case errors.Is(runErr, loadtest.ErrInterrupted):
		return withCode(exitInterrupted, fmt.Errorf("run: interrupted; partial report written"))
	case runErr != nil:
		return withCode(exitCouldNotRun, fmt.Errorf("%w (partial report written)", runErr))
	case !result.Passed(outcomes) && shard.Count > 1:
		fmt.Fprintf(stdout, "shard %d/%d: thresholds are judged on the merged result (mqttstack report merge -scenario %s …)\n", shard.Index+1, shard.Count, sc.Name)
	case !result.Passed(outcomes):
		return withCode(exitFailed, errors.New("run: thresholds failed"))
	}
	return nil
}
