package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"gopkg.in/yaml.v3"

	"github.com/mqttstack/mqttstack/infra/program"
)

// DefaultStack is the stack used when Options.Stack is empty.
const DefaultStack = "dev"

// env is the environment as a lookup table (last value wins, as for exec).
type env map[string]string

func parseEnv(kv []string) env {
	e := env{}
	for _, s := range kv {
		if k, v, ok := strings.Cut(s, "="); ok {
			e[k] = v
		}
	}
	return e
}

// setup is everything resolved before the engine runs.
type setup struct {
	o          Options
	dir        string
	cli        string
	backend    string // PULUMI_BACKEND_URL
	fileState  bool   // the local file backend (passphrase secrets)
	cliEnv     map[string]string
	targetPath string
}

// resolve applies defaults and checks every precondition at once. It
// writes nothing.
func resolve(o Options, forConfig bool) (*setup, error) {
	var errs []error
	if o.Stack == "" {
		o.Stack = DefaultStack
	}
	if o.Project == "" {
		o.Project = program.Project
	}
	if o.Program == nil {
		o.Program = program.Run
	}
	if o.Validate == nil {
		o.Validate = ValidateConfig
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	e := parseEnv(o.Env)
	s := &setup{o: o, cliEnv: map[string]string{}}

	if !stackNameRE(o.Stack) {
		errs = append(errs, fmt.Errorf("--stack %q: a stack name is letters, digits, '-', '_' and '.' (e.g. dev)", o.Stack))
	}
	if o.Dir == "" {
		o.Dir = "."
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		errs = append(errs, fmt.Errorf("project directory %q: %v (run from the directory holding Pulumi.yaml)", o.Dir, err))
	}
	s.dir = dir
	if _, err := os.Stat(filepath.Join(dir, "Pulumi.yaml")); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w (run from the mqttstack checkout, whose Pulumi.yaml names project %q)", filepath.Join(dir, "Pulumi.yaml"), err, o.Project))
	}
	stackFile := filepath.Join(dir, "Pulumi."+o.Stack+".yaml")
	if _, err := os.Stat(stackFile); err != nil && !forConfig {
		errs = append(errs, fmt.Errorf("%s: %w (the stack configuration: start from Pulumi.example.yaml, `cp Pulumi.example.yaml Pulumi.%s.yaml`, then set the secret key with `mqttstack deploy config set --secret --stack %s mqttstack:ssh.privateKey < ~/.ssh/id_ed25519`)", stackFile, errors.Unwrap(err), o.Stack, o.Stack))
	}

	// The CLI.
	switch {
	case o.PulumiBin != "":
		s.cli = o.PulumiBin
	case o.BinDir != "" && isExecutable(filepath.Join(o.BinDir, "pulumi")):
		s.cli = filepath.Join(o.BinDir, "pulumi")
	default:
		s.cli = lookPath("pulumi", e["PATH"])
	}
	if s.cli == "" || !isExecutable(s.cli) {
		where := "bin/pulumi or PATH"
		if o.PulumiBin != "" {
			where = o.PulumiBin
		}
		errs = append(errs, fmt.Errorf("pulumi CLI: not found in %s (build it with `make pulumi`, about 17 minutes the first time, or install Pulumi v3.259.0 or newer)", where))
	} else if abs, err := filepath.Abs(s.cli); err == nil {
		s.cli = abs
	}

	// The plugins.
	if forConfig {
		o.Plugins = []Plugin{} // setting config runs no provider
		s.o.Plugins = o.Plugins
	}
	if o.Plugins == nil {
		o.Plugins = []Plugin{{Name: PluginName, Version: PluginVersion, Path: filepath.Join(o.BinDir, "pulumi-resource-"+PluginName)}}
		s.o.Plugins = o.Plugins
	}
	for _, p := range o.Plugins {
		if !isExecutable(p.Path) {
			errs = append(errs, fmt.Errorf("provider plugin %s: %s is missing or not executable (build it with `make provider`, which builds bin/pulumi-resource-%s)", p.Name, p.Path, p.Name))
		}
	}

	// The backend and its secrets.
	switch {
	case e["PULUMI_BACKEND_URL"] != "":
		s.backend = e["PULUMI_BACKEND_URL"]
	default:
		if cur, token := loggedIn(e, o.UserHome); cur != "" {
			s.backend = cur
			if token != "" && e["PULUMI_ACCESS_TOKEN"] == "" {
				s.cliEnv["PULUMI_ACCESS_TOKEN"] = token
			}
		} else {
			s.backend = "file://" + filepath.ToSlash(StateDir(dir))
		}
	}
	s.fileState = strings.HasPrefix(s.backend, "file://")
	if s.fileState && e["PULUMI_CONFIG_PASSPHRASE"] == "" && e["PULUMI_CONFIG_PASSPHRASE_FILE"] == "" {
		errs = append(errs, fmt.Errorf("PULUMI_CONFIG_PASSPHRASE: not set; the stack's secrets (SSH key, server key) are encrypted with it in the %s backend (export PULUMI_CONFIG_PASSPHRASE=… or PULUMI_CONFIG_PASSPHRASE_FILE=path, the same every run)", s.backend))
	}
	for _, k := range []string{"PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_ACCESS_TOKEN"} {
		if v := e[k]; v != "" {
			s.cliEnv[k] = v
		}
	}
	s.cliEnv["PULUMI_BACKEND_URL"] = s.backend
	s.cliEnv["PULUMI_SKIP_UPDATE_CHECK"] = "true"
	s.cliEnv["PULUMI_IGNORE_AMBIENT_PLUGINS"] = "true"
	s.cliEnv["PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK"] = "true"
	s.cliEnv["PULUMI_HOME"] = HomeDir(dir)

	s.targetPath = o.TargetPath
	if s.targetPath == "" {
		s.targetPath = filepath.Join(StackDir(dir, o.Stack), "target.json")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, badInput(err)
	}
	return s, nil
}

