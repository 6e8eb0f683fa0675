package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttstack/mqttstack/scenarios"
)

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	write := func(path, src string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(good, "fleet: {count: 100}\nconnect: {rate: 50/s}\nstages:\n  - {kind: ramp}\n  - {kind: steady, duration: 1m, every: 5s}\n")
	write(bad, "fleet: {count: 100}\nstages:\n  - {kind: ramp}\n  - {kind: steady, duration: 1m, every: 0s}\n  - {kind: burst}\n")

	tests := []struct {
		name      string
		args      []string
		code      int
		stdout    []string // exact lines
		stderrHas []string
		stdoutHas []string
	}{
		{
			name:   "built-ins",
			args:   []string{"validate", "smoke", "launch"},
			code:   exitOK,
			stdout: []string{"ok: smoke (1000 devices, 2 stages, ~22s)", "ok: launch (5000 devices, 4 stages, ~3m43s)"},
		},
		{
			name:   "a file",
			args:   []string{"validate", good},
			code:   exitOK,
			stdout: []string{"ok: good (100 devices, 2 stages, ~1m2s)"},
		},
		{
			name:   "bad and good together: all reported, exit 2",
			args:   []string{"validate", bad, good, "nope"},
			code:   exitUsage,
			stdout: []string{"ok: good (100 devices, 2 stages, ~1m2s)"},
			stderrHas: []string{
				bad + `:4: stages[1].every: must be > 0 (e.g. "5s")` + "\n",
				bad + `:5: stages[2].count: required: messages each device publishes in the burst (e.g. 10)` + "\n",
				`"nope" is neither a built-in scenario`,
				"mqttstack: validate: 2 of 3 invalid: " + bad + ", nope\n",
			},
		},
		{
			name:      "devices override is checked",
			args:      []string{"validate", "--devices", "40000", "smoke"},
			code:      exitUsage,
			stderrHas: []string{"--devices 40000: smoke.yaml: fleet.count: 40000 devices need at least 2 source addresses"},
		},
		{
			name:   "devices override",
			args:   []string{"validate", "--devices", "10", "smoke"},
			code:   exitOK,
			stdout: []string{"ok: smoke (10 devices, 2 stages, ~20s)"},
		},
		{
			name:      "print",
			args:      []string{"validate", "--print", good},
			code:      exitOK,
			stdoutHas: []string{"name: good\n", "  rate: 50/s\n", "  - {kind: steady, name: steady-1, duration: 1m, every: 5s, payload: dht11}\n"},
		},
		{
			name:      "no arguments",
			args:      []string{"validate"},
			code:      exitUsage,
			stderrHas: []string{"validate: name a scenario file or a built-in (" + strings.Join(scenarios.BuiltinNames(), ", ") + ")"},
		},
		{
			name:      "list",
			args:      []string{"validate", "--list"},
			code:      exitOK,
			stdoutHas: []string{"NAME ", "smoke ", "1000 ", "launch ", "soak "},
		},
		{
			name:      "scenarios lists",
			args:      []string{"scenarios"},
			code:      exitOK,
			stdoutHas: []string{"reconnect-storm ", "~30m5s "},
		},
		{
			name:      "scenarios prints one",
			args:      []string{"scenarios", "launch"},
			code:      exitOK,
			stdoutHas: []string{"name: launch\n", "connect:\n"},
		},
		{
			name:      "scenarios unknown",
			args:      []string{"scenarios", "lunch"},
			code:      exitUsage,
			stderrHas: []string{`no built-in scenario "lunch"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, &stdout, &stderr)
			}
			if tt.stdout != nil {
				if got := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(tt.stdout, "\n") {
					t.Errorf("stdout:\n%s\nwant:\n%s", stdout.String(), strings.Join(tt.stdout, "\n"))
				}
			}
			for _, want := range tt.stdoutHas {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, &stdout)
				}
			}
			for _, want := range tt.stderrHas {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, &stderr)
				}
			}
		})
	}
}

// TestValidatePrintRoundTrips checks that what --print shows is a file
// that validates to the same thing.
func TestValidatePrintRoundTrips(t *testing.T) {
	for _, name := range scenarios.BuiltinNames() {
		var printed, stderr bytes.Buffer
		if code := run([]string{"validate", "--print", name}, &printed, &stderr); code != exitOK {
			t.Fatalf("validate --print %s: exit %d: %s", name, code, &stderr)
		}
		file := filepath.Join(t.TempDir(), name+".yaml")
		if err := os.WriteFile(file, printed.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		var again bytes.Buffer
		if code := run([]string{"validate", "--print", file}, &again, &stderr); code != exitOK {
			t.Fatalf("validate --print of the printed %s: exit %d: %s", name, code, &stderr)
		}
		if again.String() != printed.String() {
			t.Errorf("%s: --print is not a fixed point:\n%s\nvs\n%s", name, &printed, &again)
		}
	}
}
