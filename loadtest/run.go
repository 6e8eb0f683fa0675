package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/devices"
	"github.com/mqttstack/mqttstack/fleet"
	"github.com/mqttstack/mqttstack/host"
	"github.com/mqttstack/mqttstack/loadtest/result"
	"github.com/mqttstack/mqttstack/scenarios"
)

// Errors Run returns together with a partial result.
var (
	// ErrInterrupted: the caller's context ended (Ctrl-C) before the stages did.
	ErrInterrupted = errors.New("interrupted")
	// ErrBrokerDown: most devices were lost and reconnects kept failing.
	ErrBrokerDown = errors.New("broker down")
	errStagesDone = errors.New("stages done")
)

// Options control how a run reports and how long it waits at the edges.
type Options struct {
	// Progress receives live bars when it is a terminal and Quiet is false.
	Progress io.Writer
	Quiet    bool
	// Log receives notable lines (printed above the bars when they show).
	Log io.Writer
	// Grace is how long in-flight work may finish after the stages stop
	// (default 5s; 1s when interrupted).
	Grace time.Duration
	// Drain bounds the wait for the observer to receive what was sent
	// (default 15s), and DrainIdle ends it early when nothing arrives for
	// that long (default 2s).
	Drain, DrainIdle time.Duration
	// DeadAfter: the broker counts as down when fewer than half the peak of
	// connected devices remain, connects keep failing and none has
	// succeeded for this long (default 5s).
	DeadAfter time.Duration
	// Workers publish (default: enough for the fleet's rate, 32…512).
	Workers int
	// EventBuffer is the sink's capacity (default 1<<16).
	EventBuffer int
	// Host reaches the machine the broker runs on (nil: no host access):
	// its configuration gives the per-client queue the observers are
	// watched against, its process accounting the broker's cost.
	Host host.Host
	// ToolVersion goes into the result's meta.
	ToolVersion string
	// ObserverQoS1 subscribes the observers at QoS 1 instead of 0 (the
	// default). At QoS 1 each observer is a client under the broker's
	// per-client flow control: max_inflight_messages unacknowledged, the
	// broker sends more only as PUBACKs come back, queues at most
	// max_queued_messages meanwhile and drops the rest. With a hundred
	// devices publishing back to back on a busy machine that window
	// overflows even for observers that keep up (measured on the shared
	// machine: 0.02% to 63% of a 100 × 1,000 burst dropped for 7 QoS 1
	// observers, none at QoS 0; docs/BENCHMARKS.md). At
	// QoS 0 the broker writes to an observer as fast as it reads, dropping
	// only when max_queued_messages wait for its socket, which the backlog
	// watch reports; the devices' publishes keep their own QoS either way.
	ObserverQoS1 bool
	// ObserverQoS0 is the default; kept so callers that set it still build.
	ObserverQoS0 bool
}

