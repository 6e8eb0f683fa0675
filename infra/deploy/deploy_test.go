package deploy

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/target"
)

// repoBin is the checkout's bin/ (make pulumi, make build).
func repoBin(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "bin")
}

// project writes Pulumi.yaml (and, if stack != "", an empty stack file)
// into a fresh directory.
func project(t testing.TB, stack string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), []byte("name: mqttstack\nruntime: go\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if stack != "" {
		if err := os.WriteFile(filepath.Join(dir, "Pulumi."+stack+".yaml"), []byte("config: {}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func executable(t testing.TB, path string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// Every precondition is checked before anything is written, and all
// problems come back at once, as bad input naming the fix.
func TestBadInputIsReportedAtOnceAndWritesNothing(t *testing.T) {
	fakeBin := t.TempDir()
	executable(t, filepath.Join(fakeBin, "pulumi"))
	executable(t, filepath.Join(fakeBin, "pulumi-resource-mqttstack"))
	tests := []struct {
		name  string
		setup func(o *Options)
		want  []string
	}{
		{"no passphrase", func(o *Options) { o.Env = []string{"PATH=/nonexistent"} },
			[]string{"PULUMI_CONFIG_PASSPHRASE: not set", "export PULUMI_CONFIG_PASSPHRASE"}},
		{"no CLI", func(o *Options) { o.BinDir = t.TempDir(); o.Plugins = []Plugin{} },
			[]string{"pulumi CLI: not found", "make pulumi"}},
		{"no plugin", func(o *Options) {
			o.Plugins = []Plugin{{Name: "mqttstack", Version: "0.1.0", Path: filepath.Join(t.TempDir(), "pulumi-resource-mqttstack")}}
		}, []string{"provider plugin mqttstack", "make provider"}},
		{"no project", func(o *Options) { os.Remove(filepath.Join(o.Dir, "Pulumi.yaml")) },
			[]string{"Pulumi.yaml", "no such file"}},
		{"no stack file", func(o *Options) { o.Stack = "prod" },
			[]string{"Pulumi.prod.yaml", "cp Pulumi.example.yaml Pulumi.prod.yaml"}},
		{"bad stack name", func(o *Options) { o.Stack = "a/b" }, []string{`--stack "a/b"`}},
		{"everything at once", func(o *Options) {
			o.Env = nil
			o.BinDir = t.TempDir()
			o.Plugins = nil
		}, []string{"PULUMI_CONFIG_PASSPHRASE", "pulumi CLI", "provider plugin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{
				Dir:    project(t, "dev"),
				BinDir: fakeBin,
				Env:    []string{"PULUMI_CONFIG_PASSPHRASE=x", "PATH=/nonexistent"},
			}
			tt.setup(&o)
			res, err := Run(context.Background(), Up, o)
			if err == nil {
				t.Fatalf("Run accepted it: %+v", res)
			}
			if !errors.Is(err, ErrBadInput) {
				t.Errorf("error is not bad input: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if _, serr := os.Stat(filepath.Join(o.Dir, ".mqttstack")); !os.IsNotExist(serr) {
				t.Errorf(".mqttstack was written (%v)", serr)
			}
		})
	}
}

func TestLoggedInBackendIsUsed(t *testing.T) {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".pulumi"), 0o700)
	os.WriteFile(filepath.Join(home, ".pulumi", "credentials.json"),
		[]byte(`{"current":"https://api.example.test","accessTokens":{"https://api.example.test":"tok"}}`), 0o600)
	bin := t.TempDir()
	executable(t, filepath.Join(bin, "pulumi"))
	tests := []struct {
		name        string
		env         []string
		wantBackend string
		wantToken   string
	}{
		{"login", nil, "https://api.example.test", "tok"},
		{"explicit URL wins", []string{"PULUMI_BACKEND_URL=s3://bucket"}, "s3://bucket", ""},
		{"own token wins", []string{"PULUMI_ACCESS_TOKEN=mine"}, "https://api.example.test", "mine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := resolve(Options{Dir: project(t, "dev"), BinDir: bin, Plugins: []Plugin{}, Env: tt.env, UserHome: home}, false)
			if err != nil {
				t.Fatalf("resolve: %v (no passphrase is needed off the file backend)", err)
			}
			if s.backend != tt.wantBackend || s.cliEnv["PULUMI_ACCESS_TOKEN"] != tt.wantToken {
				t.Errorf("backend %q token %q, want %q %q", s.backend, s.cliEnv["PULUMI_ACCESS_TOKEN"], tt.wantBackend, tt.wantToken)
			}
			if !strings.HasPrefix(s.cliEnv["PULUMI_HOME"], s.dir) {
				t.Errorf("PULUMI_HOME %s is outside the project", s.cliEnv["PULUMI_HOME"])
			}
		})
	}
}

