package loadtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/fleet"
	"github.com/mqttstack/mqttstack/internal/stacktest"
	"github.com/mqttstack/mqttstack/scenarios"
)

func TestParseShard(t *testing.T) {
	for in, want := range map[string]Shard{"1/1": {Index: 0, Count: 1}, "1/2": {Index: 0, Count: 2}, "2/2": {Index: 1, Count: 2}, " 3 / 8 ": {Index: 2, Count: 8}} {
		got, err := ParseShard(in)
		if err != nil || got != want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "1", "0/2", "3/2", "1/0", "a/b", "-1/2", "1/2/3"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("ParseShard(%q) accepted", bad)
		}
	}
}

// TestShardRange: for any fleet size and shard count, the shards' slices
// are contiguous, disjoint, cover every device and differ in size by at
// most one.
func TestShardRange(t *testing.T) {
	for _, count := range []int{1, 2, 3, 7, 100, 1001, 5000} {
		for n := 1; n <= min(count, 9); n++ {
			next, smallest, largest := 0, count, 0
			for i := range n {
				from, to := shardRange(count, Shard{Index: i, Count: n})
				if from != next || to < from {
					t.Fatalf("count %d shard %d/%d: [%d,%d) after %d", count, i, n, from, to, next)
				}
				smallest, largest = min(smallest, to-from), max(largest, to-from)
				next = to
			}
			if next != count || largest-smallest > 1 {
				t.Errorf("count %d in %d shards: covered %d, sizes %d..%d", count, n, next, smallest, largest)
			}
		}
	}
	if shardName("observer", Shard{Index: 0, Count: 1}) != "observer" || shardName("observer", Shard{Index: 1, Count: 3}) != "observer-2" {
		t.Error("shard identity names do not follow CONTRACTS.md")
	}
}

func TestDeadBrokerRule(t *testing.T) {
	now := time.Unix(1000, 0)
	tests := []struct {
		name string
		h    health
		dead bool
	}{
		{"healthy steady: no failures", health{active: 100, peak: 100, lastOK: now.Add(-time.Minute), everConnected: true}, false},
		{"most lost, failing, long", health{active: 10, peak: 100, lastOK: now.Add(-6 * time.Second), failsSinceOK: 50, everConnected: true, topCause: "tcp: connection refused"}, true},
		{"most lost, failing, but a success just now", health{active: 10, peak: 100, lastOK: now.Add(-time.Second), failsSinceOK: 50, everConnected: true}, false},
		{"few lost, failing", health{active: 90, peak: 100, lastOK: now.Add(-time.Minute), failsSinceOK: 5, everConnected: true}, false},
		{"never connected, failing", health{lastOK: now.Add(-6 * time.Second), failsSinceOK: 30}, true},
		{"never connected, nothing tried yet", health{lastOK: now.Add(-6 * time.Second)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, dead := tt.h.dead(now, 5*time.Second)
			if dead != tt.dead {
				t.Errorf("dead = %v (%s), want %v", dead, reason, tt.dead)
			}
			if dead && tt.h.topCause != "" && !strings.Contains(reason, tt.h.topCause) {
				t.Errorf("reason %q does not name the cause", reason)
			}
		})
	}
}