func stackNameRE(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func lookPath(name, path string) string {
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			continue
		}
		if p := filepath.Join(d, name); isExecutable(p) {
			return p
		}
	}
	return ""
}

// loggedIn returns the backend the user is logged in to (the CLI's
// credentials.json "current") and its access token, or "" when none. A
// local file login is honoured as well.
func loggedIn(e env, userHome string) (current, token string) {
	home := e["PULUMI_HOME"]
	if home == "" {
		if userHome == "" {
			return "", ""
		}
		home = filepath.Join(userHome, ".pulumi")
	}
	b, err := os.ReadFile(filepath.Join(home, "credentials.json"))
	if err != nil {
		return "", ""
	}
	var c struct {
		Current      string            `json:"current"`
		AccessTokens map[string]string `json:"accessTokens"`
	}
	if json.Unmarshal(b, &c) != nil {
		return "", ""
	}
	return c.Current, c.AccessTokens[c.Current]
}

// Run runs one operation. Progress goes to o.Out; the CLI's full output to
// a log file under .mqttstack/ (Result.LogPath, also named in errors).
func Run(ctx context.Context, op Op, o Options) (*Result, error) {
	if !slices.Contains(Ops, op) {
		return nil, badInput(fmt.Errorf("operation %q: one of %v", op, Ops))
	}
	s, err := resolve(o, false)
	if err != nil {
		return nil, err
	}
	start := s.o.Now()
	res := &Result{Op: op, Stack: s.o.Stack, Changes: map[string]int{}}
	stk, logPath, err := s.open(ctx, op)
	if err != nil {
		return nil, err
	}
	res.LogPath = logPath

	cfg, err := stk.GetAllConfig(ctx)
	if err != nil {
		return nil, badInput(fmt.Errorf("stack %s: read its configuration: %v (a wrong PULUMI_CONFIG_PASSPHRASE shows up here: it must be the one the stack was created with)", s.o.Stack, cliMessage(err)))
	}
	if op == Preview || op == Up {
		vals, secret := map[string]string{}, []string(nil)
		for k, v := range cfg {
			vals[k] = v.Value
			if v.Secret {
				secret = append(secret, k)
			}
		}
		slices.Sort(secret)
		if err := s.o.Validate(vals, secret, s.dir, s.o.Stack); err != nil {
			return nil, badInput(fmt.Errorf("stack configuration %s: %w", filepath.Join(s.dir, "Pulumi."+s.o.Stack+".yaml"), err))
		}
	}

	if op != Outputs {
		if err := s.engine(ctx, op, stk, logPath, res); err != nil {
			res.Elapsed = s.o.Now().Sub(start)
			return res, err
		}
	}
	outs, err := stk.Outputs(ctx)
	if err != nil {
		return res, couldNotRun(fmt.Errorf("stack %s: read outputs: %v", s.o.Stack, cliMessage(err)))
	}
	res.Outputs = map[string]any{}
	for k, v := range outs {
		res.Outputs[k] = v.Value
		if v.Secret {
			res.SecretOutputs = append(res.SecretOutputs, k)
		}
	}
	slices.Sort(res.SecretOutputs)

	switch op {
	case Up:
		if err := writeTarget(s, cfg, res.Outputs); err != nil {
			res.Elapsed = s.o.Now().Sub(start)
			return res, couldNotRun(fmt.Errorf("up succeeded, but the target could not be written: %w", err))
		}
		res.TargetPath = s.targetPath
		fmt.Fprintf(s.o.Out, "target: %s (run `mqttstack security --target %s`)\n", s.targetPath, s.targetPath)
	case Destroy:
		// The stack's resources are gone: so is the way to reach them.
		removeTarget(s)
	}
	res.Elapsed = s.o.Now().Sub(start)
	return res, nil
}