func (o *Options) defaults(p *Plan) {
	if o.Grace <= 0 {
		o.Grace = 5 * time.Second
	}
	if o.Drain <= 0 {
		o.Drain = 15 * time.Second
	}
	if o.DrainIdle <= 0 {
		o.DrainIdle = 2 * time.Second
	}
	if o.DeadAfter <= 0 {
		o.DeadAfter = 5 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = min(512, max(32, len(p.DeviceIDs)/20))
		for _, st := range p.Scenario.Stages {
			if st.Kind == scenarios.StageBurst {
				// A real burst: every device at once, each waiting for
				// its own PUBACKs, as many boards do after an outage.
				o.Workers = max(o.Workers, min(512, len(p.DeviceIDs)))
			}
		}
	}
	if o.EventBuffer <= 0 {
		o.EventBuffer = 1 << 16
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.ToolVersion == "" {
		o.ToolVersion = "dev"
	}
}

// Run executes the plan and returns its result. A run that could not start
// (identities missing, observer refused) returns a nil result and the error.
// A run cut short returns the partial result, marked interrupted, together
// with ErrInterrupted or ErrBrokerDown.
//
// A run is four steps (open, stages, drain, finish); every resource open
// acquires pushes its release onto one last-in-first-out cleanup stack,
// which finish unwinds before it reads the final tallies, and which Run's
// deferred unwind runs on any early return.
func Run(ctx context.Context, p *Plan, o Options) (*result.Result, error) {
	o.defaults(p)
	r := &runner{p: p, o: o, sc: p.Scenario, n: len(p.DeviceIDs)}
	defer r.cleanup.unwind()
	if err := r.open(ctx); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	r.stages(ctx)
	r.drain()
	return r.finish()
}

// cleanupStack releases what a run acquired, last in first out.
type cleanupStack []func()

func (c *cleanupStack) push(f func()) { *c = append(*c, f) }

// unwind runs and forgets every pushed release, newest first; calling it
// again does nothing.
func (c *cleanupStack) unwind() { c.unwindTo(0) }

// unwindTo runs and forgets the releases pushed after the first mark ones,
// newest first (mark: a length the stack had).
func (c *cleanupStack) unwindTo(mark int) {
	for len(*c) > mark {
		f := (*c)[len(*c)-1]
		*c = (*c)[:len(*c)-1]
		f()
	}
}

// runner is one run's state between its steps.
type runner struct {
	p       *Plan
	o       Options
	sc      *scenarios.Scenario
	n       int
	cleanup cleanupStack
	// collected marks the stack right after the collector's stop: finish
	// unwinds down to it, reads the result, then stops the collector.
	collected int

	sink    *fleet.Sink
	col     *collector
	fl      *fleet.Fleet
	obs     *observers
	backend *fleet.Backend
	broker  *brokerSampler
	prog    *progress
	log     io.Writer
	limit   int64 // the broker's per-client queue the observers are watched against

	// runCtx bounds all in-flight work; it is not a child of the caller's
	// context, so that Ctrl-C stops the stages at once but leaves
	// in-flight work its grace period (k6's two contexts). stagesCtx ends
	// the stages: Ctrl-C, a dead broker, or their end.
	runCtx     context.Context
	cancelRun  context.CancelFunc
	stagesCtx  context.Context
	stopStages context.CancelCauseFunc
	monWG      sync.WaitGroup

	interrupted bool
	reason      string
	runErr      error
}

// open loads the identities, builds the fleet, starts the collector, the
// observers, the backend, the fleet, the samplers and the bars.
func (r *runner) open(ctx context.Context) error {
	p, o, sc, n := r.p, r.o, r.sc, r.n
	soft, _, err := fleet.RaiseFileLimit()
	if err != nil {
		return err
	}
	if err := fleet.CheckCapacity(n, 1+max(1, len(p.Observers)), soft); err != nil {
		return err
	}

	obsIDs := p.Observers
	if len(obsIDs) == 0 {
		obsIDs = []string{p.Observer}
	}
	k := len(obsIDs)
	ids := append(append(append([]string{}, obsIDs...), p.Backend), p.DeviceIDs...)
	loaded, err := loadIdentities(ctx, p.Target.PKIDir, ids)
	if err != nil {
		return err
	}
	idents := make([]fleet.Identity, n)
	for i, id := range p.DeviceIDs {
		idents[i] = fleet.Identity{ID: id, Cert: loaded[i+k+1]}
		if sc.Fleet.Transport == scenarios.TransportWSS {
			pw, err := certs.ClientPassword(p.Target.PKIDir, id)
			if err != nil {
				return err
			}
			idents[i].Password = pw
		}
	}
	// fleet.profiles: each device handshakes as its board.
	if err := devices.Apply(idents, p.Profiles, devices.Board{ServerName: p.Target.ServerName, RootCAs: p.RootCAs}); err != nil {
		return err
	}

	r.sink = fleet.NewSink(o.EventBuffer)
	cfg := fleet.Config{
		Addr:           p.Target.MQTTSAddr(),
		ServerName:     p.Target.ServerName,
		RootCAs:        p.RootCAs,
		KeepAlive:      sc.Fleet.KeepAlive,
		CleanSession:   sc.Fleet.CleanSession,
		Protocol:       fleet.MQTT311,
		QoS:            sc.Fleet.QoS,
		ConnectTimeout: sc.Connect.Timeout,
		Backoff:        fleet.Backoff{Min: sc.Connect.Backoff.Min, Max: sc.Connect.Backoff.Max, Jitter: sc.Connect.Backoff.Jitter},
		Sink:           r.sink,
	}
	if sc.Fleet.Transport == scenarios.TransportWSS {
		cfg.WSSURL = p.Target.WSSURL
	}
	if sc.Fleet.Protocol == scenarios.Protocol5 {
		cfg.Protocol, cfg.SessionExpiry, cfg.TopicAliases = fleet.MQTT5, sc.Fleet.SessionExpiry, sc.Fleet.TopicAliases
	}
	for _, a := range sc.Fleet.SourceAddrs {
		cfg.SourceAddrs = append(cfg.SourceAddrs, net.ParseIP(a))
	}
	if r.fl, err = fleet.New(cfg, idents, fleet.Options{MaxInFlight: sc.Connect.MaxInFlight, Workers: o.Workers}); err != nil {
		return err
	}

	host, _ := os.Hostname()
	rec := result.NewRecorder(result.Meta{
		Scenario:     sc.Name,
		ScenarioHash: scenarioHash(sc),
		Shard:        p.Shard,
		Devices:      result.Devices{Prefix: sc.Fleet.Prefix, From: p.From + 1, To: p.To + 1, Count: n, Width: idWidth(sc.Fleet.Prefix, p.DeviceIDs)},
		Target:       p.Target.Name,
		Protocol:     string(sc.Fleet.Protocol),
		ToolVersion:  o.ToolVersion,
		Host:         host,
		GoVersion:    runtime.Version(),
	})
	r.col = newCollector(rec, r.sink)
	go r.col.run()
	r.cleanup.push(r.col.stop) // last: finish reads the result from it first
	r.collected = len(r.cleanup)

	r.runCtx, r.cancelRun = context.WithCancel(context.WithoutCancel(ctx))
	r.cleanup.push(r.cancelRun)
	r.stagesCtx, r.stopStages = context.WithCancelCause(ctx)
	r.cleanup.push(func() { r.stopStages(errStagesDone) })

	limit, limitFrom := queueLimit(ctx, o.Host)
	r.limit = limit
	if r.obs, err = startObservers(r.runCtx, fleet.ObserverConfig{
		Addr: cfg.Addr, ServerName: cfg.ServerName, RootCAs: p.RootCAs,
		QoS: observerQoS(o), QueueLimit: limit, KeepAlive: 30 * time.Second, Sink: r.sink,
	}, obsIDs, loaded[:k], r.fl.Devices()); err != nil {
		return err
	}
	r.cleanup.push(r.obs.stop)
	if sc.Commands != nil && p.CommandRate > 0 {
		if r.backend, err = fleet.NewBackend(r.runCtx, fleet.BackendConfig{
			Addr: cfg.Addr, ServerName: cfg.ServerName, RootCAs: p.RootCAs,
			ID: p.Backend, Cert: loaded[k], QoS: sc.Fleet.QoS, Sink: r.sink,
		}); err != nil {
			return err
		}
		r.cleanup.push(r.backend.Close)
	}
	if err := r.fl.Start(r.runCtx); err != nil {
		return err
	}
	// The fleet closes before the observers stop: what was acknowledged
	// has arrived by then (drain), and no device publishes any more.
	r.cleanup.push(func() {
		r.cancelRun()
		r.fl.Close(250 * time.Millisecond)
	})

	r.broker = newBrokerSampler(o.Host)
	if o.Host == nil {
		r.col.do(func(rec *result.Recorder) {
			rec.NoBroker("broker cost: no host access (a local stack or a target with an ssh section gives one)")
		})
	}
	fmt.Fprintf(o.Log, "run %s: %d devices (shard %d/%d), target %s\n", sc.Name, n, p.Shard.Index+1, p.Shard.Count, p.Target.MQTTSAddr())
	identities := "identities"
	if k == 1 {
		identities = "identity"
	}
	fmt.Fprintf(o.Log, "delivery check: %d observer %s (%s) for up to %.0f messages/s, each watched against a per-client queue of %d (%s)\n",
		k, identities, strings.Join(obsIDs, ", "), p.PeakRate, limit, limitFrom)
	if need := observersFor(p.PeakRate); need > k {
		fmt.Fprintf(o.Log, "delivery check: %.0f messages/s would need %d observers, the pool has %d for this shard: expect an observer overload (shard the run, or add observer identities to the ACL)\n", p.PeakRate, need, k)
	}

	// The bars live until the run context ends (or finish aborts them), so
	// that the drain can still log above them after the stages stopped.
	r.prog = newProgress(r.runCtx, o.Progress, !o.Quiet && isTerminal(o.Progress), n, sc.Stages)
	r.log = r.prog.logWriter(o.Log)
	r.cleanup.push(func() {
		r.prog.finish()
		r.log = o.Log
	})

	// The monitor samples the tool's cost, feeds the live bars and watches
	// for a dead broker; the broker sampler reads the broker's; both stop
	// with the stages.
	r.monWG.Add(1)
	go func() {
		defer r.monWG.Done()
		monitor(r.stagesCtx, r.col, r.prog, o.DeadAfter, r.stopStages)
	}()
	if o.Host != nil {
		r.monWG.Add(1)
		go func() {
			defer r.monWG.Done()
			r.broker.run(r.stagesCtx, r.col)
		}()
	}
	r.cleanup.push(func() {
		r.stopStages(errStagesDone)
		r.monWG.Wait()
	})

	// Interrupted stages leave in-flight work (a connect attempt to a hung
	// broker waits up to its timeout) a second's grace, then cut it.
	go func() {
		select {
		case <-r.runCtx.Done():
			return
		case <-r.stagesCtx.Done():
		}
		if errors.Is(context.Cause(r.stagesCtx), errStagesDone) {
			return
		}
		t := time.NewTimer(min(o.Grace, time.Second))
		defer t.Stop()
		select {
		case <-t.C:
			r.cancelRun()
		case <-r.runCtx.Done():
		}
	}()
	return nil
}

// stages runs the scenario's stages in order until they end, Ctrl-C (ctx)
// or a dead broker stops them, and records why they stopped.
func (r *runner) stages(ctx context.Context) {
	devs := r.fl.Devices()
	for i, st := range r.sc.Stages {
		if r.stagesCtx.Err() != nil {
			break
		}
		name := st.Name
		now := time.Now()
		b := r.broker.sample(r.stagesCtx)
		r.col.do(func(rec *result.Recorder) {
			// Samples before the phase change: what was spent until
			// now belongs to the stage before.
			sampleUsage(rec, now)
			b.record(rec, now)
			rec.Stage(name, string(st.Kind), now)
		})
		r.prog.stageStart(i)
		runStage(r.stagesCtx, r.fl, r.backend, r.p, st, devs, r.prog)
		r.prog.stageDone(i)
		if st.Kind == scenarios.StageRamp {
			checkObserver(r.stagesCtx, r.obs, r.fl, r.sink, r.log)
		}
	}

	// The broker's last sample closes the last stage: its teardown is not
	// the stage's cost.
	if b := r.broker.sample(r.runCtx); b.ok {
		now := time.Now()
		r.col.do(func(rec *result.Recorder) { b.record(rec, now) })
	}
	r.stopStages(errStagesDone)
	switch cause := context.Cause(r.stagesCtx); {
	case errors.Is(cause, ErrBrokerDown):
		r.interrupted, r.reason, r.runErr = true, cause.Error(), cause
	case ctx.Err() != nil:
		r.interrupted, r.reason, r.runErr = true, "interrupted (Ctrl-C)", ErrInterrupted
	}
	r.monWG.Wait()
}

// drain lets in-flight publishes finish within the grace period, then gives
// the observers their bounded drain (skipped when the run was cut short).
func (r *runner) drain() {
	grace := r.o.Grace
	if r.interrupted {
		grace = min(grace, time.Second)
	}
	graceCtx, cancelGrace := context.WithTimeout(r.runCtx, grace)
	waitIdle(graceCtx, r.fl)
	cancelGrace()
	if r.interrupted {
		return
	}
	drainCtx, cancelDrain := context.WithTimeout(r.runCtx, r.o.Drain)
	defer cancelDrain()
	if !r.obs.drain(drainCtx, r.o.DrainIdle) {
		fmt.Fprintf(r.log, "observer: drain ended before every acknowledged message arrived\n")
	}
}

// finish unwinds everything but the collector (bars, samplers, fleet,
// backend, observers), then reads the observers' tallies and the tool's
// cost into the result, and stops the collector.
func (r *runner) finish() (*result.Result, error) {
	r.cleanup.unwindTo(r.collected)

	delivery, tally := r.obs.delivery()
	self, _ := readProcCost(0)
	final := result.Final{
		Delivery:        delivery,
		CPUUser:         self.User,
		CPUSystem:       self.System,
		MaxRSSBytes:     self.HWM,
		Procs:           runtime.GOMAXPROCS(0),
		CPUs:            runtime.NumCPU(),
		DroppedEvents:   r.sink.Dropped(),
		Interrupted:     r.interrupted,
		InterruptReason: r.reason,
	}
	end := time.Now()
	var res *result.Result
	r.col.do(func(rec *result.Recorder) {
		sampleUsage(rec, end)
		res = rec.Finish(end, final)
	})
	r.cleanup.unwind()

	// What the report cannot show: why a figure is missing, and the
	// observers' own state. The tool's and the broker's cost are in the
	// result (result.WriteConsole's "Tool cost" and "Broker cost").
	log := r.o.Log
	if err := r.broker.err(); err != nil {
		fmt.Fprintf(log, "broker cost: %v\n", err)
	}
	fmt.Fprintf(log, "observer backlog peaks: %s\n", r.obs.backlogs(r.limit))
	if delivery.Unverified > 0 {
		fmt.Fprintf(log, "OBSERVER OVERLOAD: %d messages unverified (not counted as lost): %s\n", delivery.Unverified, strings.Join(delivery.Overloaded, "; "))
	}
	if tally.Foreign > 0 || tally.Invalid > 0 {
		fmt.Fprintf(log, "observer: %d messages of other shards' devices ignored, %d invalid\n", tally.Foreign, tally.Invalid)
	}
	return res, r.runErr
}

func observerQoS(o Options) byte {
	if o.ObserverQoS1 && !o.ObserverQoS0 {
		return 1
	}
	return 0
}

// checkObserver warns when the observer hears nothing after the ramp: every
// connected device published its retained "online", so silence means the
// observer may not read devices/# (Mosquitto grants a denied SUBSCRIBE and
// then delivers nothing), and every message would count as lost.
func checkObserver(ctx context.Context, obs *observers, fl *fleet.Fleet, sink *fleet.Sink, log io.Writer) {
	if fl.ConnectedCount() == 0 {
		return
	}
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !obs.online() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fmt.Fprintf(log, "observer: no status message from %d connected devices: does the observer identity have read access to devices/# in the broker's ACL?\n", fl.ConnectedCount())
			sink.Emit(fleet.Event{Kind: fleet.KindError, At: time.Now(), Cause: "observer: receives nothing (ACL?)"})
			return
		case <-tick.C:
		}
	}
}

