// Package loadtest compiles a scenario into a plan for one target (and one
// shard of the fleet), runs its stages with a fleet of virtual devices, and
// turns the events into a result.Result.
//
// The run is a pipeline, as in vegeta: devices, the observer and the backend
// emit fleet.Events into one sink; one collector goroutine owns the
// result.Recorder and is the only writer of metrics; progress reads
// snapshots through the collector. Stopping follows k6: each stage runs
// under a stage context that ends with the stage (no new work after it),
// all of it under a run context that cuts in-flight work a grace period
// after the stages stop. Ctrl-C (the caller's context) and a dead broker end
// the stages at once; the partial result is still returned, marked
// interrupted.
package loadtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/devices"
	"github.com/mqttstack/mqttstack/fleet"
	"github.com/mqttstack/mqttstack/internal/shard"
	"github.com/mqttstack/mqttstack/loadtest/result"
	"github.com/mqttstack/mqttstack/scenarios"
	"github.com/mqttstack/mqttstack/target"
)

// Shard is shard Index (0-based) of Count: it drives a disjoint,
// deterministic slice of the fleet's devices.
type Shard = result.Shard

// ParseShard reads "i/n" (1-based i, as a person counts: 1/2 and 2/2).
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return Shard{}, fmt.Errorf("shard %q: want i/n with 1 <= i <= n (e.g. 1/2)", s)
	}
	return Shard{Index: i - 1, Count: n}, nil
}

// CompileOptions adjust a plan.
type CompileOptions struct {
	// Shard selects the slice of the fleet; zero value means the whole fleet.
	Shard Shard
	// Issue creates the device identities that are missing in the target's
	// PKI (certs.IssueClients; idempotent). For wss on a local target the
	// broker's password file is refreshed afterwards.
	Issue bool
	// AllowRemote permits a target outside 127.0.0.0/8: a deployed stack
	// that the operator owns (mqttstack run --allow-load). Without it a
	// load run only ever reaches this machine's loopback.
	AllowRemote bool
}

// Plan is a scenario bound to a target and a shard: everything Run needs,
// checked before a single connection is made.
type Plan struct {
	Scenario *scenarios.Scenario
	Target   *target.Target
	Shard    Shard
	// From and To delimit this shard's devices: fleet indices [From, To).
	From, To int
	// DeviceIDs are the ids of this shard's devices, in order.
	DeviceIDs []string
	// Observer and Backend are the identities this shard uses
	// (CONTRACTS.md: the base name, or "<base>-<k+1>" for shard k of n>1).
	Observer, Backend string
	// Observers are the observer identities that split this shard's
	// devices between them (Observers[0] == Observer): as many as the
	// expected message rate needs (see ObserverRate), at most what the
	// identity pool holds for this shard (observerNames).
	Observers []string
	// PeakRate is the telemetry rate (messages/s) the observers must take at
	// the busiest stage, capped at BrokerRate.
	PeakRate float64
	// CommandRate is this shard's share of the scenario's command rate, sent
	// to this shard's devices only: the shards' command streams are disjoint.
	CommandRate float64
	// RootCAs verifies the broker.
	RootCAs *x509.CertPool
	// Issued lists identities Compile created.
	Issued []string
	// PasswordsChanged says that Issued holds wss identities whose
	// passwords the broker does not know yet: the caller installs the
	// broker's password files and reloads it before Run (for the local
	// stack, local.RefreshPasswords). Compile never touches the broker.
	PasswordsChanged bool
	// Profiles are the TLS profiles of DeviceIDs, in order (the scenario's
	// fleet.profiles; nil: every device is the fleet's Go client).
	Profiles []devices.Profile
}

// shardRange returns the fleet indices [from, to) of shard s of count devices.
func shardRange(count int, s Shard) (from, to int) {
	return shard.Range(count, s.Index, s.Count)
}

// shardName is the identity shard s uses for base (CONTRACTS.md).
func shardName(base string, s Shard) string {
	return shard.Identity(base, s.Index, s.Count)
}