func TestStepDiffsNameFiles(t *testing.T) {
	m := apiStep{Op: "update", DetailedDiff: map[string]apiPropertyDiff{
		`files["/etc/mosquitto/acl"]`:            {Kind: "update"},
		`files["/etc/nginx/nginx.conf"].content`: {Kind: "update"},
		`secretFiles["/etc/mosquitto/passwd"]`:   {Kind: "update"},
		`host`:                                   {Kind: "update-replace"},
	}}
	got := strings.Join(stepDiffs(m), "|")
	want := "/etc/mosquitto/acl|/etc/mosquitto/passwd (secret)|/etc/nginx/nginx.conf|host (replaces the resource)"
	if got != want {
		t.Errorf("diffs %q, want %q", got, want)
	}
	drift := apiStep{Op: "refresh",
		Old: &apiState{Outputs: map[string]any{"fileHashes": map[string]any{"/etc/a": "1", "/etc/b": "2"}, "x": "same"}},
		New: &apiState{Outputs: map[string]any{"fileHashes": map[string]any{"/etc/a": "1", "/etc/b": "3"}, "x": "same"}},
	}
	if got := strings.Join(stepDiffs(drift), "|"); got != "/etc/b" {
		t.Errorf("drift %q, want /etc/b", got)
	}
}

// The real engine: the CLI from `make pulumi` runs a small inline program
// on a file backend in a temporary project: preview, up (target written),
// a second up with no changes, outputs, destroy (target removed).
func TestEngineRunsAnInlineProgram(t *testing.T) {
	bin := repoBin(t)
	if !isExecutable(filepath.Join(bin, "pulumi")) {
		t.Skip("bin/pulumi not built (`make pulumi`); the deploy rehearsal (make deploy-rehearsal) runs the engine too")
	}
	if testing.Short() {
		t.Skip("-short: the engine takes several seconds")
	}
	dir := project(t, "")
	pki := filepath.Join(dir, "pki")
	if _, err := certs.Init(certs.InitOptions{Dir: pki, ServerName: "mqtt.example.com", Observers: []string{"observer"}, Backends: []string{"backend"}}); err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	const hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	prog := func(ctx *pulumi.Context) error {
		var c struct{ pulumi.ResourceState }
		if err := ctx.RegisterComponentResource("mqttstack:test:Thing", "thing", &c); err != nil {
			return err
		}
		for k, v := range map[string]string{"name": ctx.Stack(), "host": "192.0.2.1", "serverName": "mqtt.example.com",
			"caCertPem": string(caPEM), "pkiDir": "pki", "observer": "observer", "backend": "backend",
			"sshUser": "root", "sshHostKey": hostKey} {
			ctx.Export(k, pulumi.String(v))
		}
		ctx.Export("mqttsPort", pulumi.Int(8883))
		ctx.Export("sshPort", pulumi.Int(22))
		return nil
	}
	var out bytes.Buffer
	o := Options{
		Dir: dir, Stack: "t", BinDir: bin, Program: prog, Plugins: []Plugin{},
		Env:      []string{"PULUMI_CONFIG_PASSPHRASE=test-passphrase"},
		Validate: func(map[string]string, []string, string, string) error { return nil },
		Out:      &out,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	key := "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
	if err := SetConfig(ctx, o, "mqttstack:ssh.privateKey", key, true); err != nil {
		t.Fatalf("config set: %v", err)
	}
	stackFile, _ := os.ReadFile(filepath.Join(dir, "Pulumi.t.yaml"))
	if !strings.Contains(string(stackFile), "secure:") || strings.Contains(string(stackFile), "OPENSSH") {
		t.Fatalf("the secret is not encrypted in Pulumi.t.yaml:\n%s", stackFile)
	}

	if _, err := Run(ctx, Preview, o); err != nil {
		t.Fatalf("preview: %v\n%s", err, out.String())
	}
	res, err := Run(ctx, Up, o)
	if err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	if !res.Changed() || res.Changes["create"] == 0 {
		t.Errorf("first up changed nothing: %v\n%s", res.Changes, out.String())
	}
	tg, err := target.Load(res.TargetPath)
	if err != nil {
		t.Fatalf("target: %v", err)
	}
	if tg.SSH == nil || tg.SSH.HostKey != hostKey || tg.SSH.Port != 22 {
		t.Errorf("target ssh section %+v", tg.SSH)
	}
	if k, err := tg.SSH.ReadKey(); err != nil || string(k) != key {
		t.Errorf("key file: %v (%q)", err, k)
	}
	if tg.PKIDir != pki {
		t.Errorf("pki_dir %s, want %s", tg.PKIDir, pki)
	}

	// The second up writes its target elsewhere (--target): destroy must
	// remove that one too.
	defaultTarget := res.TargetPath
	custom := o
	custom.TargetPath = filepath.Join(t.TempDir(), "prod.json")
	res, err = Run(ctx, Up, custom)
	if err != nil {
		t.Fatalf("second up: %v\n%s", err, out.String())
	}
	if res.Changed() {
		t.Errorf("second up changed %v\n%s", res.Changes, out.String())
	}
	if res.TargetPath != custom.TargetPath {
		t.Errorf("second up wrote %s, want %s", res.TargetPath, custom.TargetPath)
	}
	res, err = Run(ctx, Outputs, o)
	if err != nil || res.Outputs["host"] != "192.0.2.1" {
		t.Errorf("outputs: %v %v", err, res.Outputs)
	}
	if _, err := Run(ctx, Destroy, o); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out.String())
	}
	for _, tp := range []string{defaultTarget, custom.TargetPath} {
		ca, key := companions(tp)
		for _, p := range []string{tp, ca, key} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s still there after destroy", p)
			}
		}
	}
	res, err = Run(ctx, Outputs, o)
	if err != nil || len(res.Outputs) != 0 {
		t.Errorf("outputs after destroy: %v %v", err, res.Outputs)
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("HOME"), ".pulumi", "plugins")); err == nil {
		t.Logf("note: ~/.pulumi/plugins exists (not written by this test: PULUMI_HOME is %s)", HomeDir(dir))
	}
	t.Logf("progress:\n%s", out.String())
	if os.Getenv("DEPLOY_KEEP") != "" {
		exec.Command("cp", "-r", StackDir(dir, "t"), os.Getenv("DEPLOY_KEEP")).Run()
	}
}

