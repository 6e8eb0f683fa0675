package fleet

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/internal/stacktest"
)

func TestMain(m *testing.M) { os.Exit(stacktest.Main(m)) }

// harness is a real stack with a fleet, an observer and a collector that
// tallies events by kind and cause.
type harness struct {
	stack *stacktest.Stack
	fleet *Fleet
	obs   *Observer
	sink  *Sink
}

func loadIdentity(t testing.TB, pki, id string) *tls.Certificate {
	t.Helper()
	c, err := certs.LoadClient(pki, id)
	if err != nil {
		t.Fatalf("load %s: %v", id, err)
	}
	return &c
}

func newHarness(t testing.TB, n int, mod func(*Config), fmods ...func(*Fleet)) (*harness, context.Context) {
	t.Helper()
	return newHarnessOn(t, stacktest.Start(t, stacktest.WithDevices(n)), n, mod, fmods...)
}

// newHarnessOn is newHarness on a stack the test started (with options).
func newHarnessOn(t testing.TB, s *stacktest.Stack, n int, mod func(*Config), fmods ...func(*Fleet)) (*harness, context.Context) {
	t.Helper()
	pool, err := certs.LoadCAPool(s.Target.CACert)
	if err != nil {
		t.Fatal(err)
	}
	sink := NewSink(1 << 16)
	cfg := Config{
		Addr:         s.Target.MQTTSAddr(),
		ServerName:   s.Target.ServerName,
		RootCAs:      pool,
		KeepAlive:    30 * time.Second,
		CleanSession: true,
		QoS:          1,
		Sink:         sink,
		Backoff:      Backoff{Min: 100 * time.Millisecond, Max: time.Second, Jitter: 0.2},
	}
	if mod != nil {
		mod(&cfg)
	}
	ids := make([]Identity, n)
	for i, id := range s.Devices[:n] {
		ids[i] = Identity{ID: id, Cert: loadIdentity(t, s.PKIDir, id)}
	}
	f, err := New(cfg, ids, Options{MaxInFlight: 64, Workers: 32})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range fmods {
		m(f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	obs, err := NewObserver(ObserverConfig{
		Addr: cfg.Addr, ServerName: cfg.ServerName, RootCAs: pool,
		ID: s.Target.Observer, Cert: loadIdentity(t, s.PKIDir, s.Target.Observer),
		Devices: s.Devices[:n], QoS: 1, KeepAlive: 30 * time.Second, Sink: sink,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := obs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(obs.Stop)
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(250 * time.Millisecond) })
	return &harness{stack: s, fleet: f, obs: obs, sink: sink}, ctx
}

// counts drains the sink without blocking and tallies kinds and causes.
type counts struct {
	kinds  map[Kind]int
	causes map[string]int
}

// requireConnected stops the test unless n devices are connected, naming
// the causes of the failed attempts.
func (h *harness) requireConnected(t testing.TB, n int) {
	t.Helper()
	if got := h.fleet.ConnectedCount(); got != n {
		var c counts
		h.drain(&c)
		t.Fatalf("connected %d of %d; causes %v", got, n, c.causes)
	}
}

func (h *harness) drain(c *counts) {
	if c.kinds == nil {
		c.kinds, c.causes = map[Kind]int{}, map[string]int{}
	}
	for {
		select {
		case e := <-h.sink.Events():
			c.kinds[e.Kind]++
			if e.Cause != "" {
				c.causes[e.Kind.String()+" "+e.Cause]++
			}
		default:
			return
		}
	}
}

func TestFleetConnectPublishObserve(t *testing.T) {
	const n = 40
	h, ctx := newHarness(t, n, nil)
	before := runtime.NumGoroutine()
	started := h.fleet.Connect(ctx, h.fleet.Devices(), PerSecond(400))
	if started != n {
		t.Fatalf("started %d of %d", started, n)
	}
	h.requireConnected(t, n)
	stage, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	h.fleet.PublishEvery(stage, h.fleet.Devices(), 250*time.Millisecond, Shape{Payload: PayloadHTU21D})
	cancel()
	// Let the last scheduled publishes complete (acknowledged), then the
	// observer catch up: the broker forwards a message before it acks it.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !h.fleet.Idle(); {
		time.Sleep(10 * time.Millisecond)
	}
	sent := func(i int) int64 { return h.fleet.Devices()[i].Sent() }
	if !h.obs.Drain(ctx, sent, 3*time.Second) {
		exp, uniq, lost := h.obs.Lost(sent)
		t.Fatalf("observer did not drain: expected %d unique %d lost %d", exp, uniq, lost)
	}
	exp, uniq, lost := h.obs.Lost(sent)
	var c counts
	h.drain(&c)
	t.Logf("expected %d unique %d lost %d kinds %v causes %v tally %+v", exp, uniq, lost, c.kinds, c.causes, h.obs.Tally())
	if exp < n*4 {
		t.Errorf("devices sent %d messages, want at least %d (4 rounds of %d)", exp, n*4, n)
	}
	if lost != 0 || uniq < exp {
		t.Errorf("lost %d (expected %d, unique %d): QoS 1 on a healthy broker loses nothing", lost, exp, uniq)
	}
	if c.kinds[KindConnected] != n || c.kinds[KindPublished] != int(exp) {
		t.Errorf("events: connected %d (want %d), published %d (want %d)", c.kinds[KindConnected], n, c.kinds[KindPublished], exp)
	}
	if c.kinds[KindReceived] != int(uniq) {
		t.Errorf("received events %d, observer unique %d", c.kinds[KindReceived], uniq)
	}
	if tl := h.obs.Tally(); tl.Online < n || tl.Duplicates != 0 {
		t.Errorf("tally %+v: want %d online statuses and no duplicates", tl, n)
	}
	h.fleet.Close(250 * time.Millisecond)
	h.obs.Stop()
	waitGoroutines(t, before)
}

// waitGoroutines fails when goroutines started by the test outlive it.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := runtime.NumGoroutine(); got > want {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines outlive the fleet (want ≤ %d):\n%s", got, want, buf[:runtime.Stack(buf, true)])
	}
}

