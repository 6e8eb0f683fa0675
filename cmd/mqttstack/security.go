package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mqttstack/mqttstack/internal/atomicfile"
	"github.com/mqttstack/mqttstack/security"
	"github.com/mqttstack/mqttstack/target"
)

func init() {
	register("security", "run the security regression catalog against a target (exit 1 on any failure)", runSecurity)
}

func runSecurity(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("security", stderr)
	targetPath := fs.String("target", target.DefaultPath(), "target file (from `mqttstack local up` or the Pulumi outputs)")
	tier := fs.Int("tier", 1, "run checks of tier <= N (1: every CI run; 2: adds the staging/nightly checks)")
	only := fs.String("only", "", "comma-separated check ids to run (e.g. ACL-03,TLS-01); overrides --tier")
	junit := fs.String("junit", "", "write JUnit XML to this file")
	jsonOut := fs.String("json", "", "write the JSON report to this file")
	allowLoad := fs.Bool("allow-load", false, "allow bounded floods against a non-local target")
	parallel := fs.Int("parallel", 8, "checks run at once")
	list := fs.Bool("list", false, "list the catalog and exit")
	waive := fs.String("waive", "", "comma-separated check ids whose FAIL is an accepted, documented risk: still reported as FAIL, but not in the exit code (INCONCLUSIVE is never waived)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("security: unexpected argument %q (flags only)", fs.Arg(0))
	}
	if *tier < 1 || *tier > 2 {
		return usageErrorf("security: --tier %d: must be 1 or 2", *tier)
	}
	if *parallel < 1 {
		return usageErrorf("security: --parallel %d: must be >= 1", *parallel)
	}
	var ids []string
	if *only != "" {
		ids = strings.Split(*only, ",")
	}
	checks, err := security.Select(security.Catalog(), *tier, ids)
	if err != nil {
		return usageErrorf("security: --only: %v (see --list)", err)
	}
	if *list {
		for _, c := range security.Catalog() {
			impl := ""
			if c.Run == nil {
				impl = " (not implemented)"
			}
			fmt.Fprintf(stdout, "%-8s tier %d  %s%s\n", c.ID, c.Tier, c.Title, impl)
		}
		return nil
	}
	waived := map[string]bool{}
	if *waive != "" {
		ws, err := security.Select(security.Catalog(), 2, strings.Split(*waive, ","))
		if err != nil {
			return usageErrorf("security: --waive: %v (see --list)", err)
		}
		for _, c := range ws {
			waived[c.ID] = true
		}
	}
	t, err := target.Load(*targetPath)
	if err != nil {
		return usageErrorf("security: %v", err)
	}
	start := time.Now()
	env, err := security.Prepare(ctx, security.Options{Target: t, AllowLoad: *allowLoad, Parallel: *parallel, Log: stderr}, checks)
	if err != nil {
		return withCode(exitCouldNotRun, err)
	}
	defer env.Close()
	fmt.Fprintf(stderr, "running %d checks against %s (%s)…\n", len(checks), t.Name, t.MQTTSAddr())
	results := security.Run(ctx, env, checks, nil)
	total := time.Since(start)

	if err := security.WriteText(stdout, results, total); err != nil {
		return withCode(exitCouldNotRun, err)
	}
	write := func(path string, f func(io.Writer) error) error {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			return err
		}
		return atomicfile.Write(path, b.Bytes(), 0o644)
	}
	if *junit != "" {
		if err := write(*junit, func(w io.Writer) error { return security.WriteJUnit(w, "mqttstack-security "+t.Name, results, total) }); err != nil {
			return withCode(exitCouldNotRun, fmt.Errorf("security: junit: %w", err))
		}
	}
	if *jsonOut != "" {
		if err := write(*jsonOut, func(w io.Writer) error { return security.WriteJSON(w, t.Name, start, results, total) }); err != nil {
			return withCode(exitCouldNotRun, fmt.Errorf("security: json: %w", err))
		}
	}
	if ctx.Err() != nil {
		return withCode(exitInterrupted, fmt.Errorf("security: interrupted: %w", ctx.Err()))
	}
	var failed, inconclusive, waivedFails []string
	for _, r := range results {
		switch {
		case r.Outcome.Status == security.Inconclusive:
			inconclusive = append(inconclusive, r.Check.ID)
		case r.Outcome.Status == security.Fail && waived[r.Check.ID]:
			waivedFails = append(waivedFails, r.Check.ID)
		case r.Outcome.Status == security.Fail:
			failed = append(failed, r.Check.ID)
		}
	}
	if len(waivedFails) > 0 {
		fmt.Fprintf(stderr, "security: FAIL waived by --waive (accepted risk, still a finding): %s\n", strings.Join(waivedFails, ", "))
	}
	if len(failed)+len(inconclusive) > 0 {
		return withCode(exitFailed, fmt.Errorf("security: failed [%s], inconclusive [%s] (see the fixes above)", strings.Join(failed, " "), strings.Join(inconclusive, " ")))
	}
	return nil
}
