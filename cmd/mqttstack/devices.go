package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/devices"
	"github.com/mqttstack/mqttstack/internal/atomicfile"
	"github.com/mqttstack/mqttstack/loadtest"
	"github.com/mqttstack/mqttstack/loadtest/result"
	"github.com/mqttstack/mqttstack/scenarios"
	"github.com/mqttstack/mqttstack/target"
)

func newDevicesCmd(a *app) *cobra.Command {
	c := newGroupCmd("devices", "Board TLS profiles and the compatibility matrix",
		`Real boards do not speak TLS like the load tester's Go client: ESP8266s
(BearSSL) send MFLN and check dates, ESP32s and Pico Ws (mbedTLS) ignore
dates and hold whole handshake messages in fixed buffers, modems offer old
protocols and no ECDSA. A device profile is one board's TLS client as data;
'devices compat' meets the broker with each one before launch.`,
		`  mqttstack devices profiles
  mqttstack devices compat`)
	c.AddCommand(newDevicesProfilesCmd(a))
	c.AddCommand(newDevicesCompatCmd(a))
	return c
}

func newDevicesProfilesCmd(a *app) *cobra.Command {
	var f struct{ verbose, json bool }
	c := &cobra.Command{
		Use:   "profiles",
		Short: "List the device TLS profiles with their sources",
		Long: `Lists every built-in device profile: TLS versions, number of cipher
suites, MFLN, client key type, clock behaviour, the verdict expected against
mqttstack's hardened Mosquitto, and where the facts come from (captured
ClientHello of the real library, or what was derived and from which source).
--verbose adds the suites, groups, signature algorithms and extensions in
wire order; --json prints the profiles as data.`,
		Example: `  mqttstack devices profiles
  mqttstack devices profiles --verbose
  mqttstack devices profiles --json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ps := devices.Profiles()
			if f.json {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(ps); err != nil {
					return couldNotRun(c, err)
				}
				return nil
			}
			if err := devices.WriteProfiles(a.stdout, ps, f.verbose); err != nil {
				return couldNotRun(c, err)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&f.verbose, "verbose", false, "show suites, groups, signature algorithms and extensions in wire order")
	c.Flags().BoolVar(&f.json, "json", false, "print the profiles as JSON")
	return c
}

type devicesCompatFlags struct {
	target, profiles, require, scenario, json, junit, html string
	skew                                                   time.Duration
	costHandshakes                                         int
	dialIP                                                 bool
}

func newDevicesCompatCmd(a *app) *cobra.Command {
	var f devicesCompatFlags
	c := &cobra.Command{
		Use:   "compat",
		Short: "Run every device profile against the target: handshake, CONNECT, publish/subscribe",
		Long: `For each profile: a real handshake as that board (its exact ClientHello,
its record and buffer limits, its certificate checks, its clock), then
CONNECT and a QoS 1 publish/subscribe round trip on its own topic. One row
per profile: works, or refused with the reason in plain words (protocol
version, no shared cipher, no shared group or signature, chain or records
larger than the board's buffer, clock not set); the negotiated version,
suite and group; the size of the broker's first flight; the handshake time;
the broker's CPU per handshake when the target's host is reachable (the
local stack, or a target with an ssh section); and the verdict with the
board's clock unset (NTP failed) and, with --skew, off by that much.

Each profile connects with the identity compat-ecdsa or compat-rsa2048
(the key type its board uses), issued on first use when the CA key is in
the target's PKI directory.

A profile is required with --require, because the fleet.profiles of
--scenario holds it (the boards a load run is about to play), or because
the target file lists it in device_profiles (the boards the stack serves).

Exit codes: 0 every required profile works (--require, --scenario; rows refused for
other profiles document boards the stack does not serve), 1 a required
profile failed, 2 bad flags, unknown profile or bad target file, 3 could
not run, 130 interrupted.`,
		Example: `  mqttstack devices compat
  mqttstack devices compat --profiles esp8266-bearssl,esp32-arduino-3 --require esp8266-bearssl
  mqttstack devices compat --target prod.json --json compat.json --junit compat.xml --html compat.html
  mqttstack devices compat --scenario fleet-mix --junit compat.xml
  mqttstack devices compat --skew -720h`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runDevicesCompat(c, a, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.target, "target", "", targetFlagUsage)
	fl.StringVar(&f.profiles, "profiles", "", "comma-separated profiles to run (default: all; see 'mqttstack devices profiles')")
	fl.StringVar(&f.require, "require", "", "comma-separated profiles that must work (exit 1 otherwise)")
	fl.StringVar(&f.scenario, "scenario", "", "a scenario (built-in name or file) whose fleet.profiles must all work")
	fl.StringVar(&f.json, "json", "", "write the matrix as JSON to this file")
	fl.StringVar(&f.junit, "junit", "", "write JUnit XML to this file (a required profile that fails is a failure)")
	fl.StringVar(&f.html, "html", "", "write the matrix as an HTML page to this file")
	fl.DurationVar(&f.skew, "skew", 0, "also run each board with its clock off by this much (e.g. -720h)")
	fl.IntVar(&f.costHandshakes, "cost-handshakes", 50, "handshakes per profile timed for the broker's CPU (with host access)")
	fl.BoolVar(&f.dialIP, "dial-ip", false, "boards dial the target's IP address instead of its name (their SNI rules apply)")
	return c
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func runDevicesCompat(c *cobra.Command, a *app, f devicesCompatFlags) error {
	ctx := c.Context()
	if f.costHandshakes < 1 {
		return usageErrorf(c, "--cost-handshakes %d: must be at least 1", f.costHandshakes)
	}
	profiles, err := devices.Select(splitList(f.profiles))
	if err != nil {
		return usageHint(c, "see 'mqttstack devices profiles'", "--profiles: %v", err)
	}
	required := splitList(f.require)
	if f.scenario != "" {
		sc, err := scenarios.Resolve(f.scenario)
		if err != nil {
			return badInput(c, err)
		}
		if len(sc.Fleet.Profiles) == 0 {
			return usageErrorf(c, "--scenario %s: its fleet has no profiles (fleet.profiles)", f.scenario)
		}
		for _, ps := range sc.Fleet.Profiles {
			required = append(required, ps.Profile)
		}
	}
	if _, err := devices.Select(required); err != nil {
		return usageHint(c, "see 'mqttstack devices profiles'", "--require: %v", err)
	}
	for _, r := range required {
		found := false
		for _, p := range profiles {
			found = found || p.Name == r
		}
		if !found {
			return usageErrorf(c, "--require %s: not among --profiles", r)
		}
	}
	t, err := target.Load(a.targetPath(f.target))
	if err != nil {
		return badInput(c, err)
	}
	if stackProfiles := splitList(t.DeviceProfiles); len(stackProfiles) > 0 {
		if _, err := devices.Select(stackProfiles); err != nil {
			return badInput(c, fmt.Errorf("target %s: device_profiles: %w", a.targetPath(f.target), err))
		}
		for _, n := range stackProfiles {
			if !slices.ContainsFunc(profiles, func(p devices.Profile) bool { return p.Name == n }) {
				p, _ := devices.Lookup(n)
				profiles = append(profiles, p) // the stack's boards always run
			}
			required = append(required, n)
		}
	}
	pool, err := certs.LoadCAPool(t.CACert)
	if err != nil {
		return badInput(c, err)
	}
	var ca *certs.Authority
	if _, err := os.Stat(filepath.Join(t.PKIDir, "ca.key")); err == nil {
		if ca, err = certs.Open(t.PKIDir); err != nil {
			return badInput(c, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return couldNotRun(c, err)
	}
	h, err := openHost(ctx, t)
	if err != nil {
		return couldNotRun(c, err)
	}
	if h != nil {
		defer h.Close()
	}
	m, err := devices.Run(ctx, devices.Options{
		Addr: t.MQTTSAddr(), ServerName: t.ServerName, DialIP: f.dialIP, RootCAs: pool,
		Identity: devices.PKIIdentities(t.PKIDir, ca), Profiles: profiles, Required: required,
		Skew: f.skew, Host: h, CostHandshakes: f.costHandshakes,
	})
	if err != nil && ctx.Err() == nil {
		if m == nil {
			return usageErrorf(c, "%v", err)
		}
		return couldNotRun(c, err)
	}
	if err := devices.WriteConsole(a.stdout, m); err != nil {
		return couldNotRun(c, err)
	}
	write := func(path string, fn func(io.Writer) error) error {
		var b bytes.Buffer
		if err := fn(&b); err != nil {
			return err
		}
		return atomicfile.Write(path, b.Bytes(), 0o644)
	}
	if f.json != "" {
		if err := write(f.json, func(w io.Writer) error { return devices.WriteJSON(w, m) }); err != nil {
			return couldNotRun(c, fmt.Errorf("json: %w", err))
		}
	}
	if f.junit != "" {
		if err := write(f.junit, func(w io.Writer) error { return devices.WriteJUnit(w, m) }); err != nil {
			return couldNotRun(c, fmt.Errorf("junit: %w", err))
		}
	}
	if f.html != "" {
		if err := write(f.html, func(w io.Writer) error { return devices.WriteHTML(w, m) }); err != nil {
			return couldNotRun(c, fmt.Errorf("html: %w", err))
		}
	}
	if ctx.Err() != nil {
		return withCode(c, exitInterrupted, fmt.Errorf("interrupted: %w", ctx.Err()))
	}
	if fl := m.Failed(); len(fl) > 0 {
		var names []string
		for _, r := range fl {
			names = append(names, r.Profile+" ("+string(r.Reason)+")")
		}
		return failed(c, fmt.Errorf("required profile(s) refused: %s", strings.Join(names, ", ")))
	}
	return nil
}

// compatForRun measures the compatibility matrix of a plan's device
// profiles (fleet.profiles) against its target before the load, for the
// run's report: one handshake, CONNECT and round trip per profile, no CPU
// sampling. A plan without profiles, or a matrix that cannot run, gives
// nil (the load itself says the rest).
func compatForRun(ctx context.Context, plan *loadtest.Plan, log io.Writer) []result.CompatRow {
	var ps []devices.Profile
	for _, p := range plan.Profiles {
		if !slices.ContainsFunc(ps, func(q devices.Profile) bool { return q.Name == p.Name }) {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return nil
	}
	var ca *certs.Authority
	if a, err := certs.Open(plan.Target.PKIDir); err == nil {
		ca = a
	}
	m, err := devices.Run(ctx, devices.Options{
		Addr: plan.Target.MQTTSAddr(), ServerName: plan.Target.ServerName, RootCAs: plan.RootCAs,
		Identity: devices.PKIIdentities(plan.Target.PKIDir, ca), Profiles: ps,
	})
	if err != nil {
		fmt.Fprintf(log, "device compatibility matrix not measured: %v\n", err)
		return nil
	}
	var rows []result.CompatRow
	for _, r := range m.Rows {
		rows = append(rows, result.CompatRow{Profile: r.Profile, Verdict: r.Verdict, Reason: string(r.Reason), Detail: r.Detail,
			TLS: r.Version, Suite: r.Suite, Group: r.Group, FirstFlight: r.FirstFlight, HandshakeMS: r.HandshakeMS,
			ClockUnset: strings.TrimSuffix(r.NoNTP+": "+string(r.NoNTPReason), ": ")})
		if !r.Works() {
			fmt.Fprintf(log, "device profile %s is refused by the target: %s (%s)\n", r.Profile, r.Reason, r.Detail)
		}
	}
	return rows
}