// The observer budget. One QoS 1 observer takes messages as fast as it
// acknowledges them, with at most max_inflight_messages unacknowledged; the
// broker queues max_queued_messages more for it and drops the rest. A fleet
// publishing faster than one observer reads needs several, each subscribed
// to its own slice of the devices.
const (
	// ObserverRate is the telemetry rate one observer is planned for
	// (messages/s); docs/BENCHMARKS.md has what one sustains here.
	ObserverRate = 4000
	// BrokerRate caps the planned rate: one Mosquitto core delivers about
	// 20-25k QoS 1 messages/s here (docs/BENCHMARKS.md), so a burst "all
	// at once" never arrives faster than that.
	BrokerRate = 25000
	// observerPool is how many observer identities a run may use: the base
	// name and observer-1 … observer-6 (observer-7 and -8 belong to the
	// security suite, CONTRACTS.md).
	observerPool = 7
)

// peakRate is the telemetry rate (messages/s) of the busiest stage for n
// devices, capped at BrokerRate: steady rates, a burst's count spread over
// its within (all at once: the cap), plus command replies.
func peakRate(sc *scenarios.Scenario, n int) float64 {
	peak := 0.0
	for _, st := range sc.Stages {
		r := 0.0
		if iv := st.Interval(); iv > 0 {
			r = float64(n) / iv.Seconds()
		}
		if st.Kind == scenarios.StageBurst {
			if st.Within > 0 {
				r += float64(n*st.Count) / st.Within.Seconds()
			} else {
				r = BrokerRate
			}
		}
		peak = max(peak, r)
	}
	if sc.Commands != nil {
		peak += sc.Commands.Rate
	}
	return min(peak, BrokerRate)
}

// observersFor is how many observers rate needs.
func observersFor(rate float64) int {
	return max(1, int(math.Ceil(rate/ObserverRate)))
}

// observerNames picks k observer identities for shard s out of the pool
// (base, base-1 … base-6), disjoint between shards: an unsharded run takes
// base, base-1, …; shard i of n>1 takes base-(i+1) (CONTRACTS.md), then
// base-(i+1+n), base-(i+1+2n), … while they stay in the pool. Fewer than k
// when the pool runs out: the backlog watch then reports the overload.
func observerNames(base string, s Shard, k int) []string {
	if s.Count <= 1 {
		out := []string{base}
		for i := 1; len(out) < min(k, observerPool); i++ {
			out = append(out, fmt.Sprintf("%s-%d", base, i))
		}
		return out
	}
	out := []string{shardName(base, s)}
	for j := s.Index + 1 + s.Count; len(out) < k && j < observerPool; j += s.Count {
		out = append(out, fmt.Sprintf("%s-%d", base, j))
	}
	return out
}

