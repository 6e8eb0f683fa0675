package fleet

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttstack/mqttstack/internal/mqttwire"
)

// Topics an observer subscribes to, per device: an observer hears only its
// own slice of the fleet, so several observers split the broker's delivery
// load (one QoS 1 subscriber gets max_inflight_messages unacknowledged and
// max_queued_messages queued, and the broker drops the rest).
func telemetryTopic(id string) string { return "devices/" + id + "/telemetry" }
func statusTopic(id string) string    { return "devices/" + id + "/status" }

// subscribeBatch is how many filters go into one SUBSCRIBE: 2 × 100 topics
// of ~25 bytes stay far below the broker's max_packet_size (16 KiB).
const subscribeBatch = 200

// ObserverConfig describes a read-only identity watching a set of devices.
type ObserverConfig struct {
	Addr       string // host:port of the mTLS listener
	ServerName string
	RootCAs    *x509.CertPool
	// ID and Cert are the observer's identity (CONTRACTS.md: "observer", or
	// "observer-<k+1>" for shard k of a sharded run).
	ID   string
	Cert *tls.Certificate
	// Devices are the ids this observer accounts for and subscribes to
	// (telemetry and status of each); telemetry of any other device (one
	// that reaches it anyway) is counted as foreign and otherwise ignored.
	Devices []string
	// QoS of the subscriptions (1 by default for a lossless observer).
	QoS byte
	// QueueLimit is what the broker holds for one client before it drops:
	// max_inflight_messages + max_queued_messages (Mosquitto's defaults
	// here: 20 + 1000). When the backlog (messages its devices' broker
	// acknowledged that the observer has not received yet) reaches it, the
	// observer is overloaded: its slice's shortfall is unverified, not
	// lost. 0 disables the watch.
	QueueLimit     int64
	KeepAlive      time.Duration
	ConnectTimeout time.Duration
	Backoff        Backoff
	Sink           *Sink
}

// Tally is what an observer saw, over all its devices.
type Tally struct {
	// Messages counts telemetry messages of its devices, duplicates included.
	Messages   int64
	Unique     int64
	Duplicates int64
	Reorders   int64
	// Foreign counts telemetry of devices it does not account for.
	Foreign int64
	// Invalid counts telemetry it could not parse.
	Invalid int64
	// Online, Offline and Relay count status messages: "online", "offline"
	// (the will, or a retained one), and relay replies to commands.
	Online, Offline, Relay int64
}