// open prepares PULUMI_HOME, the backend, the plugins and the stack.
func (s *setup) open(ctx context.Context, op Op) (auto.Stack, string, error) {
	var stk auto.Stack
	home := s.cliEnv["PULUMI_HOME"]
	for _, d := range []string{home, StackDir(s.dir, s.o.Stack)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return stk, "", couldNotRun(err)
		}
	}
	if s.fileState {
		if err := os.MkdirAll(StateDir(s.dir), 0o700); err != nil {
			return stk, "", couldNotRun(err)
		}
	}
	logPath := filepath.Join(StackDir(s.dir, s.o.Stack), string(op)+".log")
	if op == opConfig {
		logPath = ""
	}

	cmd, err := newCommand(s.cli)
	if err != nil {
		return stk, "", couldNotRun(fmt.Errorf("pulumi CLI %s: %w", s.cli, err))
	}
	for _, p := range s.o.Plugins {
		if err := s.installPlugin(ctx, p); err != nil {
			return stk, "", err
		}
	}
	opts := []auto.LocalWorkspaceOption{
		auto.WorkDir(s.dir),
		auto.PulumiHome(home),
		auto.Pulumi(cmd),
		auto.EnvVars(s.cliEnv),
	}
	if s.fileState {
		opts = append(opts, auto.SecretsProvider("passphrase"))
	}
	switch op {
	case Preview, Up:
		// A stack that does not exist yet has no secrets: its configuration
		// is checked from the file before the stack is created, so a bad
		// one leaves no stack behind.
		stk, err = auto.SelectStackInlineSource(ctx, s.o.Stack, s.o.Project, s.o.Program, opts...)
		if err != nil && auto.IsSelectStack404Error(err) {
			if verr := s.validateNewStack(); verr != nil {
				return stk, "", verr
			}
			stk, err = auto.UpsertStackInlineSource(ctx, s.o.Stack, s.o.Project, s.o.Program, opts...)
		}
	case opConfig:
		stk, err = auto.UpsertStackInlineSource(ctx, s.o.Stack, s.o.Project, s.o.Program, opts...)
	default:
		stk, err = auto.SelectStackInlineSource(ctx, s.o.Stack, s.o.Project, s.o.Program, opts...)
		if err != nil && auto.IsSelectStack404Error(err) {
			return stk, "", badInput(fmt.Errorf("stack %s does not exist in %s: nothing to %s (create it with `mqttstack deploy up --stack %s`)", s.o.Stack, s.backend, op, s.o.Stack))
		}
	}
	if err != nil {
		return stk, "", couldNotRun(fmt.Errorf("stack %s in %s: %v", s.o.Stack, s.backend, cliMessage(err)))
	}
	return stk, logPath, nil
}

