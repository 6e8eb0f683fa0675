package security

import (
	"context"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// sesBackend is the backend identity SES-02 uses to queue a message for an
// offline device (only a backend may write into another device's subtree).
const sesBackend = "backend-8"

func sesChecks() []Check {
	return []Check{
		{
			ID: "SES-01", Tier: 1, Title: "Client-id takeover cannot kick another device",
			Attack: "devA is connected; devB (own certificate) connects with client id = devA",
			Fix:    "use_username_as_clientid true on every device listener",
			Proves: "a device connecting with another device's client id does not disconnect it",
			Gaps:   "with use_identity_as_username alone 2.0.11 kicks the victim and may fire its Will",
			Guards: "F6",
			Actors: []string{"a", "b"},
			Run:    runSES01,
		},
		{
			ID: "SES-02", Tier: 1, Title: "Persistent-session hijack neither leaks nor destroys queued messages",
			Attack: "devA leaves a clean=false session; the backend queues a QoS1 message for it; devB connects with devA's client id, clean=false, for 2s; devA reconnects",
			Fix:    "use_username_as_clientid true",
			Proves: "a device resuming another device's persistent session neither receives nor destroys its queued message",
			Gaps:   "without use_username_as_clientid the takeover filters the queue against the intruder's ACL: silent loss",
			Guards: "F6",
			Actors: []string{"a", "b"},
			Run:    runSES02,
		},
		{
			ID: "SES-03", Tier: 2, Title: "Persistent-session sprawl is bounded",
			Attack: "one device connects 200 times with random ids, clean=false",
			Fix:    "use_username_as_clientid true; persistent_client_expiration; max_queued_messages",
			Proves: "one device connecting with many random client ids and clean session 0 leaves at most one stored session",
			Guards: "F6 (session sprawl)",
			Actors: []string{"b"},
			Run:    runSES03,
		},
	}
}

func runSES02(ctx context.Context, e *Env) Outcome {
	a, b := e.Actor("SES-02", "a"), e.Actor("SES-02", "b")
	persistent := func(o *mqtt.ClientOptions) { o.SetCleanSession(false) }
	dev, err := e.connect311(ctx, a, persistent)
	if err != nil {
		return inconclusive("%v", err)
	}
	if _, err := dev.subscribe(ctx, "devices/"+a+"/#"); err != nil {
		dev.close()
		return inconclusive("subscribe: %v", err)
	}
	dev.close()
	// Wipe both sessions afterwards so reruns start clean.
	defer func() {
		for _, id := range []string{a, b} {
			if c, err := e.connect311(context.WithoutCancel(ctx), id); err == nil {
				c.close()
			}
		}
	}()
	e.backendMu.Lock()
	defer e.backendMu.Unlock()
	backend, err := e.connect311(ctx, sesBackend)
	if err != nil {
		return inconclusive("backend %s: %v", sesBackend, err)
	}
	defer backend.close()
	inbox := "inbox-" + nonce()
	tap := e.watch.tap(payloadHas(inbox))
	defer e.watch.untap(tap)
	if err := backend.publish(ctx, "devices/"+a+"/inbox", 1, false, []byte(inbox)); err != nil {
		return inconclusive("backend publish: %v", err)
	}
	if _, ok := tap.waitFor(ctx, barrierWait, payloadHas(inbox)); !ok {
		return inconclusive("positive control: the watcher did not see the backend's message")
	}
	att, err := e.connect311(ctx, b, persistent, func(o *mqtt.ClientOptions) { o.SetClientID(a) })
	if err != nil {
		return inconclusive("attacker: %v", err)
	}
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		att.close()
		return inconclusive("%v", err)
	}
	got := att.rec.all()
	att.close()
	if len(got) > 0 {
		return fail("hijacker RECEIVED %s from devA's session", got[0].Topic)
	}
	dev2, err := e.connect311(ctx, a, persistent)
	if err != nil {
		return inconclusive("victim reconnect: %v", err)
	}
	defer dev2.close()
	if _, ok := dev2.rec.waitFor(ctx, barrierWait, payloadHas(inbox)); !ok {
		return fail("devA's queued QoS1 message was LOST after %s resumed its client id (silent data loss, F6)", b)
	}
	return pass("hijacker with devA's client id got nothing; devA still received its queued message after reconnect")
}

// runSES01 runs SES-01 (its catalog entry is in this file).
func runSES01(ctx context.Context, e *Env) Outcome {
	a, b := e.Actor("SES-01", "a"), e.Actor("SES-01", "b")
	victim, err := e.connect311(ctx, a)
	if err != nil {
		return inconclusive("%v", err)
	}
	defer victim.close()
	att, err := e.connect311(ctx, b, func(o *mqtt.ClientOptions) { o.SetClientID(a) })
	if err != nil {
		return inconclusive("attacker with client id %q could not connect: %v", a, err)
	}
	defer att.close()
	select {
	case err := <-victim.lost:
		return fail("victim %s KICKED when %s connected with its client id: %v", a, b, err)
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
		return inconclusive("%v", ctx.Err())
	}
	if _, err := e.barrier(ctx, victim, "devices/"+a+"/telemetry"); err != nil {
		select {
		case lerr := <-victim.lost:
			return fail("victim %s lost its connection after the takeover attempt: %v", a, lerr)
		default:
		}
		return inconclusive("victim's ping-publish: %v", err)
	}
	return pass("%s connected with client id %q; victim stayed connected 2s and its QoS1 publish round-tripped", b, a)
}