// runStage runs one stage to its end (or until stages stops).
func runStage(stages context.Context, fl *fleet.Fleet, backend *fleet.Backend, p *Plan, st scenarios.Stage, devs []*fleet.Device, prog *progress) {
	sc := p.Scenario
	if st.Kind == scenarios.StageRamp {
		rate := fleet.Rate{Freq: 1, Per: time.Duration(float64(time.Second) / sc.Connect.Rate)}
		if sc.Connect.Rate >= 1 {
			// Integral rates pace exactly; fractional ones by their period.
			rate = fleet.Rate{Freq: int(sc.Connect.Rate * 1000), Per: 1000 * time.Second}
		}
		fl.Connect(stages, devs, rate)
		return
	}
	stage, cancel := context.WithTimeout(stages, st.Duration)
	defer cancel()
	var wg sync.WaitGroup
	if backend != nil && p.CommandRate > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			backend.Run(stage, fleet.Rate{Freq: max(1, int(p.CommandRate*1000)), Per: 1000 * time.Second}, p.DeviceIDs)
		}()
	}
	sh := shapeOf(st)
	if iv := st.Interval(); iv > 0 && st.Kind != scenarios.StageBurst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fl.PublishEvery(stage, devs, iv, sh)
		}()
	}
	switch st.Kind {
	case scenarios.StageBurst:
		fl.Burst(stage, devs, st.Count, st.Within, sh)
	case scenarios.StageReconnectStorm:
		fl.Storm(stage, pickStorm(devs, st.DropCount(len(devs))), st.Within)
	}
	<-stage.Done()
	wg.Wait()
}

