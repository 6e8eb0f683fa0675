package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqttstack/mqttstack/infra/deploy"
)

// deployFlags are shared by every deploy subcommand.
type deployFlags struct {
	stack, dir, pulumi string
}

func newDeployCmd(a *app) *cobra.Command {
	var f deployFlags
	c := newGroupCmd("deploy", "Deploy the stack with Pulumi: preview, up, refresh, destroy, outputs",
		`Runs the mqttstack Pulumi program (infra/program) through the Automation API
as an inline program: no Go language host needed, only the pulumi CLI
(bin/pulumi from 'make pulumi', or pulumi on PATH) and our provider plugin
(bin/pulumi-resource-mqttstack from 'make provider', installed into
.mqttstack/pulumi/home). The stack configuration is Pulumi.<stack>.yaml in
the project directory, as for 'pulumi up'.

State: a local file backend in .mqttstack/pulumi/state with the passphrase
secrets provider (PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE
is required), unless PULUMI_BACKEND_URL is set or you are logged in to a
backend ('pulumi login'), which is then used.

Exit codes: 0 done, 2 bad input (no passphrase, CLI, plugin, stack file,
or an invalid stack configuration: nothing was changed), 3 the engine, the
provider or the host failed, 130 interrupted.`,
		`  export PULUMI_CONFIG_PASSPHRASE=...
  cp Pulumi.example.yaml Pulumi.prod.yaml     # then edit it
  mqttstack deploy config set --stack prod --secret mqttstack:ssh.privateKey < ~/.ssh/id_ed25519
  mqttstack deploy preview --stack prod
  mqttstack deploy up --stack prod
  mqttstack security --target .mqttstack/stacks/prod/target.json`)
	c.PersistentFlags().StringVar(&f.stack, "stack", deploy.DefaultStack, "stack name (its configuration is Pulumi.<stack>.yaml)")
	c.PersistentFlags().StringVar(&f.dir, "dir", ".", "project directory: holds Pulumi.yaml and Pulumi.<stack>.yaml")
	c.PersistentFlags().StringVar(&f.pulumi, "pulumi", "", "pulumi CLI to use (default: bin/pulumi next to mqttstack, else pulumi on PATH)")

	sub := func(op deploy.Op, short, long, example string) *cobra.Command {
		return &cobra.Command{
			Use:     string(op),
			Short:   short,
			Long:    long,
			Example: example,
			Args:    noArgs,
		}
	}
	preview := sub(deploy.Preview, "Show what up would change (each file by path; drift on the host too)",
		`Refreshes the state from the host, then shows what 'deploy up' would do:
one line per resource, and for the host configuration each file that would
change (~ /etc/mosquitto/acl); secret contents are never shown.`,
		"  mqttstack deploy preview --stack prod")
	preview.RunE = func(c *cobra.Command, _ []string) error { return runDeploy(c, a, f, deploy.Preview, "") }

	var targetPath string
	up := sub(deploy.Up, "Apply the stack and write its target file",
		`Refreshes the state from the host (so a hand edit is repaired), applies the
program, and writes the target file for 'run' and 'security', with its CA
certificate and the ssh section (the SSH key from the stack configuration,
0600, and the pinned host key) beside it.`,
		`  mqttstack deploy up --stack prod
  mqttstack deploy up --stack prod --target prod.json`)
	up.Flags().StringVar(&targetPath, "target", "", "target file to write (default .mqttstack/stacks/<stack>/target.json)")
	up.RunE = func(c *cobra.Command, _ []string) error { return runDeploy(c, a, f, deploy.Up, targetPath) }

	refresh := sub(deploy.Refresh, "Read the host and report drift (files changed outside Pulumi)",
		`Reads every managed file's hash, mode and owner on the host into the state.
A file edited by hand shows as drift; the next 'deploy up' restores it.`,
		"  mqttstack deploy refresh --stack prod")
	refresh.RunE = func(c *cobra.Command, _ []string) error { return runDeploy(c, a, f, deploy.Refresh, "") }

	destroy := sub(deploy.Destroy, "Delete the stack's resources and its target files",
		`Deletes what the stack created (cloud server, firewall, DNS record) and
empties the state, then removes every target file 'deploy up' wrote for the
stack (with --target too) and the CA certificate and SSH key beside each. On provider ssh the host is left as it is: Mosquitto and
nginx keep running with the last configuration (see README "Deploying").`,
		"  mqttstack deploy destroy --stack prod")
	destroy.RunE = func(c *cobra.Command, _ []string) error { return runDeploy(c, a, f, deploy.Destroy, "") }

	var asJSON bool
	outputs := sub(deploy.Outputs, "Print the stack outputs (secrets masked)",
		"Prints the stack's outputs: host, server name, ports, host key fingerprint, daemon versions.",
		`  mqttstack deploy outputs --stack prod
  mqttstack deploy outputs --stack prod --json`)
	outputs.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	outputs.RunE = func(c *cobra.Command, _ []string) error {
		res, err := deployRun(c, a, f, deploy.Outputs, "", io.Discard)
		if err != nil {
			return err
		}
		return printOutputs(a.stdout, res, asJSON)
	}

	c.AddCommand(preview, up, refresh, destroy, outputs, newDeployConfigCmd(a, &f))
	return c
}