// newCommand wraps the CLI for the Automation API, which finds it as
// <root>/bin/pulumi.
func newCommand(cli string) (auto.PulumiCommand, error) {
	opts := &auto.PulumiCommandOptions{SkipVersionCheck: true}
	if filepath.Base(filepath.Dir(cli)) == "bin" && filepath.Base(cli) == "pulumi" {
		opts.Root = filepath.Dir(filepath.Dir(cli))
	} else {
		return nil, fmt.Errorf("the Automation API runs <dir>/bin/pulumi: put the CLI in a directory named bin")
	}
	return auto.NewPulumiCommand(opts)
}

// installPlugin installs a provider from its binary into PULUMI_HOME, again
// only when the binary changed (a rebuild keeps its version).
func (s *setup) installPlugin(ctx context.Context, p Plugin) error {
	sum, err := fileSHA256(p.Path)
	if err != nil {
		return badInput(fmt.Errorf("provider plugin %s: %w", p.Name, err))
	}
	stamp := filepath.Join(s.cliEnv["PULUMI_HOME"], "plugins", fmt.Sprintf(".mqttstack-resource-%s-v%s.sha256", p.Name, p.Version))
	if b, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(b)) == sum {
		return nil
	}
	cmd := exec.CommandContext(ctx, s.cli, "plugin", "install", "resource", p.Name, p.Version, "--file", p.Path, "--reinstall", "--non-interactive")
	cmd.Dir = s.dir
	cmd.Env = s.environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return couldNotRun(fmt.Errorf("install provider plugin %s v%s from %s: %v: %s", p.Name, p.Version, p.Path, err, strings.TrimSpace(string(out))))
	}
	if err := os.WriteFile(stamp, []byte(sum+"\n"), 0o600); err != nil {
		return couldNotRun(err)
	}
	return nil
}

// environ is the CLI's environment: the user's, then ours on top.
func (s *setup) environ() []string {
	out := slices.Clone(s.o.Env)
	keys := make([]string, 0, len(s.cliEnv))
	for k := range s.cliEnv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, k+"="+s.cliEnv[k])
	}
	return out
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// engine runs preview, up, refresh or destroy and turns the engine events
// into progress lines and steps.
func (s *setup) engine(ctx context.Context, op Op, stk auto.Stack, logPath string, res *Result) error {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return couldNotRun(err)
	}
	defer logf.Close()
	ch := make(chan events.EngineEvent)
	tracef, err := os.OpenFile(strings.TrimSuffix(logPath, ".log")+".events.jsonl", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return couldNotRun(err)
	}
	defer tracef.Close()
	p := &progress{out: s.o.Out, op: op, res: res, trace: tracef}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range ch {
			p.event(e)
		}
	}()
	fmt.Fprintf(s.o.Out, "%s: stack %s (%s)\n", op, s.o.Stack, s.backend)
	switch op {
	case Preview:
		_, err = stk.Preview(ctx, optpreview.EventStreams(ch), optpreview.ProgressStreams(logf), optpreview.ErrorProgressStreams(logf),
			optpreview.Color("never"), optpreview.Diff(), optpreview.Refresh())
	case Up:
		_, err = stk.Up(ctx, optup.EventStreams(ch), optup.ProgressStreams(logf), optup.ErrorProgressStreams(logf),
			optup.Color("never"), optup.Diff(), optup.Refresh())
	case Refresh:
		_, err = stk.Refresh(ctx, optrefresh.EventStreams(ch), optrefresh.ProgressStreams(logf), optrefresh.ErrorProgressStreams(logf),
			optrefresh.Color("never"), optrefresh.Diff())
	case Destroy:
		_, err = stk.Destroy(ctx, optdestroy.EventStreams(ch), optdestroy.ProgressStreams(logf), optdestroy.ErrorProgressStreams(logf),
			optdestroy.Color("never"))
	}
	// The event channel is closed once the CLI's event log is drained; if
	// the CLI never started, it may never be: do not wait forever.
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	p.finish(err)
	if err != nil {
		if ctx.Err() != nil {
			return couldNotRun(fmt.Errorf("%s interrupted: %w (the CLI was stopped gracefully; see %s)", op, ctx.Err(), logPath))
		}
		msg := p.errorText()
		if msg == "" {
			msg = cliMessage(err)
		}
		return couldNotRun(fmt.Errorf("%s failed: %s (full output: %s)", op, msg, logPath))
	}
	return nil
}

