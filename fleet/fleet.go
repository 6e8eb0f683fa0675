package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Backoff is an exponential reconnect backoff: Min doubling per failed
// attempt up to Max, each wait multiplied by a random factor in
// [1-Jitter, 1+Jitter] so that a fleet dropped at once does not come back
// in lock step.
type Backoff struct {
	Min, Max time.Duration
	Jitter   float64
}

// Delay is the wait before attempt number attempt (0 = the first retry);
// u is a uniform random number in [0, 1). It is a pure function, tested
// without a clock or a random source.
func (b Backoff) Delay(attempt int, u float64) time.Duration {
	d := float64(b.Min) * math.Pow(2, float64(max(attempt, 0)))
	if d > float64(b.Max) {
		d = float64(b.Max)
	}
	j := min(max(b.Jitter, 0), 1)
	d *= 1 + j*(2*u-1)
	return time.Duration(d)
}

// Identity is what a device needs to authenticate: its certificate (mqtts)
// or its password (wss).
type Identity struct {
	ID       string
	Cert     *tls.Certificate
	Password string
	// Profile names the device's TLS profile ("" = the fleet's Go client);
	// it labels the device's events. Handshake, when set, is that
	// profile's handshake (mqtts only).
	Profile   string
	Handshake Handshake
}

// Options sizes a fleet's concurrency.
type Options struct {
	// MaxInFlight bounds connect attempts that have not resolved yet (first
	// connects and reconnects alike), so a slow broker slows the ramp
	// instead of overflowing its listen backlog. Default 256.
	MaxInFlight int
	// Workers publish telemetry and command replies; each waits for one
	// PUBACK at a time. Default 64.
	Workers int
	// Queue is the length of the job queue between schedulers (and command
	// handlers) and workers. Default 4096.
	Queue int
}

type jobKind uint8

const (
	jobPublish jobKind = iota // one telemetry message
	jobBurst                  // n telemetry messages back to back
	jobStatus                 // the status reply to a command
)

type job struct {
	d     *Device
	kind  jobKind
	n     int
	shape Shape
}

// Fleet is a set of devices that connect, publish and reconnect together.
//
// Lifetime: Start takes the run context, which stops the workers and every
// reconnect loop; the stage contexts passed to Connect, PublishEvery, Burst
// and Storm only stop new work from being scheduled. Close cancels the run,
// disconnects every device and waits for every goroutine the fleet started.
type Fleet struct {
	cfg     Config
	opts    Options
	devices []*Device

	tlsConfig *tls.Config // shared by every device's handshake
	noPing    bool        // tests only: prove the broker enforces the keep-alive

	inflight chan struct{} // connect semaphore
	jobs     chan job
	pending  atomic.Int64 // jobs queued or running

	mu      sync.Mutex // guards started, closed and wg.Add
	started bool
	closed  bool
	wg      sync.WaitGroup
	ctx     context.Context // the run context (see Start); stored because reconnects start from paho callbacks
	cancel  context.CancelFunc
}

// New builds a fleet of one device per identity. It refuses a bad config,
// an empty or duplicated identity and an identity without credentials.
func New(cfg Config, ids []Identity, opts Options) (*Fleet, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	if len(ids) == 0 {
		return nil, errors.New("fleet: no devices")
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 256
	}
	if opts.Workers <= 0 {
		opts.Workers = 64
	}
	if opts.Queue <= 0 {
		opts.Queue = 4096
	}
	f := &Fleet{
		cfg:      cfg,
		opts:     opts,
		devices:  make([]*Device, len(ids)),
		inflight: make(chan struct{}, opts.MaxInFlight),
		jobs:     make(chan job, opts.Queue),
	}
	f.tlsConfig = &tls.Config{
		RootCAs:              cfg.RootCAs,
		ServerName:           cfg.ServerName,
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: clientCertificate,
		// One classic key share, as the boards' TLS stacks (mbedTLS, wolfSSL)
		// send: Go's default adds a post-quantum X25519MLKEM768 share that
		// Mosquitto 2.0 (OpenSSL 3.0) ignores, and that would only cost the
		// tool a key generation per handshake.
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
		// No session cache: every attempt is a full handshake, as a board
		// that just booted does, and as the broker's cost should be measured.
	}
	seen := make(map[string]bool, len(ids))
	for i, id := range ids {
		if id.ID == "" {
			return nil, fmt.Errorf("fleet: identity %d: empty id", i)
		}
		if seen[id.ID] {
			return nil, fmt.Errorf("fleet: identity %q twice", id.ID)
		}
		seen[id.ID] = true
		if cfg.WSSURL == "" && id.Cert == nil {
			return nil, fmt.Errorf("fleet: device %s: no client certificate", id.ID)
		}
		if cfg.WSSURL != "" && id.Password == "" {
			return nil, fmt.Errorf("fleet: device %s: no password for wss", id.ID)
		}
		if cfg.WSSURL != "" && id.Handshake != nil {
			return nil, fmt.Errorf("fleet: device %s: a TLS profile (%s) needs mqtts, not wss", id.ID, id.Profile)
		}
		d := &Device{ID: id.ID, fleet: f, cert: id.Cert, password: id.Password, seed: seedOf(id.ID), profile: id.Profile, handshake: id.Handshake}
		if d.cert != nil && d.cert.Leaf != nil {
			// The handshake signs with the private key and sends the DER;
			// the parsed leaf would only cost ~2 KiB per device.
			c := *d.cert
			c.Leaf = nil
			d.cert = &c
		}
		if n := len(cfg.SourceAddrs); n > 0 {
			d.src = &net.TCPAddr{IP: cfg.SourceAddrs[i%n]}
		}
		f.devices[i] = d
	}
	return f, nil
}

