package security

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// confInt returns the first integer value of key in the broker's config
// on the host, or def without host access.
func (e *Env) confInt(ctx context.Context, key string, def int) int {
	conf, err := e.brokerConf(ctx)
	if err != nil {
		return def
	}
	for _, d := range conf {
		if d.key == key {
			if n, err := strconv.Atoi(d.value); err == nil {
				return n
			}
		}
	}
	return def
}

// mayFlood says whether a flood may be sent to this target.
func (e *Env) mayFlood() bool { return e.T.Local != nil || e.opts.AllowLoad }

func dosChecks() []Check {
	return []Check{
		{
			ID: "DOS-01", Tier: 1, Title: "Incoming QoS2 in-flight flood is bounded",
			Attack: "v5 raw client sends (Receive Maximum + max_queued_messages + 200, at most 3000) QoS2 PUBLISHes to its own topic and never PUBRELs; a second client must still get CONNACK+PINGRESP in 2s",
			Fix:    "max_inflight_messages (advertised as Receive Maximum), max_queued_messages, max_queued_bytes, max_packet_size",
			Proves: "a client flooding unreleased QoS2 publishes is capped (Receive Maximum, then quota exceeded) and another client is still served",
			Gaps:   "3.1.1 clients get plain PUBRECs: the excess is dropped silently",
			Actors: []string{"b", "live"},
			Run:    runDOS01,
		},
		{
			ID:        "DOS-02",
			Tier:      2,
			Title:     "Connection flood is capped per source",
			Attack:    "remote only: 30 TLS connections from this host held 10 s; at most the firewall cap (20) may be admitted (the churn/retry part of F3 is not automated)",
			Fix:       "nftables ct count per source; nginx limit_conn; max_connections (advisory on 2.0.11)",
			Proves:    "one source cannot hold more than the firewall's per-source cap of connections (deployed targets only)",
			Gaps:      "max_connections drifts on 2.0.11 (double decrement on close): only the firewall cap holds",
			Guards:    "F3",
			Actors:    []string{"b"},
			Exclusive: true,
			Run:       runDOS02,
		},
		{
			ID:         "DOS-03",
			Tier:       2,
			Title:      "Slowloris before and during CONNECT",
			Attack:     "idle TLS connection; CONNECT dripped 1 byte/20 s",
			Fix:        "per-source connection caps; small max_packet_size (cannot be fixed in 2.0.11 config)",
			Proves:     "an idle pre-CONNECT connection is closed within ~100 s; the dripped CONNECT that stays open is recorded",
			Gaps:       "a CONNECT dripped one byte every 20 s stays open for ever on 2.0.11: only per-source caps bound it",
			Guards:     "F5",
			Actors:     []string{"b"},
			Standalone: true,
			Timeout:    150 * time.Second,
			Run:        runDOS03,
		},
		{
			ID: "DOS-04", Tier: 1, Title: "Keepalive bounds (CVE-2020-13849)",
			Attack: "authenticated CONNECT with keepalive 0 and 65535 in v5 (Server Keep Alive must be imposed) and 3.1.1 (refused on >= 2.0.12)",
			Fix:    "max_keepalive 120 (v3 enforcement needs >= 2.0.12: upgrade to close the 3.1.1 gap F4)",
			Proves: "v5 clients get Server Keep Alive = max_keepalive; the 3.1.1 gap is recorded and turns into a failure on a broker >= 2.0.12 that does not enforce it",
			Gaps:   "2.0.11 does not bound a 3.1.1 client's keepalive (keepalive 0 stays connected for ever)",
			Guards: "F4, CVE-2020-13849",
			Actors: []string{"a"},
			Run:    runDOS04,
		},
		{
			ID:     "DOS-05",
			Tier:   2,
			Title:  "Offline queue growth is bounded",
			Attack: "backend queues 5000 QoS1 for an offline clean=false device",
			Fix:    "max_queued_messages, max_queued_bytes, persistent_client_expiration",
			Proves: "an offline device's queue holds at most max_queued_messages + max_inflight_messages of a 5000-message backlog",
			Guards: "memory exhaustion by offline queues",
			Actors: []string{"a"},
			Run:    runDOS05,
		},
	}
}

func joinParts(p []string) string {
	out := ""
	for i, s := range p {
		if i > 0 {
			out += "; "
		}
		out += s
	}
	return out
}

