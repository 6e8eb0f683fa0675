package loadtest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/internal/stacktest"
	"github.com/mqttstack/mqttstack/loadtest/result"
	"github.com/mqttstack/mqttstack/scenarios"
)

func TestMain(m *testing.M) { os.Exit(stacktest.Main(m)) }

// parse builds a scenario from YAML for a test.
func parse(t testing.TB, yaml string) *scenarios.Scenario {
	t.Helper()
	sc, err := scenarios.Parse(t.Name()+".yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("scenario: %v", err)
	}
	return sc
}

func compile(t testing.TB, s *stacktest.Stack, sc *scenarios.Scenario, shard Shard) *Plan {
	t.Helper()
	p, err := Compile(context.Background(), sc, s.Target, CompileOptions{Shard: shard, Issue: true})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	if p.PasswordsChanged {
		s.RefreshPasswords()
	}
	return p
}

func errorCauses(r *result.Result) map[string]int64 {
	m := map[string]int64{}
	for _, g := range r.Errors {
		m[g.Cause] = g.Count
	}
	return m
}

// TestSmoke runs the built-in smoke scenario (1,000 mTLS devices, QoS 1)
// against the real local stack: it must pass its own thresholds, and the
// observer must have received exactly what the devices report as sent.
func TestSmoke(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDevices(1000))
	sc, err := scenarios.Builtin("smoke")
	if err != nil {
		t.Fatal(err)
	}
	p := compile(t, s, sc, Shard{})
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := Run(ctx, p, Options{Log: &log, Quiet: true})
	t.Logf("log:\n%s", log.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	var console bytes.Buffer
	outcomes := result.Evaluate(r, sc.Thresholds)
	if err := result.WriteConsole(&console, r, outcomes); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", console.String())
	if !result.Passed(outcomes) {
		t.Errorf("smoke thresholds failed on a healthy local broker")
	}
	if r.Total.Counts.Connects != 1000 {
		t.Errorf("connects = %d, want 1000", r.Total.Counts.Connects)
	}
	d := r.Delivery
	if d.Expected == 0 || d.Received != d.Expected || d.Lost != 0 || d.Duplicates != 0 {
		t.Errorf("delivery %+v: the observer must receive exactly what the devices sent", d)
	}
	// Every device publishes every 2s for 20s: about 10 each.
	if d.Expected < 9*1000 {
		t.Errorf("expected %d messages, want ≥ 9,000 (1,000 devices × every 2s × 20s)", d.Expected)
	}
	if r.Total.Counts.Published != d.Expected {
		t.Errorf("published counter %d != devices' own count %d", r.Total.Counts.Published, d.Expected)
	}
	if r.Meta.Interrupted {
		t.Errorf("run marked interrupted: %s", r.Meta.InterruptReason)
	}
	if r.Broker == nil || !strings.Contains(r.Broker.Note, "no host access") {
		t.Errorf("broker %+v: a run without a host must say so", r.Broker)
	}
}

// TestImpossibleThreshold: a threshold no broker can meet fails the verdict.
func TestImpossibleThreshold(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDevices(50))
	sc := parse(t, `
fleet: {count: 50, prefix: dev-, qos: 1}
connect: {rate: 200/s}
stages:
  - {kind: ramp}
  - {kind: steady, duration: 3s, every: 500ms}
thresholds:
  e2e_p99: "< 0.001ms"
  loss: "== 0"
`)
	r, err := Run(context.Background(), compile(t, s, sc, Shard{}), Options{Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	out := result.Evaluate(r, sc.Thresholds)
	if result.Passed(out) {
		t.Fatalf("e2e_p99 < 0.001ms passed: %+v", out)
	}
	if !out[0].HasData || out[0].Passed || !out[1].Passed {
		t.Errorf("outcomes %+v: want e2e_p99 measured and failed, loss == 0 passed", out)
	}
}

// TestBrokerKilled kills Mosquitto in the middle of a steady stage: the run
// must end within seconds (not at the stage's 60s end), marked interrupted,
// with the failures grouped by a handful of causes.
func TestBrokerKilled(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDevices(200))
	sc := parse(t, `
fleet: {count: 200, prefix: dev-, qos: 1}
connect: {rate: 400/s, backoff: {min: 100ms, max: 1s}}
stages:
  - {kind: ramp}
  - {kind: steady, duration: 60s, every: 500ms}
thresholds:
  loss: "== 0"
`)
	p := compile(t, s, sc, Shard{})
	go func() {
		time.Sleep(4 * time.Second)
		s.Kill()
	}()
	start := time.Now()
	r, err := Run(context.Background(), p, Options{Quiet: true, DeadAfter: 3 * time.Second})
	took := time.Since(start)
	if !errors.Is(err, ErrBrokerDown) {
		t.Fatalf("run after kill: err = %v, want ErrBrokerDown", err)
	}
	if r == nil {
		t.Fatal("no partial result")
	}
	if took > 20*time.Second {
		t.Errorf("run took %v after the broker died at 4s; want seconds", took)
	}
	if !r.Meta.Interrupted || !strings.Contains(r.Meta.InterruptReason, "broker down") {
		t.Errorf("meta interrupted=%v reason=%q", r.Meta.Interrupted, r.Meta.InterruptReason)
	}
	causes := errorCauses(r)
	t.Logf("took %v; reason %s; causes %v", took, r.Meta.InterruptReason, causes)
	if len(causes) == 0 || len(causes) > 12 {
		t.Errorf("%d error causes, want a handful: %v", len(causes), causes)
	}
	if causes["tcp: connection refused"] == 0 {
		t.Errorf("no 'tcp: connection refused' among %v", causes)
	}
	if r.Total.Counts.Published == 0 {
		t.Errorf("partial result lost the steady phase's publishes")
	}
}

