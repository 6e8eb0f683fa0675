package security

import (
	"context"
	"fmt"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// watcher is the one long-lived read-only session of a run. It subscribes
// to devices/# and $SYS/# once (the observer's ACL grants both; '#' never
// matches $-topics, hence the second filter) and fans every message out to
// the taps of the checks currently running. One watcher for all checks keeps
// the suite to one observer identity however many checks run at once.
type watcher struct {
	c *client311

	mu   sync.Mutex
	taps map[*recorder]func(Msg) bool
	lost error
}

func (e *Env) startWatcher(ctx context.Context, id string) (*watcher, error) {
	w := &watcher{taps: map[*recorder]func(Msg) bool{}}
	c, err := e.connect311(ctx, id, func(o *mqtt.ClientOptions) {
		o.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			w.deliver(Msg{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...), Retained: m.Retained(), At: time.Now()})
		})
		o.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			w.mu.Lock()
			w.lost = fmt.Errorf("watcher connection lost: %w", err)
			w.mu.Unlock()
		})
	})
	if err != nil {
		return nil, err
	}
	w.c = c
	res, err := c.subscribe(ctx, "devices/#", "$SYS/#")
	if err != nil {
		c.close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	for f, q := range res {
		if q >= 0x80 {
			c.close()
			return nil, fmt.Errorf("subscription %s refused (0x%02x)", f, q)
		}
	}
	return w, nil
}

func (w *watcher) deliver(m Msg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for r, pred := range w.taps {
		if pred(m) {
			r.add(m)
		}
	}
}

// tap records, from now on, every watched message matching pred.
func (w *watcher) tap(pred func(Msg) bool) *recorder {
	r := newRecorder()
	w.mu.Lock()
	w.taps[r] = pred
	w.mu.Unlock()
	return r
}

func (w *watcher) untap(r *recorder) {
	w.mu.Lock()
	delete(w.taps, r)
	w.mu.Unlock()
}

func (w *watcher) lostErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lost
}

// barrierWait and canaryGrace are the proof's timing: the barrier must
// reach the watcher within barrierWait, and a canary still has canaryGrace
// after the barrier to show up before non-delivery is accepted.
const (
	barrierWait = 5 * time.Second
	canaryGrace = time.Second
)

// barrier has the legitimate owner publish a QoS1 message on topic and
// waits until the watcher has it, then canaryGrace more. An error means the
// positive control failed: the check must be Inconclusive.
func (e *Env) barrier(ctx context.Context, owner publisher, topic string) (time.Duration, error) {
	n := "barrier-" + nonce()
	tap := e.watch.tap(payloadHas(n))
	defer e.watch.untap(tap)
	start := time.Now()
	if err := owner.publish(ctx, topic, 1, false, []byte(n)); err != nil {
		return 0, fmt.Errorf("owner's barrier publish to %s failed: %w", topic, err)
	}
	if _, ok := tap.waitFor(ctx, barrierWait, payloadHas(n)); !ok {
		if err := e.watch.lostErr(); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("barrier on %s not seen by the watcher within %s", topic, barrierWait)
	}
	rtt := time.Since(start)
	if err := sleepCtx(ctx, canaryGrace); err != nil {
		return rtt, err
	}
	return rtt, nil
}

// canaryProof runs attack, which must publish payloads containing the
// returned canary nonce, then a barrier by owner on barrierTopic. It
// returns Fail if any canary reached the watcher, Inconclusive if the
// barrier did not, and Pass with what was attempted otherwise.
func (e *Env) canaryProof(ctx context.Context, owner publisher, barrierTopic string, attack func(canary string) (string, error)) Outcome {
	canary := "canary-" + nonce()
	tap := e.watch.tap(payloadHas(canary))
	defer e.watch.untap(tap)
	did, err := attack(canary)
	if err != nil {
		return inconclusive("attack could not be made: %v", err)
	}
	rtt, err := e.barrier(ctx, owner, barrierTopic)
	if seen := tap.all(); len(seen) > 0 {
		return fail("%s; canary DELIVERED to the watcher on %s", did, seen[0].Topic)
	}
	if err != nil {
		return inconclusive("%s; %v", did, err)
	}
	return pass("%s; canary not delivered (barrier by owner arrived in %s, +%s grace)", did, rtt.Round(time.Millisecond), canaryGrace)
}
