package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttstack/mqttstack/internal/atomicfile"
	"github.com/mqttstack/mqttstack/security"
	"github.com/mqttstack/mqttstack/target"
)

type securityFlags struct {
	target, only, junit, json, waive string
	endSessions                      string
	tier, parallel                   int
	allowLoad, list                  bool
}

func newSecurityCmd(a *app) *cobra.Command {
	var f securityFlags
	c := &cobra.Command{
		Use:   "security",
		Short: "Run the security regression catalog against a target (exit 1 on any failure)",
		Long: `Runs the checks of docs/SECURITY.md against the target: certificates,
revocation, TLS, ACLs and least privilege, authentication, protocol abuse,
WebSockets and operations. Each check decides from what the broker
delivers, not from what it acknowledges; a check whose positive control
fails is INCONCLUSIVE, never PASS.

--end-sessions ID is the last step of revoking an identity: Mosquitto
2.0.11 keeps a revoked client's live session through a CRL reload (F10), so
after 'certs revoke ID', deploying the CRL and reloading, it ends ID's
sessions by a same-CN takeover with a 10-minute certificate (docs/SECURITY.md §4).

Checks that read the host (configuration, loaded ACL, CRL files, listening
sockets) use the local stack's host for a target of 'mqttstack local up', and
SSH with the pinned host key for a target with an ssh section; without
either they are SKIPPED with the reason.

Prints a table with the fix for every failure; --junit and --json write the
same results for CI. Bounded floods run only against the local stack unless
--allow-load.

Exit codes: 0 every check passed, 1 a check failed or was inconclusive
(a --waive'd FAIL does not count), 2 bad flags or target file, 3 could not
run, 130 interrupted.`,
		Example: `  mqttstack security
  mqttstack security --junit security.xml --json security.json
  mqttstack security --only ACL-03,TLS-01
  mqttstack security --tier 2 --target prod.json --allow-load
  mqttstack security --list
  mqttstack security --end-sessions dev-00042 --target prod.json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runSecurity(c, a, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.target, "target", "", targetFlagUsage)
	fl.IntVar(&f.tier, "tier", 1, "run checks of tier <= N (1: every CI run; 2: adds the staging/nightly checks)")
	fl.StringVar(&f.only, "only", "", "comma-separated check ids to run (e.g. ACL-03,TLS-01); overrides --tier")
	fl.StringVar(&f.junit, "junit", "", "write JUnit XML to this file")
	fl.StringVar(&f.json, "json", "", "write the JSON report to this file")
	fl.BoolVar(&f.allowLoad, "allow-load", false, "allow bounded floods against a non-local target")
	fl.IntVar(&f.parallel, "parallel", 8, "checks run at once")
	fl.BoolVar(&f.list, "list", false, "list the catalog and exit")
	fl.StringVar(&f.endSessions, "end-sessions", "", "end the live sessions of this revoked identity (after certs revoke, CRL deployed, broker reloaded) and exit")
	fl.StringVar(&f.waive, "waive", "", "comma-separated check ids whose FAIL is an accepted, documented risk: still reported as FAIL, but not in the exit code (INCONCLUSIVE is never waived)")
	return c
}

func runSecurity(c *cobra.Command, a *app, f securityFlags) error {
	ctx, stdout, stderr := c.Context(), a.stdout, a.stderr
	if f.tier < 1 || f.tier > 2 {
		return usageErrorf(c, "--tier %d: must be 1 or 2", f.tier)
	}
	if f.parallel < 1 {
		return usageErrorf(c, "--parallel %d: must be >= 1", f.parallel)
	}
	var ids []string
	if f.only != "" {
		ids = strings.Split(f.only, ",")
	}
	checks, err := security.Select(security.Catalog(), f.tier, ids)
	if err != nil {
		return usageHint(c, "see --list", "--only: %v", err)
	}
	if f.list {
		for _, chk := range security.Catalog() {
			note := ""
			if chk.Host {
				note = " [reads the host]"
			}
			if chk.Run == nil {
				note += " (not implemented)"
			}
			fmt.Fprintf(stdout, "%-8s tier %d  %s%s\n", chk.ID, chk.Tier, chk.Title, note)
		}
		return nil
	}
	waived := map[string]bool{}
	if f.waive != "" {
		ws, err := security.Select(security.Catalog(), 2, strings.Split(f.waive, ","))
		if err != nil {
			return usageHint(c, "see --list", "--waive: %v", err)
		}
		for _, chk := range ws {
			waived[chk.ID] = true
		}
	}
	t, err := target.Load(a.targetPath(f.target))
	if err != nil {
		return badInput(c, err)
	}
	if f.endSessions != "" {
		present, err := security.EndSessions(ctx, t, f.endSessions)
		if err != nil {
			return couldNotRun(c, err)
		}
		fmt.Fprintf(stdout, "%s: live sessions ended by a same-CN takeover (the broker held a stored session: %v); the takeover certificate is revoked: deploy the CRL again\n", f.endSessions, present)
		return nil
	}
	h, err := openHost(ctx, t)
	if err != nil {
		return couldNotRun(c, err)
	}
	if h != nil {
		defer h.Close()
	} else {
		fmt.Fprintln(stderr, "security: no host access (the target has no local or ssh section): the checks that read the host are skipped")
	}
	start := time.Now()
	env, err := security.Prepare(ctx, security.Options{Target: t, AllowLoad: f.allowLoad, Parallel: f.parallel, Host: h, Log: stderr}, checks)
	if err != nil {
		return couldNotRun(c, err)
	}
	defer env.Close()
	fmt.Fprintf(stderr, "running %d checks against %s (%s)…\n", len(checks), t.Name, t.MQTTSAddr())
	results := security.Run(ctx, env, checks, nil)
	total := time.Since(start)

	if err := security.WriteText(stdout, results, total); err != nil {
		return couldNotRun(c, err)
	}
	write := func(path string, f func(io.Writer) error) error {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			return err
		}
		return atomicfile.Write(path, b.Bytes(), 0o644)
	}
	if f.junit != "" {
		if err := write(f.junit, func(w io.Writer) error { return security.WriteJUnit(w, "mqttstack-security "+t.Name, results, total) }); err != nil {
			return couldNotRun(c, fmt.Errorf("junit: %w", err))
		}
	}
	if f.json != "" {
		if err := write(f.json, func(w io.Writer) error { return security.WriteJSON(w, t.Name, start, results, total) }); err != nil {
			return couldNotRun(c, fmt.Errorf("json: %w", err))
		}
	}
	if ctx.Err() != nil {
		return withCode(c, exitInterrupted, fmt.Errorf("interrupted: %w", ctx.Err()))
	}
	var failedIDs, inconclusive, waivedFails []string
	for _, r := range results {
		switch {
		case r.Outcome.Status == security.Inconclusive:
			inconclusive = append(inconclusive, r.Check.ID)
		case r.Outcome.Status == security.Fail && waived[r.Check.ID]:
			waivedFails = append(waivedFails, r.Check.ID)
		case r.Outcome.Status == security.Fail:
			failedIDs = append(failedIDs, r.Check.ID)
		}
	}
	if len(waivedFails) > 0 {
		fmt.Fprintf(stderr, "security: FAIL waived by --waive (accepted risk, still a finding): %s\n", strings.Join(waivedFails, ", "))
	}
	if len(failedIDs)+len(inconclusive) > 0 {
		return failed(c, fmt.Errorf("failed [%s], inconclusive [%s] (see the fixes above)", strings.Join(failedIDs, " "), strings.Join(inconclusive, " ")))
	}
	return nil
}