// cliMessage shortens an Automation API error to the CLI's own message.
func cliMessage(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "stderr:"); i >= 0 {
		rest := strings.TrimSpace(msg[i+len("stderr:"):])
		var lines []string
		for _, l := range strings.Split(rest, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		if len(lines) > 0 {
			return strings.Join(lines, "; ")
		}
	}
	return msg
}

// progress renders engine events, one line per resource step. It is used
// by one goroutine (the event loop) and read after it ended.
type progress struct {
	mu     sync.Mutex
	out    io.Writer
	op     Op
	res    *Result
	errs   []string
	warned map[string]bool
	trace  io.Writer // every event as JSON (the run's .events.jsonl)
}

func (p *progress) event(e events.EngineEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.trace != nil {
		b, _ := json.Marshal(e.EngineEvent)
		fmt.Fprintf(p.trace, "%s\n", b)
	}
	switch {
	case e.DiagnosticEvent != nil:
		d := e.DiagnosticEvent
		msg := strings.TrimSpace(d.Message)
		switch d.Severity {
		case "error":
			if msg != "" && !slices.Contains(p.errs, msg) {
				p.errs = append(p.errs, msg)
			}
		case "warning":
			if p.warned == nil {
				p.warned = map[string]bool{}
			}
			if msg != "" && !p.warned[msg] && !strings.Contains(msg, "using pulumi-resource-") {
				p.warned[msg] = true
				fmt.Fprintf(p.out, "  warning: %s\n", firstLine(msg))
			}
		}
	case e.ResourcePreEvent != nil:
		m := e.ResourcePreEvent.Metadata
		if p.op == Preview || e.ResourcePreEvent.Planning {
			p.step(m, "")
		}
	case e.ResOutputsEvent != nil:
		if p.op != Preview {
			p.step(e.ResOutputsEvent.Metadata, "")
		}
	case e.ResOpFailedEvent != nil:
		p.step(e.ResOpFailedEvent.Metadata, "failed")
	case e.SummaryEvent != nil:
		for op, n := range e.SummaryEvent.ResourceChanges {
			p.res.Changes[string(op)] += n
		}
	}
}

// step prints and records one resource step. The stack itself and
// unchanged component resources are not worth a line.
func (p *progress) step(m apiStep, failed string) {
	typ, name := m.Type, urnName(m.URN)
	if typ == "pulumi:pulumi:Stack" || strings.HasPrefix(typ, "pulumi:providers:") {
		return
	}
	op := string(m.Op)
	st := Step{Op: op, Type: typ, Name: name, Diffs: stepDiffs(m), Err: failed}
	p.res.Steps = append(p.res.Steps, st)
	if op == "same" && failed == "" {
		fmt.Fprintf(p.out, "  = %s %s: unchanged\n", typ, name)
		return
	}
	if p.op == Refresh && (op == "update" || op == "delete") && failed == "" {
		// A refresh that changes the state found the host changed.
		fmt.Fprintf(p.out, "  ~ %s %s: drift (changed on the host outside Pulumi)\n", typ, name)
		for _, d := range st.Diffs {
			fmt.Fprintf(p.out, "      ~ %s\n", d)
		}
		return
	}
	if op == "refresh" && failed == "" {
		if len(st.Diffs) == 0 {
			if p.op == Refresh {
				fmt.Fprintf(p.out, "  = %s %s: in sync with the host\n", typ, name)
			}
			return
		}
		fmt.Fprintf(p.out, "  ~ %s %s: drift (changed outside Pulumi)\n", typ, name)
		for _, d := range st.Diffs {
			fmt.Fprintf(p.out, "      ~ %s\n", d)
		}
		return
	}
	verb := op
	if failed != "" {
		verb = op + " FAILED"
	}
	fmt.Fprintf(p.out, "  %s %s %s: %s\n", symbol(op), typ, name, verb)
	for _, d := range st.Diffs {
		fmt.Fprintf(p.out, "      ~ %s\n", d)
	}
}

