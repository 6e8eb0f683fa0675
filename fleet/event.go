package fleet

import (
	"sync/atomic"
	"time"
)

// Kind says what an Event reports.
type Kind uint8

// Event kinds. The collector maps them onto its counters and histograms.
const (
	// KindConnectAttempt: a connect attempt (first connect or reconnect) started.
	KindConnectAttempt Kind = iota + 1
	// KindConnected: an attempt succeeded; TCP, TLS and CONNACK hold its phases.
	KindConnected
	// KindConnectFailed: an attempt failed; Cause says where and why.
	KindConnectFailed
	// KindReconnected: a lost device is back (after KindConnected of the same attempt).
	KindReconnected
	// KindLost: an established connection dropped; Cause says why.
	KindLost
	// KindDisconnected: a device disconnected on purpose (end of run, storm).
	KindDisconnected
	// KindPublished: a telemetry message was acknowledged; D is the PUBACK latency.
	KindPublished
	// KindPublishFailed: a telemetry publish failed; Cause says why.
	KindPublishFailed
	// KindReceived: the observer received a telemetry message for the first time; D is end-to-end latency.
	KindReceived
	// KindDuplicate: the observer received a sequence number it had seen.
	KindDuplicate
	// KindReorder: the observer received a sequence number lower than one it had seen.
	KindReorder
	// KindCommandSent: the backend's command was acknowledged by the broker.
	KindCommandSent
	// KindCommandReceived: a device received a command and acted on it.
	KindCommandReceived
	// KindError: a failure that is none of the above (e.g. a dropped job); Cause says what.
	KindError
)

var kindNames = [...]string{
	KindConnectAttempt:  "connect-attempt",
	KindConnected:       "connected",
	KindConnectFailed:   "connect-failed",
	KindReconnected:     "reconnected",
	KindLost:            "lost",
	KindDisconnected:    "disconnected",
	KindPublished:       "published",
	KindPublishFailed:   "publish-failed",
	KindReceived:        "received",
	KindDuplicate:       "duplicate",
	KindReorder:         "reorder",
	KindCommandSent:     "command-sent",
	KindCommandReceived: "command-received",
	KindError:           "error",
}

// String names the kind for logs and tests.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "kind?"
}

// Event is one measurement. It is a small value so that thousands per second
// cost the devices nothing but a channel send.
type Event struct {
	Kind Kind
	At   time.Time
	// TCP, TLS and CONNACK are the phases of a successful connect attempt.
	TCP, TLS, CONNACK time.Duration
	// D is the PUBACK latency (KindPublished) or the end-to-end latency (KindReceived).
	D time.Duration
	// Cause classifies a failure, from a small fixed vocabulary (see Classify).
	Cause string
	// Profile is the device's TLS profile ("" for the fleet's Go client
	// and for the observer and backend), for per-profile breakdowns.
	Profile string
}

// Sink carries events from devices, the observer and the backend to one
// collector. Emit never blocks: when the buffer is full the event is dropped
// and counted, because blocking would stall a paho callback (and with it the
// device's whole connection).
type Sink struct {
	ch      chan Event
	dropped atomic.Int64
}

// NewSink returns a sink buffering up to size events.
func NewSink(size int) *Sink {
	if size < 1 {
		size = 1
	}
	return &Sink{ch: make(chan Event, size)}
}

// Emit hands e to the collector, or drops and counts it if the buffer is full.
// A nil sink discards everything.
func (s *Sink) Emit(e Event) {
	if s == nil {
		return
	}
	select {
	case s.ch <- e:
	default:
		s.dropped.Add(1)
	}
}

// Events is the collector's end of the sink. It is never closed: the
// collector stops on its own context once every producer has finished.
func (s *Sink) Events() <-chan Event { return s.ch }

// Dropped reports how many events were discarded because the buffer was full.
func (s *Sink) Dropped() int64 { return s.dropped.Load() }