// TestInterrupt: cancelling the caller's context (Ctrl-C) ends the run
// promptly with a partial result.
func TestInterrupt(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDevices(100))
	sc := parse(t, `
fleet: {count: 100, prefix: dev-, qos: 1}
stages:
  - {kind: ramp}
  - {kind: steady, duration: 60s, every: 1s}
`)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(3*time.Second, cancel)
	start := time.Now()
	r, err := Run(ctx, compile(t, s, sc, Shard{}), Options{Quiet: true})
	took := time.Since(start)
	if !errors.Is(err, ErrInterrupted) || r == nil || !r.Meta.Interrupted {
		t.Fatalf("err %v, result %v: want ErrInterrupted with a partial result", err, r != nil)
	}
	if took > 10*time.Second {
		t.Errorf("interrupted run took %v", took)
	}
	if r.Total.Counts.Connects != 100 {
		t.Errorf("connects %d, want 100 before the interrupt", r.Total.Counts.Connects)
	}
}

// TestShards runs two shards of one scenario at once against one broker:
// their devices are disjoint, each observer accounts only for its own
// devices, both lose nothing, and the results merge.
func TestShards(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDevices(300))
	sc := parse(t, `
fleet: {count: 300, prefix: dev-, qos: 1}
connect: {rate: 300/s}
stages:
  - {kind: ramp}
  - {kind: steady, duration: 4s, every: 1s}
commands: {rate: 20/s}
`)
	var plans [2]*Plan
	for i := range plans {
		plans[i] = compile(t, s, sc, Shard{Index: i, Count: 2})
	}
	seen := map[string]int{}
	for i, p := range plans {
		for _, id := range p.DeviceIDs {
			if j, dup := seen[id]; dup {
				t.Fatalf("device %s in shard %d and %d", id, j, i)
			}
			seen[id] = i
		}
	}
	if len(seen) != 300 || plans[0].Observer == plans[1].Observer || plans[0].Backend == plans[1].Backend {
		t.Fatalf("shards cover %d devices (want 300); observers %s/%s backends %s/%s",
			len(seen), plans[0].Observer, plans[1].Observer, plans[0].Backend, plans[1].Backend)
	}
	var wg sync.WaitGroup
	var rs [2]*result.Result
	var errs [2]error
	for i := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs[i], errs[i] = Run(context.Background(), plans[i], Options{Quiet: true})
		}()
	}
	wg.Wait()
	for i := range rs {
		if errs[i] != nil {
			t.Fatalf("shard %d: %v", i, errs[i])
		}
		d := rs[i].Delivery
		if d.Lost != 0 || d.Received != d.Expected || d.Expected == 0 {
			t.Errorf("shard %d delivery %+v", i, d)
		}
		if rs[i].Total.Counts.CommandsSent == 0 || rs[i].Total.Counts.CommandsReceived == 0 {
			t.Errorf("shard %d: commands sent %d received %d", i, rs[i].Total.Counts.CommandsSent, rs[i].Total.Counts.CommandsReceived)
		}
	}
	m, err := result.Merge(rs[0], rs[1])
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	if m.Total.Counts.Connects != 300 || m.Delivery.Expected != rs[0].Delivery.Expected+rs[1].Delivery.Expected {
		t.Errorf("merged connects %d delivery %+v", m.Total.Counts.Connects, m.Delivery)
	}
}

