package result

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mqttstack/mqttstack/scenarios"
)

func syntheticThresholds() []scenarios.Threshold {
	ts := []scenarios.Threshold{
		th("connect_success", ">=", 99, "%"),
		th("connack_p99", "<", 500, "ms"),
		th("e2e_p99", "<", 25, "ms"),
		th("loss", "==", 0, ""),
		th("publish_rate", ">=", 50, "/s"),
	}
	for i := range ts {
		ts[i].Line = 20 + i
	}
	return ts
}

func TestWriteConsoleGolden(t *testing.T) {
	tests := []struct {
		name string
		res  func() *Result
	}{
		{"single", func() *Result { return synthetic(t, 0, 1, 0, 400) }},
		{"merged-missing-shard", func() *Result {
			a, b := synthetic(t, 0, 3, 0, 130), synthetic(t, 2, 3, 260, 400)
			b.Meta.Interrupted, b.Meta.InterruptReason = true, "interrupted (Ctrl-C)"
			b.Cost.DroppedEvents = 1234
			m, err := Merge(a, b)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}},
		{"empty", func() *Result {
			return NewRecorder(Meta{Scenario: "idle", Start: t0, GoVersion: "go1.26"}).Finish(at(3), Final{})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.res()
			var buf bytes.Buffer
			if err := WriteConsole(&buf, res, Evaluate(res, syntheticThresholds())); err != nil {
				t.Fatal(err)
			}
			golden(t, "console-"+tt.name+".txt", buf.Bytes())
		})
	}
}

func TestWriteConsoleReturnsWriteErrors(t *testing.T) {
	if err := WriteConsole(errWriter{}, synthetic(t, 0, 1, 0, 10), nil); err == nil {
		t.Error("WriteConsole to a failing writer returned nil")
	}
}

func TestWriteConsoleShowsWhatAPersonNeeds(t *testing.T) {
	res := synthetic(t, 0, 1, 0, 400)
	var buf bytes.Buffer
	if err := WriteConsole(&buf, res, Evaluate(res, syntheticThresholds())); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"Phase ramp", "Phase steady", "Phase reconnect-storm", "All phases",
		"p99.9", "CONNACK", "end-to-end",
		"connect rate (ramp)", "19.8/s",
		"lost 1", "tls: remote error: bad certificate",
		"✓ connect_success >= 99%", "✗ loss == 0", "measured 1",
		"no per-device figure: 396 devices are too few",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console output lacks %q", want)
		}
	}
}