// pickStorm chooses k devices spread evenly over the fleet, in a shuffled
// order: the publish schedule walks the fleet in index order, and a storm
// walking it in the same order at a similar pace would drop each device
// just as it publishes (it did: 80% of the drops hit a publish in flight).
// The seed is fixed, so a repeated run drops the same boards in the same
// order.
func pickStorm(devs []*fleet.Device, k int) []*fleet.Device {
	k = min(k, len(devs))
	out := make([]*fleet.Device, 0, k)
	for i := range k {
		out = append(out, devs[i*len(devs)/k])
	}
	r := rand.New(rand.NewPCG(0x5eed, uint64(k)))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func shapeOf(st scenarios.Stage) fleet.Shape {
	sh := fleet.Shape{Size: st.Size}
	switch st.Payload {
	case scenarios.PayloadDHT11, "":
		sh.Payload = fleet.PayloadDHT11
	case scenarios.PayloadHTU21D:
		sh.Payload = fleet.PayloadHTU21D
	case scenarios.PayloadDS18B20:
		sh.Payload = fleet.PayloadDS18B20
	case scenarios.PayloadBattery:
		sh.Payload = fleet.PayloadBattery
	case scenarios.PayloadRaw:
		sh.Payload = fleet.PayloadRaw
	}
	return sh
}

func waitIdle(ctx context.Context, fl *fleet.Fleet) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !fl.Idle() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// monitor runs once a second until ctx ends: cost samples, live progress,
// and the dead-broker rule.
func monitor(ctx context.Context, col *collector, prog *progress, deadAfter time.Duration, stop context.CancelCauseFunc) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	// The bars' refresh; without bars (not a terminal, --quiet) nothing
	// to refresh, and no wake-up five times a second.
	var refresh <-chan time.Time
	if prog.drawn() {
		fast := time.NewTicker(200 * time.Millisecond)
		defer fast.Stop()
		refresh = fast.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-refresh:
			var live result.Live
			col.do(func(r *result.Recorder) { live = r.Snapshot() })
			prog.update(live)
		case now := <-t.C:
			var h health
			col.do(func(r *result.Recorder) {
				sampleUsage(r, now)
				h = col.health(now, r.Snapshot())
			})
			if reason, dead := h.dead(now, deadAfter); dead {
				stop(fmt.Errorf("%w: %s", ErrBrokerDown, reason))
				return
			}
		}
	}
}