func seedOf(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// Devices returns the fleet's devices in identity order.
func (f *Fleet) Devices() []*Device { return f.devices }

// Config returns the fleet's configuration (with defaults applied).
func (f *Fleet) Config() Config { return f.cfg }

// Start begins the run: ctx is the run context, which bounds every
// connection attempt, publish and reconnect loop of the fleet.
func (f *Fleet) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		return errors.New("fleet: started twice")
	}
	f.started = true
	f.ctx, f.cancel = context.WithCancel(ctx)
	for range f.opts.Workers {
		f.wg.Add(1)
		go f.worker()
	}
	if f.cfg.KeepAlive > 0 && !f.noPing {
		// Pings have their own queue and workers: a burst of publishes
		// must not delay them past the broker's 1.5 × keep-alive.
		pings := make(chan *Device, 1024)
		f.wg.Add(1)
		go f.pinger(pings)
		for range 4 {
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				for {
					select {
					case <-f.ctx.Done():
						return
					case d := <-pings:
						d.ping()
					}
				}
			}()
		}
	}
	return nil
}

// clientCertificate is the fleet's tls.Config.GetClientCertificate: the
// certificate of the device whose handshake this is.
func clientCertificate(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if d, ok := cri.Context().Value(deviceKey{}).(*Device); ok && d.cert != nil {
		return d.cert, nil
	}
	return &tls.Certificate{}, nil // no certificate: the broker refuses, and says so
}

// pinger sends every connected device a PINGREQ once per keep-alive
// period, spread evenly over it (see keepalive.go), through a few ping
// workers so that one stuck socket does not hold up the others.
func (f *Fleet) pinger(pings chan<- *Device) {
	defer f.wg.Done()
	n := len(f.devices)
	pace(f.ctx, Rate{Freq: n, Per: f.cfg.KeepAlive}, math.MaxInt, func(i int) bool {
		if d := f.devices[i%n]; d.Connected() {
			select {
			case pings <- d:
			case <-f.ctx.Done():
				return false
			}
		}
		return true
	})
}

// track registers a goroutine the fleet must wait for; false once the fleet
// is closing (the caller then must not start it).
func (f *Fleet) track() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || !f.started {
		return false
	}
	f.wg.Add(1)
	return true
}

func (f *Fleet) worker() {
	defer f.wg.Done()
	for {
		select {
		case <-f.ctx.Done():
			return
		case j := <-f.jobs:
			switch j.kind {
			case jobPublish:
				j.d.Publish(f.ctx, j.shape)
			case jobBurst:
				j.d.burst(f.ctx, j.n, j.shape)
			case jobStatus:
				j.d.publishStatus(f.ctx)
			}
			f.pending.Add(-1)
		}
	}
}

// enqueue hands a job to the workers without blocking (paho callbacks call
// it); a full queue drops the job and counts it as an error.
func (f *Fleet) enqueue(j job) {
	f.pending.Add(1)
	select {
	case f.jobs <- j:
	default:
		f.pending.Add(-1)
		f.cfg.Sink.Emit(Event{Kind: KindError, At: time.Now(), Cause: "tool: job queue full"})
	}
}

// submit hands a job to the workers, waiting while they are all busy (the
// schedule then falls behind, which the publish rate shows).
func (f *Fleet) submit(ctx context.Context, j job) bool {
	f.pending.Add(1)
	select {
	case f.jobs <- j:
		return true
	case <-ctx.Done():
	case <-f.ctx.Done():
	}
	f.pending.Add(-1)
	return false
}