// Observer subscribes to the telemetry and status of devices and keeps, per
// device, a SeqTracker. Its handlers run on paho's router goroutine and
// never block: they update the trackers under a mutex and emit events.
type Observer struct {
	cfg   ObserverConfig
	index map[string]int

	mu     sync.Mutex // guards seqs, tally, last, client, stopped
	seqs   []SeqTracker
	tally  Tally
	last   time.Time // when the last telemetry message arrived
	client *obsConn

	// The backlog watch (see ObserverConfig.QueueLimit): acked counts what
	// the broker acknowledged to this observer's devices (Device.Publish),
	// received the distinct messages of theirs that arrived.
	acked, received, peak atomic.Int64
	overloaded            atomic.Bool

	ctx    context.Context // the observer's life: Start until Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewObserver checks cfg and indexes the devices.
func NewObserver(cfg ObserverConfig) (*Observer, error) {
	var errs []error
	if cfg.ID == "" {
		errs = append(errs, errors.New("observer: id required"))
	}
	if cfg.Cert == nil {
		errs = append(errs, errors.New("observer: certificate required"))
	}
	if cfg.RootCAs == nil || cfg.ServerName == "" || cfg.Addr == "" {
		errs = append(errs, errors.New("observer: broker address, server name and root CAs required"))
	}
	if cfg.QoS > 2 {
		errs = append(errs, fmt.Errorf("observer: qos %d", cfg.QoS))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.Backoff.Min <= 0 {
		cfg.Backoff = Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.2}
	}
	o := &Observer{cfg: cfg, index: make(map[string]int, len(cfg.Devices)), seqs: make([]SeqTracker, len(cfg.Devices))}
	for i, id := range cfg.Devices {
		o.index[id] = i
	}
	return o, nil
}

// Start connects and subscribes, and returns once both subscriptions are
// granted. After a lost connection the observer reconnects by itself (and
// reports the loss as an error event) until Stop or ctx ends.
func (o *Observer) Start(ctx context.Context) error {
	o.ctx, o.cancel = context.WithCancel(ctx)
	if err := o.connect(); err != nil {
		o.cancel()
		return err
	}
	return nil
}

func (o *Observer) connect() error {
	cfg := &o.cfg
	actx, cancel := context.WithTimeout(o.ctx, cfg.ConnectTimeout)
	defer cancel()
	c, err := dialObserver(actx, o)
	if err != nil {
		return fmt.Errorf("observer %s: connect: %w", cfg.ID, err)
	}
	// The reader runs before the subscriptions: retained statuses arrive
	// right after each SUBACK.
	o.mu.Lock()
	if o.ctx.Err() != nil { // Stop ran meanwhile
		o.mu.Unlock()
		c.close()
		return o.ctx.Err()
	}
	o.client = c
	o.wg.Add(2)
	o.mu.Unlock()
	go func() {
		defer o.wg.Done()
		c.run(o.lost)
	}()
	go func() {
		defer o.wg.Done()
		c.writer(cfg.KeepAlive)
	}()
	if err := o.subscribe(actx, c); err != nil {
		o.mu.Lock()
		if o.client == c {
			o.client = nil
		}
		o.mu.Unlock()
		c.close()
		return err
	}
	return nil
}

// subscribe subscribes c to the telemetry and status topics of the
// observer's devices, in batches, and fails if the broker refuses one.
func (o *Observer) subscribe(ctx context.Context, c *obsConn) error {
	cfg := &o.cfg
	filters := make([]mqttwire.Subscription, 0, subscribeBatch)
	flush := func() error {
		if len(filters) == 0 {
			return nil
		}
		codes, err := c.subscribe(ctx, filters)
		if err != nil {
			return fmt.Errorf("observer %s: subscribe: %w", cfg.ID, err)
		}
		for i, q := range codes {
			if q == 0x80 && i < len(filters) {
				return fmt.Errorf("observer %s: subscription to %s refused", cfg.ID, filters[i].Filter)
			}
		}
		filters = filters[:0]
		return nil
	}
	for _, id := range cfg.Devices {
		filters = append(filters, mqttwire.Subscription{Filter: telemetryTopic(id), QoS: cfg.QoS}, mqttwire.Subscription{Filter: statusTopic(id), QoS: cfg.QoS})
		if len(filters) >= subscribeBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// lost reconnects the observer (on the lost connection's reader goroutine,
// which the observer tracks).
func (o *Observer) lost(c *obsConn, err error) {
	o.mu.Lock()
	if o.client != c || o.ctx.Err() != nil {
		o.mu.Unlock()
		return
	}
	o.client = nil
	o.mu.Unlock()
	c.conn.Close()
	o.cfg.Sink.Emit(Event{Kind: KindError, At: time.Now(), Cause: "observer: " + Classify(StageLost, err)})
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for attempt := 0; ; attempt++ {
		t.Reset(o.cfg.Backoff.Delay(attempt, rand.Float64()))
		select {
		case <-o.ctx.Done():
			return
		case <-t.C:
		}
		if err := o.connect(); err == nil {
			return
		} else if o.ctx.Err() == nil {
			o.cfg.Sink.Emit(Event{Kind: KindError, At: time.Now(), Cause: "observer: reconnect failed"})
		}
	}
}

// deviceOf returns the <id> of devices/<id>/<suffix>.
func deviceOf(topic, suffix string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, "devices/")
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, "/"+suffix)
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}

// onMessage handles one message on the connection's reader goroutine: it
// never blocks (the trackers take a mutex, events go to a non-blocking sink).
func (o *Observer) onMessage(topic, payload []byte) {
	id, telemetry, ok := topicID(topic)
	if !ok {
		return
	}
	if telemetry {
		o.onTelemetry(id, payload)
	} else {
		o.onStatus(id, payload)
	}
}

func (o *Observer) onTelemetry(id, payload []byte) {
	now := time.Now()
	i, mine := o.index[string(id)] // index is read-only after NewObserver
	if !mine {
		o.mu.Lock()
		o.tally.Foreign++
		o.mu.Unlock()
		return
	}
	seq, ts, err := ParseTelemetry(payload)
	if err != nil {
		o.mu.Lock()
		o.tally.Invalid++
		o.mu.Unlock()
		o.cfg.Sink.Emit(Event{Kind: KindError, At: now, Cause: "observer: invalid telemetry"})
		return
	}
	o.mu.Lock()
	out := o.seqs[i].Observe(seq)
	o.tally.Messages++
	o.last = now
	switch out {
	case SeqNew:
		o.tally.Unique++
	case SeqLate, SeqStale:
		o.tally.Unique++
		o.tally.Reorders++
	case SeqDuplicate:
		o.tally.Duplicates++
	case SeqInvalid:
		o.tally.Invalid++
	}
	o.mu.Unlock()
	switch out {
	case SeqNew, SeqLate, SeqStale:
		o.received.Add(1)
		o.cfg.Sink.Emit(Event{Kind: KindReceived, At: now, D: now.Sub(time.Unix(0, ts))})
		if out != SeqNew {
			o.cfg.Sink.Emit(Event{Kind: KindReorder, At: now})
		}
	case SeqDuplicate:
		o.cfg.Sink.Emit(Event{Kind: KindDuplicate, At: now})
	}
}

var (
	statusOnline  = []byte("online")
	statusOffline = []byte("offline")
	statusRelay   = []byte(`"relay"`)
)

func (o *Observer) onStatus(id, p []byte) {
	if _, mine := o.index[string(id)]; !mine {
		return
	}
	o.mu.Lock()
	switch {
	case bytes.Equal(p, statusOnline):
		o.tally.Online++
	case bytes.Equal(p, statusOffline):
		o.tally.Offline++
	case bytes.Contains(p, statusRelay):
		o.tally.Relay++
	}
	o.mu.Unlock()
}

// Watch makes the observer's devices among devs report every acknowledged
// telemetry message to it, so it can watch its backlog. Call it before the
// fleet starts.
func (o *Observer) Watch(devs []*Device) {
	for _, d := range devs {
		if _, mine := o.index[d.ID]; mine {
			d.observer = o
		}
	}
}

// ackedOne is called by a watched device for every acknowledged telemetry
// message: the backlog is what the broker took for this observer's devices
// minus what reached the observer, i.e. at most what it holds for the
// observer (in flight and queued) plus what it dropped for it.
func (o *Observer) ackedOne() {
	b := o.acked.Add(1) - o.received.Load()
	for {
		p := o.peak.Load()
		if b <= p || o.peak.CompareAndSwap(p, b) {
			break
		}
	}
	if lim := o.cfg.QueueLimit; lim > 0 && b >= lim && o.overloaded.CompareAndSwap(false, true) {
		o.cfg.Sink.Emit(Event{Kind: KindError, At: time.Now(), Cause: CauseObserverOverload})
	}
}

// CauseObserverOverload is the error cause of an observer whose backlog
// reached the broker's per-client queue: the broker may have dropped
// messages for the observer, which says nothing about the devices.
const CauseObserverOverload = "observer overload: backlog reached the broker's per-client queue (max_inflight_messages + max_queued_messages)"

// Backlog reports the backlog now, its peak, and whether it ever reached
// ObserverConfig.QueueLimit (then Lost of this observer is unverified).
func (o *Observer) Backlog() (now, peak int64, overloaded bool) {
	return o.acked.Load() - o.received.Load(), o.peak.Load(), o.overloaded.Load()
}

// ID is the observer's identity.
func (o *Observer) ID() string { return o.cfg.ID }

// Tally returns what the observer has seen so far.
func (o *Observer) Tally() Tally {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.tally
}

// Unique is how many distinct telemetry messages of device i (index in
// ObserverConfig.Devices) arrived.
func (o *Observer) Unique(i int) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seqs[i].Unique
}