func (p *progress) finish(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		fmt.Fprintf(p.out, "%s: failed (state keeps what was applied before)\n", p.op)
		return
	}
	if p.op == Refresh {
		if n := p.res.Changes["update"] + p.res.Changes["delete"]; n > 0 {
			fmt.Fprintf(p.out, "refresh: drift in %d resource(s); `mqttstack deploy up` restores the rendered configuration\n", n)
		} else {
			fmt.Fprintf(p.out, "refresh: no drift\n")
		}
		return
	}
	fmt.Fprintf(p.out, "%s: %s\n", p.op, p.res.ChangeSummary())
}

func (p *progress) errorText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.errs, "; ")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func symbol(op string) string {
	switch op {
	case "create":
		return "+"
	case "delete":
		return "-"
	case "replace", "create-replacement", "delete-replaced":
		return "+-"
	case "refresh", "read":
		return ">"
	default:
		return "~"
	}
}

func urnName(urn string) string {
	if i := strings.LastIndex(urn, "::"); i >= 0 {
		return urn[i+2:]
	}
	return urn
}

// opConfig opens a stack to set its configuration.
const opConfig Op = "config"

// SetConfig sets one key of the stack configuration (Pulumi.<stack>.yaml),
// creating the stack when it does not exist yet; a secret is encrypted with
// the stack's secrets provider (the passphrase on the file backend). It is
// `pulumi config set [--secret] KEY VALUE` with our backend and home.
func SetConfig(ctx context.Context, o Options, key, value string, secret bool) error {
	s, err := resolve(o, true)
	if err != nil {
		return err
	}
	if !strings.Contains(key, ":") {
		return badInput(fmt.Errorf("config key %q: give it with its namespace (e.g. %s:ssh.host)", key, s.o.Project))
	}
	stk, _, err := s.open(ctx, opConfig)
	if err != nil {
		return err
	}
	if err := stk.SetConfig(ctx, key, auto.ConfigValue{Value: value, Secret: secret}); err != nil {
		return couldNotRun(fmt.Errorf("stack %s: set %s: %v", s.o.Stack, key, cliMessage(err)))
	}
	return nil
}

// validateNewStack checks the configuration of a stack that is not in the
// backend yet, read straight from Pulumi.<stack>.yaml.
func (s *setup) validateNewStack() error {
	path := filepath.Join(s.dir, "Pulumi."+s.o.Stack+".yaml")
	cfg, secure, err := plainStackConfig(path)
	if err != nil {
		return badInput(err)
	}
	if len(secure) > 0 {
		return badInput(fmt.Errorf("%s holds encrypted values (%s), but stack %s does not exist in %s: they were encrypted for a stack elsewhere (another backend, or state that was removed); set PULUMI_BACKEND_URL to that backend, or remove them and set them again with `mqttstack deploy config set --secret`", path, strings.Join(secure, ", "), s.o.Stack, s.backend))
	}
	if err := s.o.Validate(cfg, nil, s.dir, s.o.Stack); err != nil {
		return badInput(fmt.Errorf("stack configuration %s: %w", path, err))
	}
	return nil
}

// plainStackConfig reads the config: block of a stack file as the program
// sees it: strings as they are, other values as JSON. Encrypted values are
// listed apart.
func plainStackConfig(path string) (map[string]string, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var f struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg := map[string]string{}
	var secure []string
	for k, v := range f.Config {
		if !strings.Contains(k, ":") {
			k = program.Project + ":" + k // the project's own namespace, as Pulumi reads it
		}
		switch v := v.(type) {
		case string:
			cfg[k] = v
		case map[string]any:
			if _, ok := v["secure"]; ok && len(v) == 1 {
				secure = append(secure, k)
				continue
			}
			j, err := json.Marshal(v)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %s: %w", path, k, err)
			}
			cfg[k] = string(j)
		case []any:
			j, err := json.Marshal(v)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %s: %w", path, k, err)
			}
			cfg[k] = string(j)
		default:
			cfg[k] = fmt.Sprint(v)
		}
	}
	slices.Sort(secure)
	return cfg, secure, nil
}
