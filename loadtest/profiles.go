package loadtest

import (
	"github.com/mqttstack/mqttstack/fleet"
	"github.com/mqttstack/mqttstack/loadtest/result"
)

// applyProfile adds a device event to its profile's part of the result
// (fleet.profiles): connects, failures by cause, TCP/TLS/CONNACK and PUBACK
// latencies. Called by the collector, the recorder's single writer.
func applyProfile(r *result.Recorder, e fleet.Event) {
	p, at := e.Profile, e.At
	switch e.Kind {
	case fleet.KindConnectAttempt:
		r.ProfileAdd(p, result.ConnectAttempts, at, 1)
	case fleet.KindConnected:
		r.ProfileAdd(p, result.Connects, at, 1)
		if e.TCP >= 0 {
			r.ProfileObserve(p, result.TCP, at, e.TCP)
		}
		r.ProfileObserve(p, result.TLS, at, e.TLS)
		r.ProfileObserve(p, result.CONNACK, at, e.CONNACK)
	case fleet.KindConnectFailed:
		r.ProfileAdd(p, result.ConnectFailures, at, 1)
		r.ProfileError(p, e.Cause, at)
	case fleet.KindReconnected:
		r.ProfileAdd(p, result.Reconnects, at, 1)
	case fleet.KindLost:
		r.ProfileAdd(p, result.Disconnects, at, 1)
		r.ProfileError(p, e.Cause, at)
	case fleet.KindPublished:
		r.ProfileAdd(p, result.Published, at, 1)
		if e.D > 0 {
			r.ProfileObserve(p, result.PUBACK, at, e.D)
		}
	case fleet.KindPublishFailed:
		r.ProfileAdd(p, result.PublishFailures, at, 1)
		r.ProfileError(p, e.Cause, at)
	}
}