// Lost sums, over the devices, what each sent (sent(i): messages the broker
// acknowledged) minus the distinct messages received, never below zero per
// device. A message the broker took without acknowledging (its connection
// died) may still arrive; it then masks nothing, since it is not expected.
func (o *Observer) Lost(sent func(i int) int64) (expected, unique, lost int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range o.seqs {
		s, u := sent(i), o.seqs[i].Unique
		expected += s
		unique += u
		if s > u {
			lost += s - u
		}
	}
	return expected, unique, lost
}

// Drain waits until every device's sent count has arrived, or no telemetry
// has arrived for idle, or ctx ends. It reports whether everything arrived.
func (o *Observer) Drain(ctx context.Context, sent func(i int) int64, idle time.Duration) bool {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for {
		if _, _, lost := o.Lost(sent); lost == 0 {
			return true
		}
		o.mu.Lock()
		last := o.last
		o.mu.Unlock()
		if last.Before(start) {
			last = start
		}
		if time.Since(last) > idle {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// Stop disconnects the observer and waits for its reconnect loop, if any.
func (o *Observer) Stop() {
	if o.cancel == nil {
		return
	}
	o.cancel()
	o.mu.Lock()
	c := o.client
	o.client = nil
	o.mu.Unlock()
	if c != nil {
		c.close()
	}
	o.wg.Wait()
}
