package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// runIn runs the CLI in-process with stdin, as main does (minus the
// signals), and returns what a user would see.
func runIn(stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	a := &app{stdin: stdin, stdout: &o, stderr: &e, getenv: os.Getenv}
	code = exitCode(a.execute(context.Background(), args), &e)
	return o.String(), e.String(), code
}

// runCLI runs the CLI with an empty stdin.
func runCLI(args ...string) (stdout, stderr string, code int) {
	return runIn(strings.NewReader(""), args...)
}

// run is runCLI writing into the caller's buffers.
func run(args []string, stdout, stderr io.Writer) int {
	o, e, code := runCLI(args...)
	io.WriteString(stdout, o)
	io.WriteString(stderr, e)
	return code
}

var update = flag.Bool("update", false, "rewrite testdata/help/*.golden from the current help texts")

// allCommands walks the tree in order, without cobra's hidden __complete.
func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, s := range c.Commands() {
		if !s.Hidden {
			out = append(out, allCommands(s)...)
		}
	}
	return out
}

func testApp() *app {
	return &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
}

// TestHelpGolden locks the help of every command: on stdout, exit 0, the
// same through --help, -h and 'help', with examples everywhere. After
// changing a help text: go test ./cmd/mqttstack -run TestHelpGolden -update
func TestHelpGolden(t *testing.T) {
	root := newRootCmd(testApp())
	seen := map[string]bool{}
	for _, c := range allCommands(root) {
		path := strings.Fields(c.CommandPath())[1:]
		name := strings.Join(append([]string{"mqttstack"}, path...), "_")
		seen[name+".golden"] = true
		t.Run(name, func(t *testing.T) {
			if c.Example == "" {
				t.Errorf("%s has no examples", c.CommandPath())
			}
			if c.Short == "" || c.Short[0] < 'A' || c.Short[0] > 'Z' || strings.HasSuffix(c.Short, ".") {
				t.Errorf("%s: short help %q: one line, capitalised, no full stop", c.CommandPath(), c.Short)
			}
			out, errOut, code := runCLI(append(path, "--help")...)
			if code != exitOK || errOut != "" {
				t.Fatalf("--help: exit %d, stderr %q", code, errOut)
			}
			for _, other := range [][]string{append(path, "-h"), append([]string{"help"}, path...)} {
				if o, e, code := runCLI(other...); o != out || e != "" || code != exitOK {
					t.Errorf("%q differs from --help (exit %d, stderr %q):\n%s", other, code, e, o)
				}
			}
			if strings.Contains(out, "`") {
				t.Errorf("help shows a backquote (pflag takes backquoted text as the value's name):\n%s", out)
			}
			golden := filepath.Join("testdata", "help", name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if out != string(want) {
				t.Errorf("help of %s changed (run with -update if intended):\n--- got\n%s\n--- want\n%s", c.CommandPath(), out, want)
			}
		})
	}
	// a golden file without a command is a command that was removed
	files, _ := filepath.Glob(filepath.Join("testdata", "help", "*.golden"))
	for _, f := range files {
		if !seen[filepath.Base(f)] && !*update {
			t.Errorf("%s: no such command any more (remove the file)", f)
		}
	}
}

// TestUsageErrors: every kind of command-line mistake is exit 2 and one
// line on stderr that names the command and points at its help; nothing
// on stdout.
func TestUsageErrors(t *testing.T) {
	// the top-level commands, as the root lists them (others add to it)
	commands := strings.Join(subcommandNames(newRootCmd(testApp())), ", ")
	if !strings.HasPrefix(commands, "certs, completion, local, report, run, scenarios, security, target, validate, version") &&
		!strings.Contains(commands, "run, scenarios, security") {
		t.Fatalf("the root lists %s", commands)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string // the whole stderr line
	}{
		{"no command", nil, "mqttstack: name a command: " + commands + " (see 'mqttstack --help')"},
		{"unknown command", []string{"rnu"}, `mqttstack: unknown command "rnu" (did you mean run? see 'mqttstack --help')`},
		{"unknown command, nothing close", []string{"frobnicate"}, `mqttstack: unknown command "frobnicate" (one of ` + commands + `; see 'mqttstack --help')`},
		{"unknown subcommand", []string{"certs", "isue"}, `mqttstack: certs: unknown subcommand "isue" (did you mean issue? see 'mqttstack certs --help')`},
		{"group without subcommand", []string{"local"}, "mqttstack: local: name a subcommand: down, passwords, status, up (see 'mqttstack local --help')"},
		{"unknown help topic", []string{"help", "nope"}, `mqttstack: help: unknown help topic "nope" (see 'mqttstack --help')`},

		{"unknown flag", []string{"run", "smoke", "--devcies", "5"}, "mqttstack: run: unknown flag --devcies (did you mean --devices? see 'mqttstack run --help')"},
		{"unknown flag, nothing close", []string{"security", "--frobnicate"}, "mqttstack: security: unknown flag --frobnicate (see 'mqttstack security --help')"},
		{"unknown flag, single dash", []string{"certs", "check", "-within", "3d", "-x"}, "mqttstack: certs check: unknown flag -x in -x (see 'mqttstack certs check --help')"},
		{"unknown flag in a subcommand", []string{"local", "up", "--mqtt-port", "1"}, "mqttstack: local up: unknown flag --mqtt-port (did you mean --mqtts-port? see 'mqttstack local up --help')"},
		{"flag without value", []string{"run", "smoke", "--devices"}, "mqttstack: run: --devices needs a value (see 'mqttstack run --help')"},
		{"flag value not a number", []string{"run", "smoke", "--devices", "many"}, `mqttstack: run: --devices "many": not a whole number (see 'mqttstack run --help')`},
		{"zero devices", []string{"run", "smoke", "--devices", "0"}, "mqttstack: run: --devices 0: must be at least 1 (leave it out to run the scenario's own fleet.count; see 'mqttstack run --help')"},
		{"negative devices", []string{"run", "smoke", "--devices", "-3"}, "mqttstack: run: --devices -3: must be at least 1 (leave it out to run the scenario's own fleet.count; see 'mqttstack run --help')"},
		{"validate zero devices", []string{"validate", "--devices", "0", "smoke"}, "mqttstack: validate: --devices 0: must be at least 1 (see 'mqttstack validate --help')"},
		{"bad flag value", []string{"security", "--tier", "3"}, "mqttstack: security: --tier 3: must be 1 or 2 (see 'mqttstack security --help')"},

		{"missing argument", []string{"run"}, "mqttstack: run: name one scenario, a built-in name or a YAML file (see 'mqttstack run --help')"},
		{"missing argument of a subcommand", []string{"certs", "revoke"}, "mqttstack: certs revoke: name the identity to revoke, e.g. dev-00042 (see 'mqttstack certs revoke --help')"},
		{"missing files", []string{"report", "show"}, "mqttstack: report show: name at least one result file, the JSON that mqttstack run wrote (see 'mqttstack report show --help')"},
		{"missing required flag", []string{"report", "merge", "a.json"}, "mqttstack: report merge: --out FILE is required (the merged result JSON to write) (see 'mqttstack report merge --help')"},

		{"extra argument", []string{"run", "smoke", "launch"}, `mqttstack: run: unexpected argument "launch" (give only one scenario, a built-in name or a YAML file; see 'mqttstack run --help')`},
		{"extra argument of revoke", []string{"certs", "revoke", "dev-1", "extra"}, `mqttstack: certs revoke: unexpected argument "extra" (give only the identity to revoke, e.g. dev-00042; see 'mqttstack certs revoke --help')`},
		{"argument to a flags-only command", []string{"security", "ACL-03"}, `mqttstack: security: unexpected argument "ACL-03" (this command takes flags only; see 'mqttstack security --help')`},
		{"argument to local status", []string{"local", "status", "now"}, `mqttstack: local status: unexpected argument "now" (this command takes flags only; see 'mqttstack local status --help')`},
		{"extra scenario name", []string{"scenarios", "smoke", "launch"}, `mqttstack: scenarios: unexpected argument "launch" (give at most one scenario name; see 'mqttstack scenarios --help')`},
		{"extra argument to completion", []string{"completion", "bash", "zsh"}, `mqttstack: completion bash: unexpected argument "zsh" (this command takes flags only; see 'mqttstack completion bash --help')`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(tc.args...)
			if code != exitUsage || errOut != tc.want+"\n" || out != "" {
				t.Errorf("exit %d (want %d)\nstderr: %q\nwant:   %q\nstdout: %q", code, exitUsage, errOut, tc.want+"\n", out)
			}
		})
	}
}

