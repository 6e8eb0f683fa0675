package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttstack/mqttstack/internal/stacktest"
	"github.com/mqttstack/mqttstack/loadtest/result"
)

// TestMain removes the PKI that stacktest shares across this binary's tests.
func TestMain(m *testing.M) { os.Exit(stacktest.Main(m)) }

// runMQ runs the CLI in-process (report_test.go's runCLI, with the exit code first).
func runMQ(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	stdout, stderr, code = runCLI(args...)
	return code, stdout, stderr
}

// TestRunCommand drives `mqttstack run` against a real local stack: a
// passing run writes result.json and report.html and exits 0; a threshold
// that cannot hold exits 1 and still writes the result; bad input exits 2;
// a missing target file is bad input too: 2.
func TestRunCommand(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDevices(100))
	dir := t.TempDir()

	out := filepath.Join(dir, "smoke")
	code, stdout, stderr := runMQ(t, "run", "smoke", "--devices", "100", "--target", s.TargetPath, "--out", out, "--quiet")
	if code != exitOK {
		t.Fatalf("smoke exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	r, err := result.ReadJSON(filepath.Join(out, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Total.Counts.Connects != 100 || r.Delivery.Lost != 0 || len(r.Thresholds) == 0 {
		t.Errorf("result: connects %d lost %d thresholds %d", r.Total.Counts.Connects, r.Delivery.Lost, len(r.Thresholds))
	}
	if html, err := os.ReadFile(filepath.Join(out, "report.html")); err != nil || !bytes.Contains(html, []byte("<html")) {
		t.Errorf("report.html: %v", err)
	}
	for _, want := range []string{"Thresholds", "result: " + filepath.Join(out, "result.json")} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}

	impossible := filepath.Join(dir, "impossible.yaml")
	os.WriteFile(impossible, []byte(`name: impossible
fleet: {count: 20, prefix: dev-, qos: 1}
stages:
  - {kind: ramp}
  - {kind: steady, duration: 2s, every: 500ms}
thresholds:
  e2e_p99: "< 0.001ms"
`), 0o644)
	out2 := filepath.Join(dir, "impossible")
	code, stdout, stderr = runMQ(t, "run", impossible, "--target", s.TargetPath, "--out", out2, "--quiet")
	if code != exitFailed {
		t.Errorf("impossible threshold: exit %d, want %d\n%s\n%s", code, exitFailed, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(out2, "result.json")); err != nil {
		t.Errorf("failed run wrote no result: %v", err)
	}
	// A shard of several reports the failed threshold but leaves the
	// verdict to the merged result (a Kubernetes shard must not fail its
	// Job over a slice's percentiles).
	code, stdout, stderr = runMQ(t, "run", impossible, "--target", s.TargetPath, "--out", out2, "--quiet", "--shard", "1/2")
	if code != exitOK || !strings.Contains(stdout, "judged on the merged result") || !strings.Contains(stdout, "✗") {
		t.Errorf("impossible threshold in shard 1/2: exit %d, want %d and the verdict deferred\n%s\n%s", code, exitOK, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(out2, "result-shard-1of2.json")); err != nil {
		t.Errorf("shard run wrote no result: %v", err)
	}

	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"unknown scenario", []string{"run", "no-such-scenario", "--target", s.TargetPath}, exitUsage},
		{"no scenario", []string{"run", "--target", s.TargetPath}, exitUsage},
		{"bad shard", []string{"run", "smoke", "--shard", "3/2", "--target", s.TargetPath}, exitUsage},
		{"bad device count", []string{"run", "smoke", "--devices", "-5", "--target", s.TargetPath}, exitUsage},
		{"missing target", []string{"run", "smoke", "--target", filepath.Join(dir, "none.json")}, exitUsage},
		{"zero devices", []string{"run", "smoke", "--devices", "0", "--target", s.TargetPath}, exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, stderr := runMQ(t, tc.args...); code != tc.want {
				t.Errorf("exit %d, want %d: %s", code, tc.want, stderr)
			}
		})
	}
}
