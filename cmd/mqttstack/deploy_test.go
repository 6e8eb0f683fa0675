package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttstack/mqttstack/infra/deploy"
)

// Bad input to deploy is exit 2 with one line naming the fix, and nothing
// is written into the project directory. (The engine itself runs in
// infra/deploy's tests and in make deploy-rehearsal.)
func TestDeployBadInput(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), []byte("name: mqttstack\nruntime: go\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "Pulumi.dev.yaml"), []byte("config: {}\n"), 0o644)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no passphrase", []string{"deploy", "up", "--dir", dir, "--pulumi", "/nonexistent/bin/pulumi"},
			[]string{"PULUMI_CONFIG_PASSPHRASE: not set", "pulumi CLI: not found in /nonexistent/bin/pulumi", "make pulumi"}},
		{"no stack file", []string{"deploy", "preview", "--dir", dir, "--stack", "prod"},
			[]string{"Pulumi.prod.yaml", "cp Pulumi.example.yaml Pulumi.prod.yaml"}},
		{"config key without namespace", []string{"deploy", "config", "set", "--dir", dir, "provider", "ssh"},
			[]string{"PULUMI_CONFIG_PASSPHRASE"}},
		{"extra argument", []string{"deploy", "up", "now"}, []string{"deploy up"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(tc.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d\nstderr: %s", code, exitUsage, errOut)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if !strings.HasPrefix(errOut, "mqttstack: deploy ") {
				t.Errorf("stderr does not name the command: %q", errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, ".mqttstack")); !os.IsNotExist(err) {
				t.Errorf(".mqttstack was written (%v)", err)
			}
		})
	}
}

func TestPrintOutputsMasksSecretsAndShortensPEM(t *testing.T) {
	res := &deploy.Result{Stack: "prod", Outputs: map[string]any{
		"host": "198.51.100.20", "mqttsPort": float64(8883), "caCertPem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		"token": "s3cr3t",
	}, SecretOutputs: []string{"token"}}
	for _, asJSON := range []bool{false, true} {
		var b strings.Builder
		if err := printOutputs(&b, res, asJSON); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if strings.Contains(out, "s3cr3t") || !strings.Contains(out, "[secret]") || !strings.Contains(out, "198.51.100.20") {
			t.Errorf("json=%v: secret shown or host missing:\n%s", asJSON, out)
		}
		if !asJSON && (strings.Contains(out, "AAAA") || !strings.Contains(out, "(PEM, ")) {
			t.Errorf("PEM not shortened:\n%s", out)
		}
	}
	var b strings.Builder
	printOutputs(&b, &deploy.Result{Stack: "gone"}, false)
	if !strings.Contains(b.String(), "stack gone has no outputs") {
		t.Errorf("empty stack: %q", b.String())
	}
}
