package loadtest

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/fleet"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/internal/stacktest"
	"github.com/mqttstack/mqttstack/loadtest/result"
)

// TestObserverOverload gives the broker a tiny per-client queue (20 in
// flight + 10 queued) and one observer for a burst it cannot follow: the
// broker drops messages for the observer, and the run must say "observer
// overload" with the shortfall unverified, never count it as device loss.
func TestObserverOverload(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDevices(50), stacktest.WithStack(func(st *hostconfig.Stack) {
		st.Limits.MaxQueuedMessages = 10
	}))
	sc := parse(t, `
fleet: {count: 50, prefix: dev-, qos: 1}
connect: {rate: 500/s}
stages:
  - {kind: ramp}
  - {kind: burst, count: 200, duration: 10s}
thresholds:
  loss: "== 0"
`)
	p := compile(t, s, sc, Shard{})
	p.Observers = p.Observers[:1] // one observer for 10,000 messages at once
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// QoS 1: the broker's in-flight window plus a queue of 10 is sure to
	// overflow, so the broker drops for the observer.
	r, err := Run(ctx, p, Options{Log: &log, Quiet: true, Host: s.Host(), Drain: 5 * time.Second, ObserverQoS1: true})
	t.Logf("log:\n%s", log.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	d := r.Delivery
	t.Logf("delivery %+v", d)
	if !strings.Contains(log.String(), "per-client queue of 30 (local:") {
		t.Errorf("the run did not read the broker's queue limit (20 + 10) through the host")
	}
	if d.Lost != 0 {
		t.Errorf("lost = %d: an overloaded observer's shortfall counted as device loss", d.Lost)
	}
	if d.Unverified == 0 || len(d.Overloaded) != 1 || !strings.HasPrefix(d.Overloaded[0], p.Observers[0]+" ") {
		t.Errorf("unverified %d, overloaded %q: want the observer named and its shortfall unverified", d.Unverified, d.Overloaded)
	}
	if d.Received+d.Unverified != d.Expected {
		t.Errorf("received %d + unverified %d != expected %d", d.Received, d.Unverified, d.Expected)
	}
	if errorCauses(r)[fleet.CauseObserverOverload] != 1 {
		t.Errorf("error causes %v: want %q once", errorCauses(r), fleet.CauseObserverOverload)
	}
	out := result.Evaluate(r, sc.Thresholds)
	if out[0].Passed || out[0].HasData || !strings.Contains(out[0].Detail, "observer overload") {
		t.Errorf("loss threshold %+v: want no data because of the observer overload", out[0])
	}
	var console bytes.Buffer
	if err := result.WriteConsole(&console, r, out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(console.String(), "OBSERVER OVERLOAD") {
		t.Errorf("console report does not show the overload:\n%s", console.String())
	}
}

// TestBurstNoFalseLoss: 100 devices × 1,000 QoS 1 messages back to back
// (the broker's full rate) with the broker's default queue limits. The plan
// splits the devices over several observers; nothing may be counted lost,
// and whatever an observer could not follow must be reported as overload.
func TestBurstNoFalseLoss(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDevices(100))
	sc := parse(t, `
fleet: {count: 100, prefix: dev-, qos: 1}
connect: {rate: 500/s}
stages:
  - {kind: ramp}
  - {kind: burst, count: 1000, duration: 15s}
thresholds:
  loss: "== 0"
`)
	p := compile(t, s, sc, Shard{})
	if len(p.Observers) < 2 {
		t.Fatalf("observers %v for a burst at the broker's full rate: want several", p.Observers)
	}
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := Run(ctx, p, Options{Log: &log, Quiet: true, Host: s.Host()})
	t.Logf("log:\n%s", log.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	d := r.Delivery
	t.Logf("delivery %+v; published %d", d, r.Total.Counts.Published)
	if d.Expected < 99_000 {
		t.Errorf("expected %d, want about 100,000 acknowledged messages", d.Expected)
	}
	if d.Lost != 0 {
		t.Errorf("lost = %d on a healthy broker: false loss", d.Lost)
	}
	if d.Received+d.Unverified != d.Expected {
		t.Errorf("received %d + unverified %d != expected %d", d.Received, d.Unverified, d.Expected)
	}
	if d.Observers != len(p.Observers) {
		t.Errorf("observers %d in the result, %d planned", d.Observers, len(p.Observers))
	}
	// The broker's cost, read through the host (numbers belong in
	// benchmarks: here only that they were measured).
	b := r.Broker
	t.Logf("broker %+v; tool %+v", b, r.Cost)
	if b == nil || b.PID != s.MosquittoPID() || b.CPUPerPublishMicros <= 0 || b.Publishes != r.Total.Counts.Published || b.RSSPeakBytes <= 0 {
		t.Errorf("broker cost %+v: want mosquitto (pid %d) measured per publish over the burst", b, s.MosquittoPID())
	}
}
