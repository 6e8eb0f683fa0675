package loadtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mqttstack/mqttstack/fleet"
	"github.com/mqttstack/mqttstack/host"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/loadtest/result"
)

// observers is the set of observer connections of one run. Observer j
// accounts for the contiguous slice slices[j] of the fleet's devices and
// subscribes to those devices' topics only, so each one gets its share of
// the message rate, and its backlog is watched on its own (fleet.Observer
// Watch): an observer that falls behind is reported as overloaded and its
// slice's shortfall as unverified, never as device loss.
type observers struct {
	obs    []*fleet.Observer
	slices [][]*fleet.Device
}

// startObservers connects one observer per identity in ids (certificates
// in the same order), each for its slice of devs, in parallel. On failure
// the ones that started are stopped again.
func startObservers(ctx context.Context, cfg fleet.ObserverConfig, ids []string, certs []*tls.Certificate, devs []*fleet.Device) (*observers, error) {
	k := len(ids)
	g := &observers{obs: make([]*fleet.Observer, k), slices: make([][]*fleet.Device, k)}
	for j := range k {
		g.slices[j] = devs[len(devs)*j/k : len(devs)*(j+1)/k]
	}
	errs := make([]error, k)
	var wg sync.WaitGroup
	for j := range k {
		c := cfg
		c.ID, c.Cert = ids[j], certs[j]
		c.Devices = make([]string, len(g.slices[j]))
		for i, d := range g.slices[j] {
			c.Devices[i] = d.ID
		}
		o, err := fleet.NewObserver(c)
		if err != nil {
			errs[j] = err
			continue
		}
		o.Watch(g.slices[j])
		g.obs[j] = o
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[j] = o.Start(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		g.stop()
		return nil, err
	}
	return g, nil
}

// stop disconnects every observer (those that never started are skipped).
func (g *observers) stop() {
	for _, o := range g.obs {
		if o != nil {
			o.Stop()
		}
	}
}

func sentOf(devs []*fleet.Device) func(int) int64 {
	return func(i int) int64 { return devs[i].Sent() }
}

// drain waits, under one deadline (ctx), until every observer received what
// its devices sent or went idle for idle; it reports whether all arrived.
// An overloaded observer is not waited for: what the broker dropped for it
// never comes.
func (g *observers) drain(ctx context.Context, idle time.Duration) bool {
	ok := true
	var mu sync.Mutex
	var wg sync.WaitGroup
	for j, o := range g.obs {
		if _, _, over := o.Backlog(); over {
			ok = false
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !o.Drain(ctx, sentOf(g.slices[j]), idle) {
				mu.Lock()
				ok = false
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ok
}

// delivery sums the observers' accounting. The shortfall of an overloaded
// observer is Unverified, not Lost.
func (g *observers) delivery() (result.Delivery, fleet.Tally) {
	var d result.Delivery
	var t fleet.Tally
	d.Observers = len(g.obs)
	for j, o := range g.obs {
		exp, uniq, lost := o.Lost(sentOf(g.slices[j]))
		d.Expected += exp
		d.Received += uniq
		_, peak, over := o.Backlog()
		if over {
			d.Unverified += lost
			d.Overloaded = append(d.Overloaded, fmt.Sprintf("%s (%d devices, peak backlog %d)", o.ID(), len(g.slices[j]), peak))
		} else {
			d.Lost += lost
		}
		ot := o.Tally()
		t.Messages += ot.Messages
		t.Unique += ot.Unique
		t.Duplicates += ot.Duplicates
		t.Reorders += ot.Reorders
		t.Foreign += ot.Foreign
		t.Invalid += ot.Invalid
		t.Online += ot.Online
		t.Offline += ot.Offline
		t.Relay += ot.Relay
	}
	d.Duplicates, d.Reorders = t.Duplicates, t.Reorders
	return d, t
}

// online reports whether any observer has seen a device's "online" status.
func (g *observers) online() bool {
	for _, o := range g.obs {
		if o.Tally().Online > 0 {
			return true
		}
	}
	return false
}

// backlogs describes each observer's peak backlog against the limit, for
// the run's log.
func (g *observers) backlogs(limit int64) string {
	var b strings.Builder
	for j, o := range g.obs {
		_, peak, over := o.Backlog()
		if j > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", o.ID(), peak)
		if over {
			b.WriteString(" OVERLOADED")
		}
	}
	fmt.Fprintf(&b, " (of %d the broker holds per client)", limit)
	return b.String()
}

// queueLimit is what the broker holds for one client before it drops:
// max_inflight_messages + max_queued_messages, read from the broker's
// configuration through h; without a host (or a readable config) the
// defaults this project renders (hostconfig.DefaultLimits).
func queueLimit(ctx context.Context, h host.Host) (limit int64, source string) {
	l := hostconfig.DefaultLimits()
	inflight, queued := int64(l.MaxInflightMessages), int64(l.MaxQueuedMessages)
	source = "the rendered defaults"
	if h != nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conf, err := hostconfig.ReadBrokerConfig(rctx, h, h.ConfigPath(host.Mosquitto))
		cancel()
		if err == nil {
			if v, ok := lastInt(conf, "max_inflight_messages"); ok {
				inflight = v
			}
			if v, ok := lastInt(conf, "max_queued_messages"); ok {
				queued = v
			}
			source = h.Name() + ":" + h.ConfigPath(host.Mosquitto)
		}
	}
	if queued <= 0 { // 0: Mosquitto queues without limit
		return 0, source
	}
	return inflight + queued, source
}

// lastInt returns the integer value of a mosquitto.conf directive, read
// through the one config reader (include_dir followed in the broker's
// order); the last one wins, as in Mosquitto.
func lastInt(conf *hostconfig.BrokerConfig, name string) (int64, bool) {
	vs := conf.Values(name)
	if len(vs) == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(vs[len(vs)-1]), 10, 64)
	return n, err == nil
}
