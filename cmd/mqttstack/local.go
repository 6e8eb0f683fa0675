package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqttstack/mqttstack/infra/local"
)

func newLocalCmd(a *app) *cobra.Command {
	c := newGroupCmd("local", "Run the stack on this machine: up, down, status, passwords",
		`Runs the rendered configuration on real daemons on 127.0.0.1: Mosquitto
(mTLS on --mqtts-port) and nginx (TLS, status page, MQTT over WebSockets),
on unprivileged ports, with the private CA of --pki-dir.`,
		`  mqttstack local up
  mqttstack local status
  mqttstack local down`)
	c.AddCommand(newLocalUpCmd(a))
	c.AddCommand(newLocalDownCmd(a))
	c.AddCommand(newLocalStatusCmd(a))
	c.AddCommand(newLocalPasswordsCmd(a))
	return c
}

func stateDirFlag(c *cobra.Command) *string {
	return c.Flags().String("state-dir", local.DefaultStateDir, "directory for the rendered config, logs, pid files and target.json")
}

func newLocalUpCmd(a *app) *cobra.Command {
	var o local.Options
	var state *string
	c := &cobra.Command{
		Use:   "up",
		Short: "Start mosquitto and nginx on 127.0.0.1 and write the target file",
		Long: `Starts mosquitto and nginx on 127.0.0.1 (creating the PKI if absent) and
writes <state-dir>/target.json; a running stack is left as it is.

The WebSocket listeners from --ws-port up are one per WSS identity
(observer, observer-1 ... observer-8, backend, backend-1 ... backend-8): each
accepts only its own identity's password, and nginx routes a verified
client certificate to its CN's listener, so certificate and MQTT username
stay bound over wss. --wss-devices adds a shared device listener for wss
load tests, which does NOT bind certificate to username (F8).

Exit codes: 0 up, 2 bad flags, 3 could not start (a taken port, a missing
daemon, a broken PKI: the message names the fix).`,
		Example: `  mqttstack local up
  mqttstack local up --devices 1000
  mqttstack local up --mqtts-port 18883 --https-port 18443 --http-port 18080 --ws-port 19001 --state-dir /tmp/stack`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			o.StateDir = *state
			return localUp(c, a, o)
		},
	}
	state = stateDirFlag(c)
	fl := c.Flags()
	fl.StringVar(&o.PKIDir, "pki-dir", local.DefaultPKIDir, "PKI directory (created with the defaults of 'mqttstack certs init' if absent)")
	fl.IntVar(&o.MQTTSPort, "mqtts-port", local.DefaultMQTTSPort, "mosquitto mTLS port on 127.0.0.1")
	fl.IntVar(&o.HTTPSPort, "https-port", local.DefaultHTTPSPort, "nginx TLS port (status page, /mqtt WebSocket) on 127.0.0.1")
	fl.IntVar(&o.HTTPPort, "http-port", local.DefaultHTTPPort, "nginx plain port (ACME webroot + redirect) on 127.0.0.1")
	fl.IntVar(&o.WSPort, "ws-port", local.DefaultWSPort, "first of mosquitto's WebSocket listeners behind nginx, 127.0.0.1 (one per WSS identity, consecutive ports)")
	fl.BoolVar(&o.DeviceWSS, "wss-devices", false, "let device certificates use wss (shared listener, for wss load tests; does not bind certificate to username, F8)")
	fl.IntVar(&o.OpsPort, "ops-port", 0, "mosquitto password listener for ops tools on 127.0.0.1 (0 = none)")
	fl.IntVar(&o.Devices, "devices", 0, "pre-issue device identities dev-00001 ... dev-N")
	return c
}

func localUp(c *cobra.Command, a *app, o local.Options) error {
	ctx, stdout, stderr := c.Context(), a.stdout, a.stderr
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
		return usageErrorf(c, "%s", strings.Join(bad, "; "))
	}
	o.Log = stderr
	t, err := local.Up(ctx, o)
	if err != nil {
		// a taken port, a missing daemon, a broken PKI: the stack could
		// not run, which is exit 3 (the message names the fix)
		return couldNotRun(c, err)
	}
	fmt.Fprintf(stdout, "local stack up: mqtts://%s  %s  (mosquitto pid %d, nginx pid %d)\ntarget: %s\n",
		t.MQTTSAddr(), t.HTTPSURL, t.Local.MosquittoPID, t.Local.NginxPID, local.TargetPath(t.Local.StateDir))
	return nil
}

func newLocalDownCmd(a *app) *cobra.Command {
	var state *string
	c := &cobra.Command{
		Use:     "down",
		Short:   "Stop the daemons that local up started",
		Long:    "Stops the mosquitto and nginx processes that 'mqttstack local up' started in --state-dir, and only those.",
		Example: "  mqttstack local down\n  mqttstack local down --state-dir /tmp/stack",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := local.Down(c.Context(), *state); err != nil {
				return couldNotRun(c, err)
			}
			_, err := fmt.Fprintf(a.stdout, "local stack in %s stopped\n", *state)
			return err
		},
	}
	state = stateDirFlag(c)
	return c
}

func newLocalStatusCmd(a *app) *cobra.Command {
	var state *string
	c := &cobra.Command{
		Use:   "status",
		Short: "Show pids, listening ports and the target path (exit 3 when not up)",
		Long: `Shows what runs in --state-dir: each daemon's pid, whether each port
accepts connections, a real mTLS CONNECT and an HTTPS request, and the
target path. Exit code 3 when the stack is not (fully) up.`,
		Example: "  mqttstack local status\n  mqttstack local status --state-dir /tmp/stack",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := local.Status(c.Context(), *state, a.stdout); err != nil {
				return couldNotRun(c, err)
			}
			return nil
		},
	}
	state = stateDirFlag(c)
	return c
}

func newLocalPasswordsCmd(a *app) *cobra.Command {
	var state *string
	c := &cobra.Command{
		Use:   "passwords",
		Short: "Rewrite the wss password files from the PKI and reload mosquitto",
		Long: `Rewrites the password file of each WSS identity's listener from the
PKI's <id>.pass files and reloads mosquitto (after identities were re-issued).`,
		Example: "  mqttstack local passwords",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := local.RefreshPasswords(c.Context(), *state); err != nil {
				return couldNotRun(c, err)
			}
			_, err := fmt.Fprintln(a.stdout, "password file rewritten from the PKI; mosquitto reloaded")
			return err
		},
	}
	state = stateDirFlag(c)
	return c
}
