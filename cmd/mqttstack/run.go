package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/infra/local"
	"github.com/mqttstack/mqttstack/internal/atomicfile"
	"github.com/mqttstack/mqttstack/loadtest"
	"github.com/mqttstack/mqttstack/loadtest/result"
	"github.com/mqttstack/mqttstack/scenarios"
	"github.com/mqttstack/mqttstack/target"
)

type runFlags struct {
	target  string
	devices int
	out     string
	quiet   bool
	shard   string
	obsQoS0 bool
	obsQoS1 bool
	allow   bool
	proto   string
}

func newRunCmd(a *app) *cobra.Command {
	var f runFlags
	c := &cobra.Command{
		Use:   "run SCENARIO|FILE",
		Short: "Run a load scenario against a target (built-in name or YAML file)",
		Long: `Runs a load scenario (a built-in name such as smoke, launch, burst,
reconnect-storm, soak, or a YAML file) against the target (default: the
local stack's, see mqttstack local up). Missing device identities are issued
into the target's PKI first. Writes result.json and report.html to --out
(default results/<scenario>-<UTC timestamp>) and prints the report.

A target outside 127.0.0.0/8 (a stack you deployed) needs --allow-load.
Identities are issued only where the PKI holds the CA key (the operator's
machine); elsewhere (a Kubernetes shard) they must already be there.

Exit codes: 0 thresholds passed, 1 thresholds failed, 2 bad input (flags,
scenario or target file), 3 could not run (broker unreachable or died), 130
interrupted (the partial report is still written). A shard of several
(--shard i/n, n > 1) reports its thresholds but leaves the verdict to the
merged result (mqttstack report merge --scenario SCENARIO ...): percentiles
and rates of a slice say little about the fleet.`,
		Example: `  mqttstack run smoke
  mqttstack run launch --devices 2000 --out results/try1
  mqttstack run launch --protocol 5
  mqttstack run my-scenario.yaml --target prod.json --allow-load
  mqttstack run soak --shard 2/4 --quiet`,
		Args: oneArg("one scenario, a built-in name or a YAML file"),
		RunE: func(c *cobra.Command, args []string) error {
			if !c.Flags().Changed("devices") {
				f.devices = 0
			} else if f.devices < 1 {
				return usageHint(c, "leave it out to run the scenario's own fleet.count", "--devices %d: must be at least 1", f.devices)
			}
			return runRun(c, a, args[0], f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.target, "target", "", targetFlagUsage)
	fl.IntVar(&f.devices, "devices", 0, "run this many devices instead of the scenario's fleet.count (at least 1)")
	fl.StringVar(&f.out, "out", "", "directory for result.json and report.html (default results/<scenario>-<timestamp>)")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress bars (they are drawn only on a terminal anyway)")
	fl.StringVar(&f.shard, "shard", "", "run shard i of n (i/n, 1-based) of the fleet")
	fl.BoolVar(&f.allow, "allow-load", false, "allow a target outside 127.0.0.0/8 (only a stack you own)")
	fl.StringVar(&f.proto, "protocol", "", "MQTT version of the devices: 3.1.1 or 5 (default: the scenario's fleet.protocol, 3.1.1 unless set)")
	fl.BoolVar(&f.obsQoS0, "observer-qos0", false, "observers subscribe at QoS 0 (the default: the broker writes to them as fast as they read)")
	fl.BoolVar(&f.obsQoS1, "observer-qos1", false, "observers subscribe at QoS 1 (bounded by the broker's per-client in-flight window and queue: may report observer overload)")
	return c
}

func runRun(c *cobra.Command, a *app, scenario string, f runFlags) error {
	ctx, stdout, stderr := c.Context(), a.stdout, a.stderr
	sc, err := scenarios.Resolve(scenario)
	if err != nil {
		return badInput(c, err)
	}
	if f.devices != 0 {
		// WithDevices names the flag in its error: not again here.
		if sc, err = sc.WithDevices(f.devices); err != nil {
			return badInput(c, err)
		}
	}
	if f.proto != "" {
		// WithProtocol names the flag in its error.
		if sc, err = sc.WithProtocol(f.proto); err != nil {
			return badInput(c, err)
		}
	}
	var shard loadtest.Shard
	if f.shard != "" {
		if shard, err = loadtest.ParseShard(f.shard); err != nil {
			return usageErrorf(c, "--shard %s: %v", f.shard, err)
		}
	}
	tg, err := target.Load(a.targetPath(f.target))
	if err != nil {
		// a missing or broken target file is bad input, as in every command
		return badInput(c, err)
	}
	started := time.Now().UTC()
	out := f.out
	if out == "" {
		out = filepath.Join("results", sc.Name+"-"+started.Format("20060102T150405Z"))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return couldNotRun(c, err)
	}

	// Issue missing identities only where the CA key is: a shard pod gets
	// its identities as Secrets and never the key.
	_, keyErr := os.Stat(certs.PathsOf(tg.PKIDir).CAKey)
	plan, err := loadtest.Compile(ctx, sc, tg, loadtest.CompileOptions{Shard: shard, Issue: keyErr == nil, AllowRemote: f.allow})
	if err != nil {
		return couldNotRun(c, err)
	}
	if len(plan.Issued) > 0 {
		fmt.Fprintf(stderr, "issued %d device identities into %s\n", len(plan.Issued), tg.PKIDir)
	}
	if plan.PasswordsChanged {
		// the broker must learn the new wss passwords before the run
		if tg.Local == nil {
			return couldNotRun(c, fmt.Errorf("issued %d identities, but the broker of target %q must learn their wss passwords: install the password file (certs.MosquittoPasswordFile) on it and reload", len(plan.Issued), tg.Name))
		}
		if err := local.RefreshPasswords(ctx, tg.Local.StateDir); err != nil {
			return couldNotRun(c, fmt.Errorf("refresh the broker's password file: %w", err))
		}
	}
	if a.getenv("GOGC") == "" {
		// Thousands of idle connections are mostly live memory: a GC target
		// of 50% instead of 100% took the resident set per idle device
		// from ~55-59 KiB to ~49 KiB in BenchmarkConnect5000, with no
		// measurable CPU cost per connect. GOGC in the environment wins.
		debug.SetGCPercent(50)
	}
	if a.getenv("GOMAXPROCS") == "" {
		// A local stack's broker shares this machine: leave it a core
		// (loadtest.Procs says why). GOMAXPROCS in the environment wins.
		runtime.GOMAXPROCS(loadtest.Procs(runtime.NumCPU(), tg.Local != nil))
	}
	h, err := openHost(ctx, tg)
	if err != nil {
		return couldNotRun(c, err)
	}
	if h != nil {
		defer h.Close()
	}
	compat := compatForRun(ctx, plan, stderr) // fleet.profiles: each board against the target first (devices.go)
	res, runErr := loadtest.Run(ctx, plan, loadtest.Options{Progress: stderr, Quiet: f.quiet, Log: stderr, Host: h, ObserverQoS0: f.obsQoS0, ObserverQoS1: f.obsQoS1})
	if res == nil {
		if errors.Is(runErr, context.Canceled) {
			return withCode(c, exitInterrupted, runErr)
		}
		return couldNotRun(c, runErr)
	}

	res.Compat = compat
	outcomes := result.Evaluate(res, sc.Thresholds)
	res.Thresholds = outcomes
	name := "result.json"
	if shard.Count > 1 {
		name = fmt.Sprintf("result-shard-%dof%d.json", shard.Index+1, shard.Count)
	}
	jsonPath := filepath.Join(out, name)
	if err := result.WriteJSON(jsonPath, res); err != nil {
		return couldNotRun(c, fmt.Errorf("write %s: %w", jsonPath, err))
	}
	htmlPath := filepath.Join(out, strings.TrimSuffix(strings.Replace(name, "result", "report", 1), ".json")+".html")
	var html bytes.Buffer
	if err := result.WriteHTML(&html, res); err != nil {
		fmt.Fprintf(stderr, "run: html report: %v\n", err)
		htmlPath = ""
	} else if err := atomicfile.Write(htmlPath, html.Bytes(), 0o644); err != nil {
		return couldNotRun(c, fmt.Errorf("write %s: %w", htmlPath, err))
	}
	if err := result.WriteConsole(stdout, res, outcomes); err != nil {
		return couldNotRun(c, err)
	}
	fmt.Fprintf(stdout, "\nresult: %s\n", jsonPath)
	if htmlPath != "" {
		fmt.Fprintf(stdout, "report: %s\n", htmlPath)
	}

	switch {
	case errors.Is(runErr, loadtest.ErrInterrupted):
		return withCode(c, exitInterrupted, errors.New("interrupted; partial report written"))
	case runErr != nil:
		return couldNotRun(c, fmt.Errorf("%w (partial report written)", runErr))
	case !result.Passed(outcomes) && shard.Count > 1:
		fmt.Fprintf(stdout, "shard %d/%d: thresholds are judged on the merged result (mqttstack report merge --scenario %s …)\n", shard.Index+1, shard.Count, sc.Name)
	case !result.Passed(outcomes):
		return failed(c, errors.New("thresholds failed"))
	}
	return nil
}