func sampleUsage(r *result.Recorder, at time.Time) {
	if c, err := readProcCost(0); err == nil {
		r.Usage(at, c.User+c.System, c.RSS)
	}
}

// health is what the dead-broker rule looks at.
type health struct {
	active, peak  int64
	lastOK        time.Time // last successful connect (or the run's start)
	failsSinceOK  int64
	topCause      string
	everConnected bool
}

// dead is the rule: most devices lost (fewer than half the peak, or none
// ever connected), at least one connect failure since the last success, and
// no success for deadAfter.
func (h health) dead(now time.Time, deadAfter time.Duration) (string, bool) {
	if h.failsSinceOK == 0 || now.Sub(h.lastOK) < deadAfter {
		return "", false
	}
	if h.everConnected && h.active*2 >= h.peak {
		return "", false
	}
	return fmt.Sprintf("%d of %d devices connected and %d connect attempts failed in the last %v without one success (most: %s)",
		h.active, h.peak, h.failsSinceOK, now.Sub(h.lastOK).Round(time.Second), h.topCause), true
}

func scenarioHash(sc *scenarios.Scenario) string {
	b, err := sc.Format()
	if err != nil {
		return ""
	}
	return hashHex(b)
}

// sortedCauses is for logs: causes by count, most first.
func sortedCauses(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return m[out[i]] > m[out[j]] || m[out[i]] == m[out[j]] && out[i] < out[j] })
	return out
}

// idWidth is the zero-padded width of the numbers in ids (all share it).
func idWidth(prefix string, ids []string) int {
	if len(ids) == 0 {
		return 0
	}
	return len(ids[0]) - len(prefix)
}
