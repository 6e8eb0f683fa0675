package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
