// Package deploy runs the mqttstack Pulumi program (package program) through
// the Automation API as an inline program: the program runs in this process
// and the Pulumi CLI drives it over gRPC, so no Go language host is needed
// (`pulumi up` in the project directory needs one; `mqttstack deploy` does
// not). It is what `mqttstack deploy preview|up|refresh|destroy|outputs`
// calls.
//
// What a run touches, and only that:
//   - the CLI: Options.PulumiBin, else <BinDir>/pulumi (built by `make
//     pulumi`), else `pulumi` on PATH;
//   - PULUMI_HOME = <Dir>/.mqttstack/pulumi/home (plugins, workspace
//     settings), so nothing lands in the user's home directory; our
//     provider plugin is installed there from <BinDir>/pulumi-resource-mqttstack
//     (`pulumi plugin install resource mqttstack VERSION --file …`) and
//     ambient plugins on PATH are ignored;
//   - the backend: PULUMI_BACKEND_URL if set, else the backend the user is
//     logged in to (the `current` of their credentials.json, read only),
//     else a local file backend in <Dir>/.mqttstack/pulumi/state with the
//     passphrase secrets provider (PULUMI_CONFIG_PASSPHRASE or
//     PULUMI_CONFIG_PASSPHRASE_FILE required);
//   - the stack configuration: <Dir>/Pulumi.yaml and Pulumi.<stack>.yaml,
//     the same files a plain `pulumi up` reads;
//   - on up: the target file, the CA certificate and the SSH key beside it
//     (default <Dir>/.mqttstack/stacks/<stack>/).
//
// Bad input (no passphrase, no CLI, no plugin, no project or stack file,
// invalid stack configuration) is reported before the engine runs, every
// problem at once, as an error that matches ErrBadInput; nothing is written
// then. A failure of the engine or the host matches ErrCouldNotRun.
package deploy

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Op is one deploy operation.
type Op string

// The operations.
const (
	Preview Op = "preview"
	Up      Op = "up"
	Refresh Op = "refresh"
	Destroy Op = "destroy"
	Outputs Op = "outputs"
)

// Ops lists the operations, for usage messages.
var Ops = []Op{Preview, Up, Refresh, Destroy, Outputs}

// Error kinds; test with errors.Is. cmd maps them to exit codes 2 and 3.
var (
	// ErrBadInput: the fix is on the user's side (a missing passphrase, CLI,
	// plugin or stack file, an invalid stack configuration).
	ErrBadInput = errors.New("bad input")
	// ErrCouldNotRun: the engine, the provider or the host failed.
	ErrCouldNotRun = errors.New("could not run")
)

type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

func badInput(err error) error {
	if err == nil {
		return nil
	}
	return &kindError{ErrBadInput, err}
}

func couldNotRun(err error) error {
	if err == nil {
		return nil
	}
	return &kindError{ErrCouldNotRun, err}
}

// Plugin is a resource provider plugin installed from a local binary.
type Plugin struct {
	Name    string // "mqttstack" for pulumi-resource-mqttstack
	Version string // semver without "v", as the SDK requests it
	Path    string // the binary
}

// Options configure one run.
type Options struct {
	// Dir is the project directory: it holds Pulumi.yaml and
	// Pulumi.<Stack>.yaml; state and settings go to Dir/.mqttstack/.
	Dir string
	// Stack is the stack name (default "dev").
	Stack string
	// Program is the Pulumi program (default program.Run) and Project its
	// project name (default "mqttstack", which must match Pulumi.yaml).
	Program pulumi.RunFunc
	Project string
	// PulumiBin is the CLI; empty: <BinDir>/pulumi, else pulumi on PATH.
	PulumiBin string
	// BinDir is where the build puts pulumi and pulumi-resource-mqttstack
	// (bin/ of the checkout; cmd passes the directory of its executable).
	BinDir string
	// Plugins are installed before the run; nil: our provider from BinDir
	// (pulumi-resource-mqttstack at PluginVersion). Use an empty, non-nil
	// slice for a program that needs none.
	Plugins []Plugin
	// Env is the environment to read PULUMI_* and PATH from (cmd passes
	// os.Environ()); the package never reads the process environment.
	Env []string
	// UserHome is where to look for the user's Pulumi login
	// (<UserHome>/.pulumi/credentials.json); empty: no login lookup.
	UserHome string
	// TargetPath is where up writes the target (default
	// <Dir>/.mqttstack/stacks/<Stack>/target.json).
	TargetPath string
	// Validate, if set, checks the stack configuration before the engine
	// runs (default: program.Run under mocks). Its error is bad input.
	Validate func(cfg map[string]string, secret []string, rootDir, stack string) error
	// Out receives readable progress: one line per resource step.
	Out io.Writer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Step is one resource step of a run as the engine reported it.
type Step struct {
	Op    string   // create, update, replace, delete, same, refresh, read…
	Type  string   // resource type token
	Name  string   // logical name
	Diffs []string // changed properties (per-file for HostConfig: "files./etc/mosquitto/acl")
	Err   string   // set if the step failed
}

// Result is what a run did.
type Result struct {
	Op    Op
	Stack string
	// Changes counts resources per engine op ("same", "update", …) from
	// the engine's summary.
	Changes map[string]int
	Steps   []Step
	// Outputs are the stack outputs after the run (secrets included: do not
	// print them as they are; see PrintOutputs).
	Outputs map[string]any
	// SecretOutputs names the outputs that are secrets.
	SecretOutputs []string
	// TargetPath is the target written by up ("" otherwise).
	TargetPath string
	// LogPath holds the CLI's full output of this run.
	LogPath string
	Elapsed time.Duration
}

// Changed reports whether the run changed (or, for preview, would change)
// any resource, or found drift (refresh).
func (r *Result) Changed() bool {
	for op, n := range r.Changes {
		if op != "same" && n > 0 {
			return true
		}
	}
	return false
}

// ChangeSummary is "no changes" or "2 to update, 1 to create" style text.
func (r *Result) ChangeSummary() string {
	var parts []string
	for _, op := range []string{"create", "update", "replace", "delete", "read", "refresh", "import"} {
		if n := r.Changes[op]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, op))
		}
	}
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, ", ")
}

// StateDir is the local file backend's directory for a project directory.
func StateDir(dir string) string { return filepath.Join(dir, ".mqttstack", "pulumi", "state") }

// HomeDir is PULUMI_HOME for a project directory.
func HomeDir(dir string) string { return filepath.Join(dir, ".mqttstack", "pulumi", "home") }

// StackDir is where up writes the target, CA and key of a stack.
func StackDir(dir, stack string) string { return filepath.Join(dir, ".mqttstack", "stacks", stack) }