// runDOS01 runs DOS-01 (its catalog entry is in this file).
func runDOS01(ctx context.Context, e *Env) Outcome {
	if !e.mayFlood() {
		return skipped("bounded flood against a non-local target needs --allow-load")
	}
	b := e.Actor("DOS-01", "b")
	c, ack, err := e.rawSession(ctx, b, true)
	if err != nil {
		return inconclusive("%v", err)
	}
	defer c.Close()
	rm, ok := connackPropsU(ack.Body)[0x21]
	if !ok {
		return fail("v5 CONNACK advertises no Receive Maximum: max_inflight_messages unset (65535)")
	}
	n := int(rm) + e.confInt(ctx, "max_queued_messages", 1000) + 200
	if n > 3000 {
		n = 3000
	}
	topic := "devices/" + b + "/flood"
	sendErr := make(chan error, 1)
	go func() {
		for i := 1; i <= n; i++ {
			if err := c.send(rawPublish(topic, 2, uint16(i), []byte("f"), true, nil)); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()
	var ok0, quota, other int
	closed := false
	deadline := time.Now().Add(15 * time.Second)
	for ok0+quota+other < n && time.Now().Before(deadline) {
		p, err := c.read(time.Until(deadline))
		if err != nil {
			closed = true
			break
		}
		if p.Type != 5 {
			other++
			continue
		}
		switch {
		case len(p.Body) < 3 || p.Body[2] == 0:
			ok0++
		case p.Body[2] == 0x97:
			quota++
		default:
			other++
		}
	}
	start := time.Now()
	if err := e.alive(ctx, e.Actor("DOS-01", "live")); err != nil {
		return fail("second client starved during the flood: %v", err)
	}
	lat := time.Since(start)
	select {
	case err := <-sendErr:
		if err != nil && !closed {
			return inconclusive("flood send failed: %v", err)
		}
	case <-time.After(5 * time.Second):
	}
	ev := fmt.Sprintf("Receive Maximum %d; %d QoS2 sent: %d PUBREC 0x00, %d PUBREC 0x97, %d other, closed=%v; second client CONNACK+PINGRESP in %s",
		rm, n, ok0, quota, other, closed, lat.Round(time.Millisecond))
	if quota == 0 && !closed {
		return fail("%s: no quota applied (unbounded in-flight)", ev)
	}
	return pass("%s", ev)
}

// runDOS04 runs DOS-04 (its catalog entry is in this file).
func runDOS04(ctx context.Context, e *Env) Outcome {
	a := e.Actor("DOS-04", "a")
	maxKA := e.confInt(ctx, "max_keepalive", 65534)
	var parts []string
	for _, ka := range []uint16{0, 65535} {
		c, err := e.dialRaw(ctx, a)
		if err != nil {
			return inconclusive("%v", err)
		}
		code, p, err := c.connack(rawConnect{V5: true, ClientID: a, KeepAlive: ka})
		c.Close()
		if err != nil || code != 0 {
			return inconclusive("v5 keepalive %d: CONNACK 0x%02x %v", ka, code, err)
		}
		ska, ok := connackPropsU(p.Body)[0x13]
		if !ok {
			return fail("v5 keepalive %d accepted without a Server Keep Alive: max_keepalive not set", ka)
		}
		if ska == 0 || int(ska) > maxKA {
			return fail("v5 keepalive %d: Server Keep Alive %d outside 1..%d", ka, ska, maxKA)
		}
		parts = append(parts, fmt.Sprintf("v5 ka=%d → Server Keep Alive %d", ka, ska))
	}
	c, err := e.dialRaw(ctx, a)
	if err != nil {
		return inconclusive("%v", err)
	}
	code, _, err := c.connack(rawConnect{ClientID: a, KeepAlive: 65535})
	c.Close()
	if err != nil {
		return inconclusive("3.1.1 keepalive 65535: %v", err)
	}
	v, verr := e.sysValue(ctx, "$SYS/broker/version")
	maj, min, pat, vok := brokerVersion(v)
	fixed := verr == nil && vok && (maj > 2 || (maj == 2 && (min > 0 || pat >= 12)))
	switch {
	case code != 0:
		parts = append(parts, fmt.Sprintf("3.1.1 ka=65535 → CONNACK %d (enforced)", code))
	case fixed:
		return fail("%s; %q should refuse 3.1.1 keepalive 65535 (> max_keepalive %d) but sent CONNACK 0", joinParts(parts), v, maxKA)
	default:
		parts = append(parts, fmt.Sprintf("3.1.1 ka=65535 → CONNACK 0: KNOWN GAP F4 on %q (v3 enforcement arrives in 2.0.12; this becomes a failure after an upgrade that does not enforce it)", v))
	}
	return pass("%s", joinParts(parts))
}
