package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/loadtest/result"
)

// writeShard records a small shard of a run and writes its result file.
func writeShard(t *testing.T, dir string, index, count, from, to int) string {
	t.Helper()
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	r := result.NewRecorder(result.Meta{
		Scenario: "smoke", ScenarioHash: "sha256:abc", Start: start,
		Shard:   result.Shard{Index: index, Count: count},
		Devices: result.Devices{Prefix: "dev-", From: from, To: to, Count: to - from},
	})
	r.Phase("ramp", start)
	for i := from; i < to; i++ {
		at := start.Add(time.Duration(i) * 10 * time.Millisecond)
		r.Add(result.ConnectAttempts, at, 1)
		r.Add(result.Connects, at, 1)
		r.Add(result.Active, at, 1)
		r.Observe(result.CONNACK, at, time.Duration(1+i)*time.Millisecond)
	}
	res := r.Finish(start.Add(2*time.Second), result.Final{})
	path := filepath.Join(dir, "shard"+string(rune('0'+index))+".json")
	if err := result.WriteJSON(path, res); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReportCommands(t *testing.T) {
	dir := t.TempDir()
	a, b := writeShard(t, dir, 0, 2, 0, 50), writeShard(t, dir, 1, 2, 50, 100)
	merged, html := filepath.Join(dir, "merged.json"), filepath.Join(dir, "report.html")
	scenario := filepath.Join(dir, "smoke.yaml")

	out, errOut, code := runCLI("report", "show", a)
	if code != exitOK || !strings.Contains(out, "Phase ramp") || !strings.Contains(out, "connects 50/50") {
		t.Fatalf("report show: code %d\n%s%s", code, out, errOut)
	}

	// Flags after the files, as people type them.
	out, errOut, code = runCLI("report", "merge", a, b, "-o", merged)
	if code != exitOK || !strings.Contains(out, "merged 2 results") {
		t.Fatalf("report merge: code %d\n%s%s", code, out, errOut)
	}
	m, err := result.ReadJSON(merged)
	if err != nil {
		t.Fatal(err)
	}
	if m.Total.Counts.Connects != 100 || len(m.Meta.Merged) != 2 {
		t.Errorf("merged: connects %d, %d sources", m.Total.Counts.Connects, len(m.Meta.Merged))
	}

	out, errOut, code = runCLI("report", "html", "-o", html, a, b)
	if code != exitOK {
		t.Fatalf("report html: code %d\n%s%s", code, out, errOut)
	}
	page, err := os.ReadFile(html)
	if err != nil || !bytes.Contains(page, []byte("<svg")) {
		t.Fatalf("report html wrote no plot (%v)", err)
	}

	// Thresholds from a scenario: a failure is exit code 1.
	yaml := "name: smoke\nfleet: {count: 100}\nconnect: {rate: 100/s}\nstages:\n  - {kind: ramp}\nthresholds:\n  connack_p99: \"< 10ms\"\n  connect_success: \">= 99%\"\n"
	if err := os.WriteFile(scenario, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runCLI("report", "show", "-scenario", scenario, merged)
	if code != exitFailed || !strings.Contains(out, "✗ connack_p99") || !strings.Contains(out, "✓ connect_success") || !strings.Contains(errOut, "1 of 2 thresholds failed") {
		t.Errorf("report show -scenario: code %d\n%s%s", code, out, errOut)
	}
}

func TestReportBadInput(t *testing.T) {
	dir := t.TempDir()
	a := writeShard(t, dir, 0, 2, 0, 50)
	overlapping := filepath.Join(dir, "other")
	if err := os.Mkdir(overlapping, 0o755); err != nil {
		t.Fatal(err)
	}
	b := writeShard(t, overlapping, 1, 2, 40, 100)
	garbage := filepath.Join(dir, "garbage.json")
	os.WriteFile(garbage, []byte(`{"schema": "mqttstack.result/v0"}`), 0o644)

	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no subcommand", []string{"report"}, exitUsage, "name a subcommand: html, merge, show"},
		{"unknown subcommand", []string{"report", "frob"}, exitUsage, "unknown subcommand"},
		{"no files", []string{"report", "show"}, exitUsage, "at least one result file"},
		{"merge without -o", []string{"report", "merge", a}, exitUsage, "--out FILE is required"},
		{"missing file", []string{"report", "show", filepath.Join(dir, "nope.json")}, exitUsage, "nope.json"},
		{"old schema", []string{"report", "show", garbage}, exitUsage, "garbage.json"},
		{"overlapping shards", []string{"report", "merge", "-o", filepath.Join(dir, "m.json"), a, b}, exitUsage, "dev-40 … dev-49"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runCLI(tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("code %d, stderr:\n%s\nwant code %d and %q", code, errOut, tt.code, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "m.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused merge wrote its output (%v)", err)
	}
}