// TestKeepAlive: the fleet's own pings keep idle devices connected past the
// broker's 1.5 × keep-alive, and the CONNECT really carries the keep-alive:
// without the pings the broker drops the devices.
func TestKeepAlive(t *testing.T) {
	for _, ping := range []bool{true, false} {
		t.Run(map[bool]string{true: "pinged", false: "silent"}[ping], func(t *testing.T) {
			const n = 10
			h, ctx := newHarness(t, n, func(c *Config) { c.KeepAlive = time.Second }, func(f *Fleet) { f.noPing = !ping })
			h.fleet.Connect(ctx, h.fleet.Devices(), PerSecond(100))
			if got := h.fleet.ConnectedCount(); got != n {
				t.Fatalf("connected %d of %d", got, n)
			}
			// Silent: until the broker notices (Mosquitto 2.0 checks
			// keep-alives in its main loop, which took ~5s here). Pinged:
			// longer than that.
			var c counts
			start := time.Now()
			deadline := start.Add(8 * time.Second) // silent devices went in ~5s
			if !ping {
				deadline = start.Add(20 * time.Second)
			}
			for time.Now().Before(deadline) && (ping || c.kinds[KindLost] < n) {
				time.Sleep(100 * time.Millisecond)
				h.drain(&c)
			}
			lost := c.kinds[KindLost]
			t.Logf("lost %d after %v: %v", lost, time.Since(start).Round(100*time.Millisecond), c.causes)
			if ping && lost != 0 {
				t.Errorf("pinged devices lost %d times: %v", lost, c.causes)
			}
			if !ping && lost < n {
				t.Errorf("silent devices lost %d times (want ≥ %d): the broker did not enforce the keep-alive; %v", lost, n, c.causes)
			}
		})
	}
}

