package loadtest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/internal/stacktest"
	"github.com/mqttstack/mqttstack/loadtest/result"
	"github.com/mqttstack/mqttstack/scenarios"
)

// TestV5Builtins runs the built-in smoke scenario and a smoke-sized launch
// (ramp, steady, reconnect storm, commands) with an MQTT 5 fleet: both must
// pass their own thresholds on the local stack, as `run smoke --protocol 5`
// and `run launch --protocol 5` do.
func TestV5Builtins(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDevices(1000))
	tests := []struct {
		name string
		size func(sc *scenarios.Scenario)
	}{
		{"smoke", func(*scenarios.Scenario) {}},
		{"launch", func(sc *scenarios.Scenario) {
			// Smoke-sized: 500 devices, every stage 10s.
			sc.Fleet.Count = 500
			for i := range sc.Stages {
				if sc.Stages[i].Duration > 10*time.Second {
					sc.Stages[i].Duration = 10 * time.Second
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := scenarios.Builtin(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			sc.Fleet.Protocol = scenarios.Protocol5
			tt.size(sc)
			if err := sc.Validate(); err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			r, err := Run(ctx, compile(t, s, sc, Shard{}), Options{Log: &log, Quiet: true, Host: s.Host()})
			t.Logf("log:\n%s", log.String())
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			outcomes := result.Evaluate(r, sc.Thresholds)
			var console bytes.Buffer
			if err := result.WriteConsole(&console, r, outcomes); err != nil {
				t.Fatal(err)
			}
			t.Logf("report:\n%s", console.String())
			if !result.Passed(outcomes) {
				t.Errorf("%s over MQTT 5 failed its thresholds", tt.name)
			}
			if r.Meta.Protocol != "5" || r.Total.Counts.Connects < int64(sc.Fleet.Count) || r.Delivery.Expected == 0 || r.Delivery.Lost != 0 {
				t.Errorf("protocol %q, connects %d, delivery %+v", r.Meta.Protocol, r.Total.Counts.Connects, r.Delivery)
			}
		})
	}
}