// Compile binds sc to t for one shard: it checks the target and the shard,
// derives the shard's device ids, issues missing identities if asked, and
// checks that every identity the run needs is on disk.
func Compile(ctx context.Context, sc *scenarios.Scenario, t *target.Target, o CompileOptions) (*Plan, error) {
	if sc == nil || t == nil {
		return nil, errors.New("compile: scenario and target required")
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("compile: target: %w", err)
	}
	if !o.AllowRemote {
		if err := loopbackOnly(t, sc); err != nil {
			return nil, fmt.Errorf("compile: %w (a stack you deployed yourself: add --allow-load)", err)
		}
	}
	s := o.Shard
	if s.Count == 0 {
		s = Shard{Index: 0, Count: 1}
	}
	if s.Index < 0 || s.Index >= s.Count {
		return nil, fmt.Errorf("compile: shard %d/%d: want 1 <= i <= n", s.Index+1, s.Count)
	}
	count := sc.Fleet.Count
	if s.Count > count {
		return nil, fmt.Errorf("compile: %d shards for %d devices: every shard needs at least one device", s.Count, count)
	}
	if sc.Fleet.Transport == scenarios.TransportWSS {
		switch {
		case t.WSSURL == "":
			return nil, errors.New("compile: the scenario uses wss but the target has no wss_url")
		case !t.WSSDevices:
			return nil, errors.New("compile: the scenario uses wss but the target's wss endpoint does not take device certificates (wss_devices is false; for the local stack: mqttstack local up --wss-devices)")
		}
	}
	from, to := shardRange(count, s)
	// Refuse a shard that cannot hold its sockets before anything is
	// issued: 25,000 identities minted for a run that cannot start are
	// minutes wasted and files to clean up.
	if soft, _, err := fleet.RaiseFileLimit(); err == nil {
		if err := fleet.CheckCapacity(to-from, 2, soft); err != nil {
			return nil, fmt.Errorf("compile: %w", err)
		}
	}
	p := &Plan{
		Scenario:  sc,
		Target:    t,
		Shard:     s,
		From:      from,
		To:        to,
		DeviceIDs: make([]string, 0, to-from),
		Observer:  shardName(t.Observer, s),
		Backend:   shardName(t.Backend, s),
	}
	for i := from; i < to; i++ {
		p.DeviceIDs = append(p.DeviceIDs, sc.Fleet.DeviceID(i))
	}
	var mix []devices.Share
	for _, ps := range sc.Fleet.Profiles {
		mix = append(mix, devices.Share{Profile: ps.Profile, Share: ps.Share})
	}
	profiles, err := devices.Assign(mix, count, from, to)
	if err != nil {
		return nil, fmt.Errorf("compile: fleet.profiles: %w", err)
	}
	p.Profiles = profiles
	p.PeakRate = peakRate(sc, to-from)
	p.Observers = observerNames(t.Observer, s, observersFor(p.PeakRate))
	if sc.Commands != nil {
		p.CommandRate = sc.Commands.Rate * float64(to-from) / float64(count)
	}
	pool, err := certs.LoadCAPool(t.CACert)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	p.RootCAs = pool

	if o.Issue {
		a, err := certs.Open(t.PKIDir)
		if err != nil {
			return nil, fmt.Errorf("compile: issue identities: %w", err)
		}
		// Boards whose profile needs another key type first: IssueClients
		// keeps them and gives the rest the CA's key type.
		byProfile, err := devices.IssueFor(ctx, a, t.PKIDir, p.DeviceIDs, p.Profiles)
		if err != nil {
			return nil, fmt.Errorf("compile: issue identities: %w", err)
		}
		res, err := a.IssueClients(ctx, p.DeviceIDs)
		if err != nil {
			return nil, fmt.Errorf("compile: issue identities: %w", err)
		}
		p.Issued = append(byProfile, res.Issued...)
		p.PasswordsChanged = len(res.Issued) > 0 && sc.Fleet.Transport == scenarios.TransportWSS
	}
	if err := checkIdentities(t.PKIDir, append(append([]string{p.Backend}, p.Observers...), p.DeviceIDs...)); err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	return p, nil
}

// loopbackOnly refuses a target or source address outside 127.0.0.0/8
// unless the operator said otherwise (CompileOptions.AllowRemote): by
// default this tool floods only the local stack.
func loopbackOnly(t *target.Target, sc *scenarios.Scenario) error {
	ips, err := net.LookupIP(t.Host)
	if err != nil {
		return fmt.Errorf("target host %q: %w", t.Host, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("target host %q is %v, not loopback: load runs are allowed against 127.0.0.0/8 only", t.Host, ip)
		}
	}
	for _, a := range sc.Fleet.SourceAddrs {
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("source address %q is not loopback", a)
		}
	}
	return nil
}

// checkIdentities reports, in one error, which identities have no
// certificate, without loading the keys (Run loads them).
func checkIdentities(pki string, ids []string) error {
	var missing []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan string)
	for range runtime.GOMAXPROCS(0) * 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				if !certExists(pki, id) {
					mu.Lock()
					missing = append(missing, id)
					mu.Unlock()
				}
			}
		}()
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
	if len(missing) == 0 {
		return nil
	}
	show := missing
	if len(show) > 5 {
		show = show[:5]
	}
	return fmt.Errorf("%d identities have no certificate in %s (e.g. %s): issue them with `mqttstack certs issue` or run with identities issued", len(missing), pki, strings.Join(show, ", "))
}

// loadIdentities loads the client certificates of ids in parallel.
func loadIdentities(ctx context.Context, pki string, ids []string) ([]*tls.Certificate, error) {
	out := make([]*tls.Certificate, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) * 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := certs.LoadClient(pki, ids[i])
				if err != nil {
					errs[i] = err
					continue
				}
				out[i] = &c
			}
		}()
	}
	for i := range ids {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("load identities: %w", err)
	}
	return out, nil
}

func certExists(pki, id string) bool {
	_, err := os.Stat(filepath.Join(certs.PathsOf(pki).Clients, id+".crt"))
	return err == nil
}