// TestCompileRefuses: every way a plan cannot run is an error before a
// connection is made.
func TestCompileRefuses(t *testing.T) {
	// A private PKI: the binary's shared one holds whatever other tests issued.
	s := stacktest.Start(t, stacktest.WithDevices(5), stacktest.WithPrivatePKI())
	sc := parse(t, `
fleet: {count: 10, prefix: dev-}
stages:
  - {kind: ramp}
`)
	ctx := context.Background()
	remote := *s.Target
	remote.Host = "192.0.2.10"
	wss := parse(t, `
fleet: {count: 5, prefix: dev-, transport: wss}
stages:
  - {kind: ramp}
`)
	tests := []struct {
		name string
		sc   *scenarios.Scenario
		o    CompileOptions
		want string
	}{
		{"identities missing", sc, CompileOptions{}, "5 identities have no certificate"},
		{"shard out of range", sc, CompileOptions{Shard: Shard{Index: 2, Count: 2}}, "shard 3/2"},
		{"more shards than devices", sc, CompileOptions{Shard: Shard{Index: 0, Count: 11}}, "every shard needs at least one device"},
		{"wss without device wss", wss, CompileOptions{}, "wss_devices is false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(ctx, tt.sc, s.Target, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if _, err := Compile(ctx, sc, &remote, CompileOptions{}); err == nil || !strings.Contains(err.Error(), "not loopback") {
		t.Errorf("remote target: %v", err)
	}
	// Issue fills the gap, idempotently.
	p, err := Compile(ctx, sc, s.Target, CompileOptions{Issue: true})
	if err != nil || len(p.Issued) != 5 || len(p.DeviceIDs) != 10 {
		t.Fatalf("compile with issue: %v (issued %d)", err, len(p.Issued))
	}
	if p, err = Compile(ctx, sc, s.Target, CompileOptions{Issue: true}); err != nil || len(p.Issued) != 0 {
		t.Errorf("second compile issued %d: %v", len(p.Issued), err)
	}
	// --allow-load: a deployed stack is a legitimate target; the plan binds
	// to it (nothing is dialled here).
	p, err = Compile(ctx, sc, &remote, CompileOptions{AllowRemote: true})
	if err != nil || p.Target.Host != "192.0.2.10" || len(p.DeviceIDs) != 10 {
		t.Errorf("remote target with AllowRemote: %v", err)
	}
}

// TestPickStorm: a storm picks k distinct devices, the same ones every run,
// but not in index order (which would drop each device just as the publish
// schedule reaches it).
func TestPickStorm(t *testing.T) {
	devs := make([]*fleet.Device, 1000)
	f, err := fleet.New(fleet.Config{Addr: "127.0.0.1:1", ServerName: "x", RootCAs: x509.NewCertPool()}, identities(1000), fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	copy(devs, f.Devices())
	a, b := pickStorm(devs, 500), pickStorm(devs, 500)
	seen := map[string]bool{}
	ascending := true
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("two picks differ")
		}
		if seen[a[i].ID] {
			t.Fatalf("%s picked twice", a[i].ID)
		}
		seen[a[i].ID] = true
		if i > 0 && a[i].ID < a[i-1].ID {
			ascending = false
		}
	}
	if len(a) != 500 || ascending {
		t.Errorf("picked %d, in index order: %v", len(a), ascending)
	}
	if got := pickStorm(devs, 5000); len(got) != 1000 {
		t.Errorf("k beyond the fleet: %d", len(got))
	}
}

func identities(n int) []fleet.Identity {
	out := make([]fleet.Identity, n)
	for i := range out {
		out[i] = fleet.Identity{ID: fmt.Sprintf("dev-%05d", i+1), Cert: &tls.Certificate{}}
	}
	return out
}

// TestObserverNames: observer identities follow the expected message rate
// and are disjoint between shards, the first one as CONTRACTS.md says.
func TestObserverNames(t *testing.T) {
	tests := []struct {
		name  string
		shard Shard
		rate  float64
		want  string
	}{
		{"slow fleet", Shard{Count: 1}, 500, "observer"},
		{"two observers", Shard{Count: 1}, ObserverRate + 1, "observer observer-1"},
		{"pool exhausted", Shard{Count: 1}, 1e9, "observer observer-1 observer-2 observer-3 observer-4 observer-5 observer-6"},
		{"shard 1/2", Shard{Index: 0, Count: 2}, BrokerRate, "observer-1 observer-3 observer-5"},
		{"shard 2/2", Shard{Index: 1, Count: 2}, BrokerRate, "observer-2 observer-4 observer-6"},
		{"shard 3/3 slow", Shard{Index: 2, Count: 3}, 10, "observer-3"},
		{"shard 8/8", Shard{Index: 7, Count: 8}, BrokerRate, "observer-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(observerNames("observer", tt.shard, observersFor(tt.rate)), " ")
			if got != tt.want {
				t.Errorf("observerNames = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestPeakRate: the busiest stage's telemetry rate, capped at BrokerRate.
func TestPeakRate(t *testing.T) {
	tests := []struct {
		name, stages string
		devices      int
		want         float64
	}{
		{"steady", "{kind: steady, duration: 10s, every: 2s}", 1000, 500},
		{"burst within", "{kind: burst, count: 10, within: 5s, duration: 10s}", 2000, 4000},
		{"burst at once", "{kind: burst, count: 1000, duration: 10s}", 100, BrokerRate},
		{"capped", "{kind: steady, duration: 10s, every: 100ms}", 19000, BrokerRate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := parse(t, fmt.Sprintf("fleet: {count: %d, prefix: dev-}\nstages:\n  - {kind: ramp}\n  - %s\n", tt.devices, tt.stages))
			if got := peakRate(sc, tt.devices); got != tt.want {
				t.Errorf("peakRate = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCleanupStack: releases run newest first, once; unwindTo stops at the
// mark and a later unwind runs the rest.
func TestCleanupStack(t *testing.T) {
	var got []string
	var c cleanupStack
	for _, name := range []string{"collector", "observers", "fleet", "bars"} {
		c.push(func() { got = append(got, name) })
	}
	c.unwindTo(1)
	if want := "bars fleet observers"; strings.Join(got, " ") != want {
		t.Errorf("unwindTo(1) ran %q, want %q", strings.Join(got, " "), want)
	}
	c.unwind()
	c.unwind()
	if want := "bars fleet observers collector"; strings.Join(got, " ") != want {
		t.Errorf("ran %q, want %q (each once)", strings.Join(got, " "), want)
	}
}