// TestBadInputFile: a file the user named that is missing or broken is
// exit 2 in every command, with an error naming the file. (Every problem
// of a scenario is listed, one per line; validate's last line is the
// verdict.)
func TestBadInputFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.json")
	broken := filepath.Join(dir, "broken.json")
	if err := os.WriteFile(broken, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	badYAML := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badYAML, []byte("fleet: {count: -1}\nstages: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		file string // the file the message must name
	}{
		{"run: missing target", []string{"run", "smoke", "--target", missing}, missing},
		{"run: broken target", []string{"run", "smoke", "--target", broken}, broken},
		{"run: missing scenario", []string{"run", filepath.Join(dir, "none.yaml"), "--target", missing}, "none.yaml"},
		{"run: invalid scenario", []string{"run", badYAML, "--target", missing}, badYAML},
		{"security: missing target", []string{"security", "--target", missing}, missing},
		{"security: broken target", []string{"security", "--target", broken}, broken},
		{"validate: invalid scenario", []string{"validate", badYAML}, badYAML},
		{"report: missing result", []string{"report", "show", missing}, missing},
		{"report: broken result", []string{"report", "html", "-o", filepath.Join(dir, "r.html"), broken}, broken},
		{"report: missing scenario", []string{"report", "show", "--scenario", filepath.Join(dir, "none.yaml"), missing}, missing},
		{"certs: missing PKI", []string{"certs", "check", "--dir", filepath.Join(dir, "nopki")}, "nopki"},
		{"target: missing stack output", []string{"target", "from-stack", "--stack-output", missing, "-o", filepath.Join(dir, "t.json")}, missing},
		{"target: broken stack output", []string{"target", "from-stack", "--stack-output", broken, "-o", filepath.Join(dir, "t.json")}, "stack output is not the JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(tc.args...)
			verdict := "mqttstack: " + tc.args[0]
			if code != exitUsage || !strings.Contains("\n"+errOut, "\n"+verdict) || !strings.Contains(errOut, tc.file) {
				t.Errorf("exit %d (want %d), stderr:\n%s\nwant it to name %s\nstdout: %s", code, exitUsage, errOut, tc.file, out)
			}
		})
	}
}

