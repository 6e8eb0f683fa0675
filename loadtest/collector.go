package loadtest

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/mqttstack/mqttstack/fleet"
	"github.com/mqttstack/mqttstack/loadtest/result"
)

// collector is the one goroutine that owns the Recorder. Events arrive from
// the sink; everything else that touches the Recorder (phase changes,
// snapshots, usage samples, Finish) runs as a closure on the collector's
// goroutine through do, so the Recorder never needs a lock.
type collector struct {
	rec  *result.Recorder
	sink *fleet.Sink
	ctl  chan func(*result.Recorder)
	quit chan struct{}
	done chan struct{}

	// Owned by the collector goroutine: what the dead-broker rule needs.
	lastOK       time.Time
	failsSinceOK int64
	causesSince  map[string]int64
	connected    bool
}

// collectPause is how long the collector lets events gather after it was
// woken for one (see run); the sink buffers seconds of events.
const collectPause = time.Millisecond

func newCollector(rec *result.Recorder, sink *fleet.Sink) *collector {
	return &collector{
		rec: rec, sink: sink,
		ctl:         make(chan func(*result.Recorder)),
		quit:        make(chan struct{}),
		done:        make(chan struct{}),
		lastOK:      time.Now(),
		causesSince: map[string]int64{},
	}
}

func (c *collector) run() {
	defer close(c.done)
	for {
		select {
		case e := <-c.sink.Events():
			c.apply(e)
			// While devices publish, events come by the thousand a
			// second: let them gather for a moment instead of being woken
			// for each one. A wake-up readies an idle thread, which costs
			// the tool more CPU than handling the event (BenchmarkToolCost:
			// ~1.3 fewer goroutine runs per publish). Every event carries
			// its own time, so no figure changes; do and stop still apply
			// everything buffered first.
			time.Sleep(collectPause)
			c.drain()
		case f := <-c.ctl:
			// Events already buffered happened before the request: apply
			// them first, so a phase change does not take them along.
			c.drain()
			f(c.rec)
		case <-c.quit:
			c.drain()
			return
		}
	}
}

func (c *collector) drain() {
	for {
		select {
		case e := <-c.sink.Events():
			c.apply(e)
		default:
			return
		}
	}
}

// do runs f on the collector goroutine and waits for it.
func (c *collector) do(f func(*result.Recorder)) {
	done := make(chan struct{})
	select {
	case c.ctl <- func(r *result.Recorder) { f(r); close(done) }:
		<-done
	case <-c.done:
	}
}

// stop ends the collector after it has applied every buffered event.
func (c *collector) stop() {
	select {
	case <-c.quit:
	default:
		close(c.quit)
	}
	<-c.done
}

func (c *collector) apply(e fleet.Event) {
	r, at := c.rec, e.At
	switch e.Kind {
	case fleet.KindConnectAttempt:
		r.Add(result.ConnectAttempts, at, 1)
	case fleet.KindConnected:
		r.Add(result.Connects, at, 1)
		r.Add(result.Active, at, 1)
		if e.TCP >= 0 {
			r.Observe(result.TCP, at, e.TCP)
		}
		r.Observe(result.TLS, at, e.TLS)
		r.Observe(result.CONNACK, at, e.CONNACK)
		c.lastOK, c.failsSinceOK, c.connected = at, 0, true
		clear(c.causesSince)
	case fleet.KindConnectFailed:
		r.Add(result.ConnectFailures, at, 1)
		r.Error(e.Cause, at)
		c.failsSinceOK++
		c.causesSince[e.Cause]++
	case fleet.KindReconnected:
		r.Add(result.Reconnects, at, 1)
	case fleet.KindLost:
		r.Add(result.Disconnects, at, 1)
		r.Add(result.Active, at, -1)
		r.Error(e.Cause, at)
	case fleet.KindDisconnected:
		r.Add(result.Disconnects, at, 1)
		r.Add(result.Active, at, -1)
	case fleet.KindPublished:
		r.Add(result.Published, at, 1)
		if e.D > 0 {
			r.Observe(result.PUBACK, at, e.D)
		}
	case fleet.KindPublishFailed:
		r.Add(result.PublishFailures, at, 1)
		r.Error(e.Cause, at)
	case fleet.KindReceived:
		r.Add(result.Received, at, 1)
		r.Observe(result.E2E, at, e.D)
	case fleet.KindDuplicate:
		r.Add(result.Received, at, 1)
		r.Add(result.Duplicates, at, 1)
	case fleet.KindReorder:
		r.Add(result.Reorders, at, 1)
	case fleet.KindCommandSent:
		r.Add(result.CommandsSent, at, 1)
	case fleet.KindCommandReceived:
		r.Add(result.CommandsReceived, at, 1)
	case fleet.KindError:
		r.Error(e.Cause, at)
	}
	if e.Profile != "" {
		applyProfile(r, e)
	}
}

// health reads the dead-broker inputs (on the collector goroutine, via do).
func (c *collector) health(now time.Time, live result.Live) health {
	h := health{
		active: live.Active, peak: live.PeakActive,
		lastOK: c.lastOK, failsSinceOK: c.failsSinceOK, everConnected: c.connected,
	}
	if s := sortedCauses(c.causesSince); len(s) > 0 {
		h.topCause = s[0]
	}
	return h
}

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