// TestStormBurstCommands: a reconnect storm drops devices without a
// DISCONNECT (the broker publishes their wills, the observer sees them) and
// they come back by their own backoff; a burst delivers every message; the
// backend's relay commands reach the devices, which answer on their status.
func TestStormBurstCommands(t *testing.T) {
	const n = 20
	h, ctx := newHarness(t, n, func(c *Config) { c.SourceAddrs = []net.IP{net.ParseIP("127.0.0.2"), net.ParseIP("127.0.0.3")} })
	devs := h.fleet.Devices()
	h.fleet.Connect(ctx, devs, PerSecond(200))
	if got := h.fleet.ConnectedCount(); got != n {
		t.Fatalf("connected %d of %d", got, n)
	}
	// Source addresses: round robin by device index.
	for i, d := range devs[:4] {
		d.mu.Lock()
		local := d.conn.LocalAddr().(*net.TCPAddr).IP.String()
		d.mu.Unlock()
		if want := []string{"127.0.0.2", "127.0.0.3"}[i%2]; local != want {
			t.Errorf("device %d dials from %s, want %s", i, local, want)
		}
	}

	stage, cancel := context.WithTimeout(ctx, time.Second)
	dropped := h.fleet.Storm(stage, devs[:n/2], 500*time.Millisecond)
	<-stage.Done()
	cancel()
	if dropped != n/2 {
		t.Fatalf("dropped %d, want %d", dropped, n/2)
	}
	var c counts
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		h.drain(&c)
		if c.kinds[KindReconnected] >= n/2 && h.fleet.ConnectedCount() == n {
			break
		}
	}
	if c.kinds[KindDisconnected] != n/2 || c.kinds[KindReconnected] != n/2 || c.kinds[KindLost] != 0 {
		t.Errorf("storm: disconnected %d reconnected %d lost %d, want %d, %d, 0 (%v)", c.kinds[KindDisconnected], c.kinds[KindReconnected], c.kinds[KindLost], n/2, n/2, c.causes)
	}
	if tl := h.obs.Tally(); tl.Offline < n/2 {
		t.Errorf("observer saw %d wills (offline), want ≥ %d", tl.Offline, n/2)
	}

	// Burst: 5 messages per device, all at once.
	stage, cancel = context.WithCancel(ctx)
	if started := h.fleet.Burst(stage, devs, 5, 0, Shape{Payload: PayloadRaw, Size: 64}); started != n {
		t.Errorf("burst started on %d devices", started)
	}
	cancel()
	sent := func(i int) int64 { return devs[i].Sent() }
	for deadline := time.Now().Add(10 * time.Second); !h.fleet.Idle() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !h.obs.Drain(ctx, sent, 3*time.Second) {
		e, u, l := h.obs.Lost(sent)
		t.Errorf("burst: expected %d unique %d lost %d", e, u, l)
	}
	if e, _, _ := h.obs.Lost(sent); e != 5*n {
		t.Errorf("burst sent %d, want %d", e, 5*n)
	}

	// Commands: 2 rounds over all devices (ON, then OFF).
	b, err := NewBackend(ctx, BackendConfig{
		Addr: h.fleet.cfg.Addr, ServerName: h.fleet.cfg.ServerName, RootCAs: h.fleet.cfg.RootCAs,
		ID: h.stack.Target.Backend, Cert: loadIdentity(t, h.stack.PKIDir, h.stack.Target.Backend), QoS: 1, Sink: h.sink,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	stage, cancel = context.WithTimeout(ctx, 2*time.Second)
	ids := make([]string, n)
	for i, d := range devs {
		ids[i] = d.ID
	}
	acked := b.Run(stage, PerSecond(n), ids[:n])
	cancel()
	if acked < n {
		t.Fatalf("backend: %d commands acknowledged, want ≥ %d", acked, n)
	}
	before := c.kinds[KindCommandReceived]
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		h.drain(&c)
		if c.kinds[KindCommandReceived]-before >= acked && int(h.obs.Tally().Relay) >= acked {
			break
		}
	}
	if got := c.kinds[KindCommandReceived] - before; got != acked {
		t.Errorf("devices received %d commands, backend sent %d", got, acked)
	}
	if got := h.obs.Tally().Relay; int(got) != acked {
		t.Errorf("observer saw %d relay status replies, want %d", got, acked)
	}
	if !devs[0].Relay() && acked < 2*n {
		t.Errorf("device 0's relay is off after an ON command")
	}
}

// TestQoS2: an MQTT 3.1.1 fleet at QoS 2 publishes through PUBREC, PUBREL
// and PUBCOMP, takes commands (at QoS 1), and the observer gets everything.
func TestQoS2(t *testing.T) {
	const n = 5
	h, ctx := newHarness(t, n, func(c *Config) { c.QoS = 2 })
	devs := h.fleet.Devices()
	h.fleet.Connect(ctx, devs, PerSecond(100))
	h.requireConnected(t, n)
	for _, d := range devs {
		for range 3 {
			if err := d.Publish(ctx, Shape{Payload: PayloadDHT11}); err != nil {
				t.Fatalf("publish at QoS 2: %v", err)
			}
		}
	}
	sent := func(i int) int64 { return devs[i].Sent() }
	if !h.obs.Drain(ctx, sent, 3*time.Second) {
		exp, uniq, lost := h.obs.Lost(sent)
		t.Fatalf("expected %d unique %d lost %d", exp, uniq, lost)
	}
	if exp, _, lost := h.obs.Lost(sent); exp != 3*n || lost != 0 {
		t.Errorf("expected %d lost %d, want %d and 0", exp, lost, 3*n)
	}
}
