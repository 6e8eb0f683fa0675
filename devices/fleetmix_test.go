package devices_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/devices"
	"github.com/mqttstack/mqttstack/internal/stacktest"
	"github.com/mqttstack/mqttstack/loadtest"
	"github.com/mqttstack/mqttstack/loadtest/result"
	"github.com/mqttstack/mqttstack/scenarios"
)

// TestFleetMixSmoke runs the built-in fleet-mix smoke-sized (40 devices,
// a short steady stage) on the local stack: identities are issued with the
// key each profile's board uses (RSA for the Pico Ws), every board
// connects as its profile and the scenario's own thresholds pass.
func TestFleetMixSmoke(t *testing.T) {
	s := stacktest.Start(t)
	sc, err := scenarios.Builtin("fleet-mix")
	if err != nil {
		t.Fatal(err)
	}
	sc.Fleet.Count = 40
	sc.Fleet.Prefix = "mix-"
	sc.Connect.Rate = 100
	for i := range sc.Stages {
		if sc.Stages[i].Duration > 0 {
			sc.Stages[i].Duration = 4 * time.Second
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := loadtest.Compile(ctx, sc, s.Target, loadtest.CompileOptions{Issue: true})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for i, prof := range p.Profiles {
		counts[prof.Name]++
		c, err := certs.LoadClient(s.PKIDir, p.DeviceIDs[i])
		if err != nil {
			t.Fatal(err)
		}
		if k := devices.KeyTypeOf(&c); k != prof.ClientKey && !prof.Native {
			t.Errorf("%s (%s) was issued a %s key, its board uses %s", p.DeviceIDs[i], prof.Name, k, prof.ClientKey)
		}
	}
	want := map[string]int{"esp8266-bearssl": 16, "esp32-arduino-3": 12, "pico-w-mbedtls-3.6": 4, "arduino-bearssl-eccx08": 4, "go": 4}
	for name, n := range want {
		if counts[name] != n {
			t.Errorf("%s: %d devices, want %d (%v)", name, counts[name], n, counts)
		}
	}
	var log bytes.Buffer
	r, err := loadtest.Run(ctx, p, loadtest.Options{Log: &log, Quiet: true})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	outcomes := result.Evaluate(r, sc.Thresholds)
	var console bytes.Buffer
	if err := result.WriteConsole(&console, r, outcomes); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", console.String())
	if !result.Passed(outcomes) {
		t.Errorf("fleet-mix thresholds failed on a healthy local broker")
	}
	if r.Total.Counts.Connects != 40 {
		t.Errorf("connects = %d, want 40", r.Total.Counts.Connects)
	}
	// The per-profile breakdown: every profile's devices connected, with
	// their own TLS latencies, and the console shows it.
	got := map[string]int64{}
	for _, part := range r.Profiles {
		got[part.Name] = part.Counts.Connects
		if s, ok := part.Summary(result.TLS); !ok || s.Count != part.Counts.Connects {
			t.Errorf("%s: TLS latency %+v for %d connects", part.Name, s, part.Counts.Connects)
		}
	}
	for name, n := range want {
		if got[name] != int64(n) {
			t.Errorf("breakdown: %s connected %d, want %d (%v)", name, got[name], n, got)
		}
	}
	if !strings.Contains(console.String(), "Device profiles") {
		t.Errorf("console has no device profiles section")
	}
}

// TestFleetMixNeedsRSA: a profile whose board uses RSA keys, on devices
// that only have ECDSA identities (nobody issued for the profile), is one
// clear error naming the fix, before any device connects.
func TestFleetMixNeedsRSA(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDevices(4))
	sc, err := scenarios.Parse("mix.yaml", []byte("fleet: {count: 4, profiles: {pico-w-mbedtls-3.6: 50%, esp8266-bearssl: 50%}}\nstages:\n  - {kind: ramp}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := loadtest.Compile(ctx, sc, s.Target, loadtest.CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = loadtest.Run(ctx, p, loadtest.Options{Quiet: true})
	if err == nil {
		t.Fatal("a Pico W profile ran on ECDSA identities")
	}
	for _, f := range []string{"pico-w-mbedtls-3.6 needs rsa2048 client keys", "2 of its devices", "ecdsa keys", "fix:"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error does not say %q: %v", f, err)
		}
	}
}