func newDeployConfigCmd(a *app, f *deployFlags) *cobra.Command {
	c := newGroupCmd("config", "Set stack configuration (Pulumi.<stack>.yaml)",
		`Sets keys of the stack configuration with this project's backend and
secrets provider, as 'pulumi config set' would.`,
		"  mqttstack deploy config set --stack prod --secret mqttstack:ssh.privateKey < ~/.ssh/id_ed25519")
	var secret bool
	set := &cobra.Command{
		Use:   "set KEY [VALUE]",
		Short: "Set one key; the value is read from stdin when not given",
		Long: `Sets one key of Pulumi.<stack>.yaml, creating the stack if it does not
exist. With --secret the value is encrypted (the passphrase on the file
backend); read it from stdin so it stays out of the shell history.`,
		Example: `  mqttstack deploy config set --stack prod mqttstack:ssh.host 198.51.100.20
  mqttstack deploy config set --stack prod --secret mqttstack:ssh.privateKey < ~/.ssh/id_ed25519`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageErrorf(c, "want KEY [VALUE], got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			value := ""
			if len(args) == 2 {
				value = args[1]
			} else {
				b, err := io.ReadAll(io.LimitReader(a.stdin, 1<<20))
				if err != nil {
					return badInput(c, fmt.Errorf("read the value from stdin: %w", err))
				}
				value = string(b)
				if !strings.Contains(value, "-----BEGIN") {
					value = strings.TrimRight(value, "\r\n")
				}
			}
			o, err := deployOptions(a, *f, "", io.Discard)
			if err != nil {
				return badInput(c, err)
			}
			if err := deploy.SetConfig(c.Context(), o, args[0], value, secret); err != nil {
				return deployError(c, err)
			}
			what := "set"
			if secret {
				what = "set (encrypted)"
			}
			fmt.Fprintf(a.stdout, "%s: %s in Pulumi.%s.yaml\n", args[0], what, f.stack)
			return nil
		},
	}
	set.Flags().BoolVar(&secret, "secret", false, "encrypt the value (keys, tokens)")
	c.AddCommand(set)
	return c
}

// deployOptions builds the runner's options from the flags and the
// environment the app may read.
func deployOptions(a *app, f deployFlags, targetPath string, out io.Writer) (deploy.Options, error) {
	var env []string
	for _, k := range []string{"PATH", "HOME", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE",
		"PULUMI_BACKEND_URL", "PULUMI_ACCESS_TOKEN", "PULUMI_HOME"} {
		if v := a.getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return deploy.Options{
		Dir:        f.dir,
		Stack:      f.stack,
		PulumiBin:  f.pulumi,
		BinDir:     binDir(),
		Env:        env,
		UserHome:   a.getenv("HOME"),
		TargetPath: targetPath,
		Out:        out,
	}, nil
}

// binDir is where the build put pulumi and pulumi-resource-mqttstack: next
// to this executable (bin/mqttstack), else ./bin (go run).
func binDir() string {
	exe, err := os.Executable()
	if err == nil {
		dir := filepath.Dir(exe)
		if _, err := os.Stat(filepath.Join(dir, "pulumi-resource-mqttstack")); err == nil {
			return dir
		}
	}
	if abs, err := filepath.Abs("bin"); err == nil {
		return abs
	}
	return "bin"
}

func runDeploy(c *cobra.Command, a *app, f deployFlags, op deploy.Op, targetPath string) error {
	_, err := deployRun(c, a, f, op, targetPath, a.stdout)
	return err
}

func deployRun(c *cobra.Command, a *app, f deployFlags, op deploy.Op, targetPath string, out io.Writer) (*deploy.Result, error) {
	o, err := deployOptions(a, f, targetPath, out)
	if err != nil {
		return nil, badInput(c, err)
	}
	res, err := deploy.Run(c.Context(), op, o)
	if err != nil {
		return res, deployError(c, err)
	}
	if op != deploy.Outputs {
		fmt.Fprintf(a.stdout, "%s: done in %.1fs (log: %s)\n", op, res.Elapsed.Seconds(), res.LogPath)
	}
	return res, nil
}

func deployError(c *cobra.Command, err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return withCode(c, exitInterrupted, err)
	case errors.Is(err, deploy.ErrBadInput):
		return badInput(c, err)
	default:
		return couldNotRun(c, err)
	}
}

// printOutputs prints outputs sorted, secrets masked, PEM blocks shortened.
func printOutputs(w io.Writer, res *deploy.Result, asJSON bool) error {
	shown := map[string]any{}
	for k, v := range res.Outputs {
		if slices.Contains(res.SecretOutputs, k) {
			v = "[secret]"
		}
		shown[k] = v
	}
	if asJSON {
		b, err := json.MarshalIndent(shown, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	if len(shown) == 0 {
		_, err := fmt.Fprintf(w, "stack %s has no outputs (not deployed, or destroyed)\n", res.Stack)
		return err
	}
	keys := make([]string, 0, len(shown))
	for k := range shown {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := fmt.Sprint(shown[k])
		if strings.HasPrefix(v, "-----BEGIN") {
			v = fmt.Sprintf("(PEM, %d bytes)", len(v))
		}
		if _, err := fmt.Fprintf(w, "%-20s %s\n", k, v); err != nil {
			return err
		}
	}
	return nil
}