// The real program's configuration check, as deploy runs it before the
// engine: every problem, one per line, without the SDK's framing.
func TestValidateConfigReportsEveryProblem(t *testing.T) {
	err := ValidateConfig(map[string]string{"mqttstack:provider": "ssh"}, nil, t.TempDir(), "dev")
	if err == nil {
		t.Fatal("an incomplete configuration was accepted")
	}
	msg := err.Error()
	for _, w := range []string{"mqttstack:serverName: required", "mqttstack:adminCidr: required", "mqttstack:ssh.host: required",
		"mqttstack:ssh.hostKey: required", "mqttstack:ssh.privateKey: required", "mqttstack:pkiDir: required"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "error occurred") || strings.Contains(msg, "\t* ") {
		t.Errorf("SDK framing left in:\n%s", msg)
	}
}

// A new stack whose configuration is invalid is refused before it is
// created: bad input naming every problem, and no stack in the backend.
func TestInvalidConfigOfANewStackCreatesNothing(t *testing.T) {
	bin := repoBin(t)
	if !isExecutable(filepath.Join(bin, "pulumi")) {
		t.Skip("bin/pulumi not built (`make pulumi`)")
	}
	dir := project(t, "")
	os.WriteFile(filepath.Join(dir, "Pulumi.bad.yaml"), []byte("config:\n  mqttstack:provider: ssh\n  ssh.host: \"not a host\"\n  mqttstack:statusAllow: [\"10.0.0.0/33\"]\n"), 0o644)
	o := Options{Dir: dir, Stack: "bad", BinDir: bin, Plugins: []Plugin{}, Env: []string{"PULUMI_CONFIG_PASSPHRASE=x"}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := Run(ctx, Up, o)
	if !errors.Is(err, ErrBadInput) {
		t.Fatalf("want bad input, got %v", err)
	}
	for _, w := range []string{"Pulumi.bad.yaml", `mqttstack:ssh.host: "not a host"`, `[0] "10.0.0.0/33" is not a CIDR`, "mqttstack:ssh.privateKey: required"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	filepath.WalkDir(StateDir(dir), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(filepath.Base(p), "bad") {
			t.Errorf("the stack was created: %s", p)
		}
		return nil
	})
}