func (f *Fleet) acquire(ctx context.Context) bool {
	select {
	case f.inflight <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (f *Fleet) release() { <-f.inflight }

// Connect connects devs at rate r with at most Options.MaxInFlight attempts
// in flight, and returns once every device it started has connected or
// failed its first attempt (a device that failed keeps retrying in the
// background with its backoff). stage stops starting new devices; attempts
// under way run on the run context. It returns how many devices it started.
func (f *Fleet) Connect(stage context.Context, devs []*Device, r Rate) int {
	if err := r.Validate(); err != nil || !f.track() {
		return 0
	}
	defer f.wg.Done()
	var first sync.WaitGroup
	n := pace(stage, r, len(devs), func(i int) bool {
		if !f.acquire(stage) {
			return false
		}
		if !f.track() {
			f.release()
			return false
		}
		d := devs[i]
		first.Add(1)
		go func() {
			defer f.wg.Done()
			d.emit(Event{Kind: KindConnectAttempt})
			err := d.connect(f.ctx)
			f.release()
			first.Done()
			if err != nil && f.ctx.Err() == nil {
				f.loop(d)
			}
		}()
		return true
	})
	first.Wait()
	return n
}

// reconnect starts d's reconnect loop on the calling goroutine (paho's
// connection-lost goroutine), tracked by the fleet.
func (f *Fleet) reconnect(d *Device) {
	if !f.track() {
		return
	}
	defer f.wg.Done()
	f.loop(d)
}

// loop reconnects d with backoff until it is connected or the run ends. At
// most one loop runs per device.
func (f *Fleet) loop(d *Device) {
	if !d.looping.CompareAndSwap(false, true) {
		return
	}
	for {
		f.retry(d)
		d.looping.Store(false)
		// A loss between our success and the Store above found the loop
		// still running and left it to us.
		if d.Connected() || f.ctx.Err() != nil || !d.looping.CompareAndSwap(false, true) {
			return
		}
	}
}

func (f *Fleet) retry(d *Device) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for attempt := 0; f.ctx.Err() == nil; attempt++ {
		w := f.cfg.Backoff.Delay(attempt, rand.Float64())
		if timer == nil {
			timer = time.NewTimer(w)
		} else {
			timer.Reset(w)
		}
		select {
		case <-f.ctx.Done():
			return
		case <-timer.C:
		}
		if !f.acquire(f.ctx) {
			return
		}
		d.emit(Event{Kind: KindConnectAttempt})
		err := d.connect(f.ctx)
		f.release()
		if err == nil {
			d.emit(Event{Kind: KindReconnected})
			return
		}
	}
}

// PublishEvery makes every connected device of devs publish one telemetry
// message per interval, staggered evenly, until stage ends. Devices that are
// down skip their turn (a board without a session has nothing to send to).
// It returns how many publishes it scheduled.
func (f *Fleet) PublishEvery(stage context.Context, devs []*Device, interval time.Duration, sh Shape) int {
	if len(devs) == 0 || interval <= 0 || !f.track() {
		return 0
	}
	defer f.wg.Done()
	r := Rate{Freq: len(devs), Per: interval}
	scheduled := 0
	pace(stage, r, bound(stage, r), func(i int) bool {
		d := devs[i%len(devs)]
		if !d.Connected() {
			return true
		}
		if !f.submit(stage, job{d: d, kind: jobPublish, shape: sh}) {
			return false
		}
		scheduled++
		return true
	})
	return scheduled
}

// Burst makes every connected device of devs publish count messages back to
// back, the devices starting spread evenly over within (0: all at once).
func (f *Fleet) Burst(stage context.Context, devs []*Device, count int, within time.Duration, sh Shape) int {
	if len(devs) == 0 || count <= 0 || !f.track() {
		return 0
	}
	defer f.wg.Done()
	r := Rate{Freq: len(devs), Per: within}
	if within <= 0 {
		r = Rate{Freq: 1, Per: time.Nanosecond}
	}
	started := 0
	pace(stage, r, len(devs), func(i int) bool {
		if !devs[i].Connected() {
			return true
		}
		if !f.submit(stage, job{d: devs[i], kind: jobBurst, n: count, shape: sh}) {
			return false
		}
		started++
		return true
	})
	return started
}

// Storm drops the connections of devs abruptly (no DISCONNECT: the broker
// publishes their wills), spread evenly over within; each device then
// reconnects with its own backoff. It returns how many it dropped.
func (f *Fleet) Storm(stage context.Context, devs []*Device, within time.Duration) int {
	if len(devs) == 0 || !f.track() {
		return 0
	}
	defer f.wg.Done()
	r := Rate{Freq: len(devs), Per: within}
	if within <= 0 {
		r = Rate{Freq: 1, Per: time.Nanosecond}
	}
	dropped := 0
	pace(stage, r, len(devs), func(i int) bool {
		if devs[i].Drop() {
			dropped++
		}
		return true
	})
	return dropped
}

// Idle reports whether no publish is queued or running.
func (f *Fleet) Idle() bool { return f.pending.Load() == 0 }

// ConnectedCount is how many devices have a session now.
func (f *Fleet) ConnectedCount() int {
	n := 0
	for _, d := range f.devices {
		if d.Connected() {
			n++
		}
	}
	return n
}

// Close ends the run of the fleet: it cancels the run context (stopping
// workers and reconnect loops), disconnects every device cleanly (waiting at
// most quiesce for each, in parallel), and waits for every goroutine the
// fleet started. Calling it twice is fine.
func (f *Fleet) Close(quiesce time.Duration) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	started := f.started
	f.mu.Unlock()
	if started {
		f.cancel()
	}
	var wg sync.WaitGroup
	next := make(chan *Device)
	for range min(64, len(f.devices)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range next {
				d.Disconnect(quiesce)
			}
		}()
	}
	for _, d := range f.devices {
		next <- d
	}
	close(next)
	wg.Wait()
	f.wg.Wait()
	// A reconnect that won the race against Close may have connected
	// after its device was disconnected above.
	for _, d := range f.devices {
		d.Disconnect(quiesce)
	}
}
