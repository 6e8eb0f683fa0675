package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttstack/mqttstack/internal/stacktest"
	"github.com/mqttstack/mqttstack/target"
)

// TestDevicesCompat: the matrix against the local stack's target; a
// required profile that the hardened broker refuses exits 1, a required
// one that works exits 0, and the JUnit file names the failure.
func TestDevicesCompat(t *testing.T) {
	s := stacktest.Start(t)
	junit := filepath.Join(t.TempDir(), "compat.xml")
	for _, tc := range []struct {
		require string
		code    int
	}{
		{"esp8266-bearssl", exitOK},
		{"sim800", exitFailed},
	} {
		out, errOut, code := runCLI("devices", "compat", "--target", s.TargetPath, "--profiles", "esp8266-bearssl,sim800",
			"--require", tc.require, "--cost-handshakes", "3", "--junit", junit)
		if code != tc.code || !strings.Contains(out, "esp8266-bearssl (required)") && tc.require == "esp8266-bearssl" {
			t.Errorf("--require %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", tc.require, code, tc.code, out, errOut)
		}
		if !strings.Contains(out, "sim800: protocol version") || strings.Contains(out, "CPU/HS") && strings.Contains(out, "n/a") {
			t.Errorf("the matrix misses the refusal or the broker CPU:\n%s", out)
		}
	}
	x, err := os.ReadFile(junit)
	if err != nil || !strings.Contains(string(x), `<failure message="protocol version"`) {
		t.Errorf("junit (%v):\n%s", err, x)
	}
	// The target's device_profiles are required, and run even when
	// --profiles leaves them out.
	tg, err := target.Load(s.TargetPath)
	if err != nil {
		t.Fatal(err)
	}
	tg.DeviceProfiles = "bg96"
	tpath := filepath.Join(t.TempDir(), "target.json")
	if err := tg.Save(tpath); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runCLI("devices", "compat", "--target", tpath, "--profiles", "esp8266-bearssl", "--cost-handshakes", "1"); code != exitFailed || !strings.Contains(out, "bg96 (required)") {
		t.Errorf("target device_profiles [bg96]: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// The scenario's fleet.profiles are required: fleet-mix's boards all work here.
	if out, errOut, code := runCLI("devices", "compat", "--target", s.TargetPath, "--scenario", "fleet-mix", "--cost-handshakes", "1"); code != exitOK || !strings.Contains(out, "pico-w-mbedtls-3.6 (required)") {
		t.Errorf("--scenario fleet-mix: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if _, errOut, code := runCLI("devices", "compat", "--target", s.TargetPath, "--profiles", "esp8266-bearsl"); code != exitUsage || !strings.Contains(errOut, "unknown device profile") {
		t.Errorf("unknown profile: exit %d, stderr %q", code, errOut)
	}
}

// TestRunWithProfilesShowsCompat: a run of a scenario with fleet.profiles
// measures each board against the target first and carries the matrix in
// result.json, the console and report.html.
func TestRunWithProfilesShowsCompat(t *testing.T) {
	s := stacktest.Start(t)
	dir := t.TempDir()
	scen := filepath.Join(dir, "mix.yaml")
	if err := os.WriteFile(scen, []byte("name: mix\nfleet: {count: 6, prefix: mixrun-, profiles: {esp8266-bearssl: 50%, pico-w-mbedtls-3.6: 50%}}\nconnect: {rate: 50/s}\nstages:\n  - {kind: ramp}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI("run", scen, "--target", s.TargetPath, "--out", filepath.Join(dir, "out"), "--quiet")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("console:\n%s", out)
	for _, want := range []string{"Device compatibility before the load", "pico-w-mbedtls-3.6           works", "Device profiles"} {
		if !strings.Contains(out, want) {
			t.Errorf("console misses %q:\n%s", want, out)
		}
	}
	js, err := os.ReadFile(filepath.Join(dir, "out", "result.json"))
	if err != nil || !strings.Contains(string(js), `"compat"`) {
		t.Errorf("result.json has no matrix (%v)", err)
	}
	page, err := os.ReadFile(filepath.Join(dir, "out", "report.html"))
	if err != nil || !strings.Contains(string(page), "<h2>Device compatibility</h2>") {
		t.Errorf("report.html has no matrix section (%v)", err)
	}
}