// TestStormAndWSS: a reconnect-storm stage drops a share of the fleet (its
// wills reach the observer), every dropped device comes back by its own
// backoff, and nothing published is lost; the same over wss through nginx
// with passwords. No goroutine of the run outlives it.
func TestStormAndWSS(t *testing.T) {
	for _, transport := range []string{"mqtts", "wss"} {
		t.Run(transport, func(t *testing.T) {
			opts := []stacktest.Option{stacktest.WithDevices(60)}
			if transport == "wss" {
				opts = append(opts, stacktest.WithDeviceWSS())
			}
			s := stacktest.Start(t, opts...)
			sc := parse(t, `
fleet: {count: 60, prefix: dev-, qos: 1, transport: `+transport+`}
connect: {rate: 300/s, backoff: {min: 100ms, max: 1s}}
stages:
  - {kind: ramp}
  - {kind: reconnect-storm, share: 50%, within: 1s, duration: 6s, every: 500ms}
  - {kind: steady, duration: 2s, every: 500ms}
thresholds:
  loss: "== 0"
  reconnects: "== 30"
  connect_failures: "== 0"
`)
			before := runtime.NumGoroutine()
			r, err := Run(context.Background(), compile(t, s, sc, Shard{}), Options{Quiet: true})
			if err != nil {
				t.Fatal(err)
			}
			out := result.Evaluate(r, sc.Thresholds)
			if !result.Passed(out) {
				t.Errorf("thresholds: %+v; errors %v", out, errorCauses(r))
			}
			// A publish in flight when its device is dropped fails, as on a
			// board whose network goes; nothing else may.
			for cause, n := range errorCauses(r) {
				if !strings.HasPrefix(cause, "publish: ") || n > 30 {
					t.Errorf("error %q × %d", cause, n)
				}
			}
			storm, ok := r.Phase("reconnect-storm-1")
			if !ok || storm.Counts.Disconnects != 30 || storm.Counts.Reconnects != 30 {
				t.Errorf("storm phase %+v", storm)
			}
			if transport == "wss" {
				if sum, ok := r.Total.Summary(result.TCP); ok && sum.Count > 0 {
					t.Errorf("wss measured %d TCP connects; gorilla dials TCP+TLS+upgrade in one", sum.Count)
				}
			}
			deadline := time.Now().Add(5 * time.Second)
			for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if got := runtime.NumGoroutine(); got > before {
				buf := make([]byte, 1<<16)
				t.Errorf("%d goroutines after the run, %d before:\n%s", got, before, buf[:runtime.Stack(buf, true)])
			}
		})
	}
}

// TestInterruptHungBroker: Ctrl-C while connect attempts hang on a broker
// that accepts TCP but never answers (SIGSTOP) ends the run within seconds,
// not after the 10s connect timeout.
func TestInterruptHungBroker(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDevices(50))
	sc := parse(t, `
fleet: {count: 50, prefix: dev-, qos: 1}
connect: {rate: 20/s, timeout: 30s}
stages:
  - {kind: ramp}
  - {kind: steady, duration: 30s, every: 1s}
`)
	p := compile(t, s, sc, Shard{})
	pid := s.MosquittoPID()
	ctx, cancel := context.WithCancel(context.Background())
	var r *result.Result
	var err error
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		r, err = Run(ctx, p, Options{Quiet: true})
	}()
	time.Sleep(1500 * time.Millisecond) // observer and some devices are in
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	time.Sleep(time.Second)
	cancel()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("run did not end 15s after Ctrl-C with a hung broker")
	}
	syscall.Kill(pid, syscall.SIGCONT)
	took := time.Since(start)
	if !errors.Is(err, ErrInterrupted) || r == nil || !r.Meta.Interrupted {
		t.Fatalf("err %v result %v", err, r != nil)
	}
	if took > 10*time.Second {
		t.Errorf("interrupted run took %v", took)
	}
	t.Logf("took %v; connects %d", took, r.Total.Counts.Connects)
}

// TestObserverWithoutReadAccess: an observer the ACL does not let read
// devices/# gets its SUBSCRIBE granted and then nothing; the run says so
// instead of only reporting every message lost.
func TestObserverWithoutReadAccess(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDevices(20), stacktest.WithMutation(stacktest.DropLines("/acl", "topic read devices/#")))
	sc := parse(t, `
fleet: {count: 20, prefix: dev-, qos: 1}
stages:
  - {kind: ramp}
  - {kind: steady, duration: 1s, every: 500ms}
`)
	var log bytes.Buffer
	r, err := Run(context.Background(), compile(t, s, sc, Shard{}), Options{Quiet: true, Log: &log, Drain: 2 * time.Second, DrainIdle: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if errorCauses(r)["observer: receives nothing (ACL?)"] != 1 || !strings.Contains(log.String(), "read access to devices/#") {
		t.Errorf("causes %v, log:\n%s", errorCauses(r), log.String())
	}
	if r.Delivery.Expected == 0 || r.Delivery.Lost != r.Delivery.Expected {
		t.Errorf("delivery %+v: want everything lost", r.Delivery)
	}
}
