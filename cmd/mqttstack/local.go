package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/mqttstack/mqttstack/infra/local"
)

func init() {
	register("local", "run the stack on this machine: up, down, status", runLocal)
}

const localUsage = `usage: mqttstack local <subcommand> [flags]

subcommands:
  up      [--state-dir DIR] [--pki-dir DIR] [--mqtts-port 8883] [--https-port 8443]
          [--http-port 8080] [--ws-port 9001] [--ops-port 0] [--devices N]
          [--wss-devices]
          start mosquitto and nginx on 127.0.0.1 (creating the PKI if absent) and
          write DIR/target.json; a running stack is left as it is. wss is for
          the observer and backend identities (one listener each, from
          --ws-port up); --wss-devices also lets devices use wss for load
          tests, which does NOT bind certificate to username (F8)
  down    [--state-dir DIR]   stop the daemons that up started
  status  [--state-dir DIR]   pids, listening ports, target path (exit 3 when not up)
  passwords [--state-dir DIR] rewrite the wss password files from the PKI and reload
`

func runLocal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, localUsage)
		return usageErrorf("local: no subcommand given (see the list above)")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "up":
		return localUp(ctx, rest, stdout, stderr)
	case "down":
		return localDown(ctx, rest, stdout, stderr)
	case "status":
		return localStatus(ctx, rest, stdout, stderr)
	case "passwords":
		return localPasswords(ctx, rest, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, localUsage)
		return nil
	}
	fmt.Fprint(stderr, localUsage)
	return usageErrorf("local: unknown subcommand %q (see the list above)", sub)
}

func stateDirFlag(fs *flag.FlagSet) *string {
	return fs.String("state-dir", local.DefaultStateDir, "directory for the rendered config, logs, pid files and target.json")
}

func localUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("local up", stderr)
	var o local.Options
	state := stateDirFlag(fs)
	fs.StringVar(&o.PKIDir, "pki-dir", local.DefaultPKIDir, "PKI directory (created with `certs init` defaults if absent)")
	fs.IntVar(&o.MQTTSPort, "mqtts-port", local.DefaultMQTTSPort, "mosquitto mTLS port on 127.0.0.1")
	fs.IntVar(&o.HTTPSPort, "https-port", local.DefaultHTTPSPort, "nginx TLS port (status page, /mqtt WebSocket) on 127.0.0.1")
	fs.IntVar(&o.HTTPPort, "http-port", local.DefaultHTTPPort, "nginx plain port (ACME webroot + redirect) on 127.0.0.1")
	fs.IntVar(&o.WSPort, "ws-port", local.DefaultWSPort, "first of mosquitto's WebSocket listeners behind nginx, 127.0.0.1 (one per observer/backend identity, consecutive ports)")
	fs.BoolVar(&o.DeviceWSS, "wss-devices", false, "let device certificates use wss (shared listener, for wss load tests; does not bind certificate to username, F8)")
	fs.IntVar(&o.OpsPort, "ops-port", 0, "mosquitto password listener for ops tools on 127.0.0.1 (0 = none)")
	fs.IntVar(&o.Devices, "devices", 0, "pre-issue device identities dev-00001 … dev-N")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("local up: unexpected argument %q (flags only; run with -h)", fs.Arg(0))
	}
	var bad []string
	for name, v := range map[string]int{"--mqtts-port": o.MQTTSPort, "--https-port": o.HTTPSPort, "--http-port": o.HTTPPort, "--ws-port": o.WSPort} {
		if v < 1 || v > 65535 {
			bad = append(bad, fmt.Sprintf("%s %d: not a TCP port (1-65535)", name, v))
		}
	}
	if o.OpsPort < 0 || o.OpsPort > 65535 {
		bad = append(bad, fmt.Sprintf("--ops-port %d: not a TCP port (0 = none)", o.OpsPort))
	}
	if o.Devices < 0 {
		bad = append(bad, fmt.Sprintf("--devices %d: must be >= 0", o.Devices))
	}
	if len(bad) > 0 {
		return usageErrorf("local up: %s", strings.Join(bad, "; "))
	}
	o.StateDir = *state
	o.Log = stderr
	t, err := local.Up(ctx, o)
	if err != nil {
		// a taken port, a missing daemon, a broken PKI: the stack could
		// not run, which is exit 3 (the message names the fix)
		return withCode(exitCouldNotRun, fmt.Errorf("local up: %w", err))
	}
	fmt.Fprintf(stdout, "local stack up: mqtts://%s  %s  (mosquitto pid %d, nginx pid %d)\ntarget: %s\n",
		t.MQTTSAddr(), t.HTTPSURL, t.Local.MosquittoPID, t.Local.NginxPID, local.TargetPath(t.Local.StateDir))
	return nil
}

func localDown(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("local down", stderr)
	state := stateDirFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := local.Down(ctx, *state); err != nil {
		return withCode(exitCouldNotRun, fmt.Errorf("local down: %w", err))
	}
	fmt.Fprintf(stdout, "local stack in %s stopped\n", *state)
	return nil
}

func localStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("local status", stderr)
	state := stateDirFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := local.Status(ctx, *state, stdout); err != nil {
		return withCode(exitCouldNotRun, err)
	}
	return nil
}

func localPasswords(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("local passwords", stderr)
	state := stateDirFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := local.RefreshPasswords(ctx, *state); err != nil {
		return withCode(exitCouldNotRun, fmt.Errorf("local passwords: %w", err))
	}
	fmt.Fprintln(stdout, "password file rewritten from the PKI; mosquitto reloaded")
	return nil
}