// TestSingleDashLongFlags: command lines written for the flag package
// (-name) keep working; a value that looks like a flag is left alone.
func TestSingleDashLongFlags(t *testing.T) {
	root := newRootCmd(testApp())
	for _, tc := range []struct{ in, want string }{
		{"report merge -o m.json -scenario soak a.json", "report merge -o m.json --scenario soak a.json"},
		{"report merge -scenario=soak a.json", "report merge --scenario=soak a.json"},
		{"certs issue --prefix -dev -count 3", "certs issue --prefix -dev --count 3"},
		{"run smoke -quiet -devices 5", "run smoke --quiet --devices 5"},
		{"run smoke -- -quiet", "run smoke -- -quiet"},
		{"run smoke -nosuchflag", "run smoke -nosuchflag"},
		{"certs issue -help", "certs issue --help"},
	} {
		if got := strings.Join(singleDashLongFlags(root, strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("%s\n got  %s\n want %s", tc.in, got, tc.want)
		}
	}
}

// TestCompletion: each shell's script is printed on stdout.
func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_mqttstack", "zsh": "#compdef mqttstack", "fish": "complete -c mqttstack"} {
		out, errOut, code := runCLI("completion", shell)
		if code != exitOK || errOut != "" || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, stderr %q, script lacks %q", shell, code, errOut, want)
		}
	}
	// the completion machinery finds the subcommands
	out, _, code := runCLI("__complete", "certs", "re")
	if code != exitOK || !strings.Contains(out, "revoke") {
		t.Errorf("__complete certs re: exit %d\n%s", code, out)
	}
}
