package security

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// expectClose sends bad on a fresh session of id (after a valid QoS1
// publish proves the session works) and requires the broker to close it.
func (e *Env) expectClose(ctx context.Context, id string, v5 bool, bad []byte, what string) (string, bool, error) {
	c, _, err := e.rawSession(ctx, id, v5)
	if err != nil {
		return "", false, err
	}
	defer c.Close()
	var props []byte
	if err := c.send(rawPublish("devices/"+id+"/telemetry", 1, 7, []byte("ok"), v5, props)); err != nil {
		return "", false, err
	}
	if p, err := c.read(3 * time.Second); err != nil || p.Type != 4 {
		return "", false, fmt.Errorf("positive control: valid publish got no PUBACK (type %d, %v)", p.Type, err)
	}
	if err := c.send(bad); err != nil {
		// The broker may already have closed on a partial write: that is a
		// close too.
		return what + ": closed during send", true, nil
	}
	closed, seen, err := c.closedWithin(3 * time.Second)
	desc := what + ": "
	for _, p := range seen {
		switch {
		case p.Type == 14 && len(p.Body) > 0:
			desc += fmt.Sprintf("DISCONNECT 0x%02x, ", p.Body[0])
		case p.Type == 4 && len(p.Body) >= 2:
			desc += "PUBACK, "
		case p.Type == 9:
			desc += fmt.Sprintf("SUBACK %x, ", p.Body[2:])
		default:
			desc += fmt.Sprintf("type %d, ", p.Type)
		}
	}
	if closed {
		return desc + "closed (" + shortErr(err) + ")", true, nil
	}
	return desc + "still OPEN after 3s", false, nil
}

// badPacket is one malformed packet of a PRO check: what labels it in the
// evidence.
type badPacket struct {
	v5   bool
	pk   []byte
	what string
}

// expectCloses runs expectClose on a fresh session of id for each packet
// of bad in turn and collects the descriptions. done is true, with the
// outcome to return, at the first packet that could not be tried
// (inconclusive) or that left the session open (fail).
func (e *Env) expectCloses(ctx context.Context, id string, bad []badPacket) (parts []string, out Outcome, done bool) {
	for _, b := range bad {
		desc, closed, err := e.expectClose(ctx, id, b.v5, b.pk, b.what)
		if err != nil {
			return nil, inconclusive("%v", err), true
		}
		if !closed {
			return nil, fail("%s", desc), true
		}
		parts = append(parts, desc)
	}
	return parts, Outcome{}, false
}

// aliveAfter is the liveness control that ends a protocol-abuse check: the
// check's "live" actor must still connect and round-trip.
func (e *Env) aliveAfter(ctx context.Context, checkID string) error {
	if err := e.alive(ctx, e.Actor(checkID, "live")); err != nil {
		return fmt.Errorf("broker not alive afterwards: %v", err)
	}
	return nil
}

// passIfAlive passes with evidence (plus "; liveness ok") when aliveAfter
// holds, and fails otherwise.
func (e *Env) passIfAlive(ctx context.Context, checkID, evidence string) Outcome {
	if err := e.aliveAfter(ctx, checkID); err != nil {
		return fail("%v", err)
	}
	return pass("%s; liveness ok", evidence)
}

func proChecks() []Check {
	return []Check{
		{
			ID: "PRO-01", Tier: 1, Title: "Invalid PUBLISH topics cause a disconnect",
			Attack: "3.1.1 PUBLISH to topics with NUL, invalid UTF-8, '#' and '+' (after a valid publish on the same session)",
			Fix:    "built in (keep the broker patched)",
			Proves: "PUBLISH topics with NUL, invalid UTF-8 or wildcards close the connection and the broker stays alive",
			Actors: []string{"b", "live"},
			Run:    runPRO01,
		},
		{
			ID: "PRO-02", Tier: 1, Title: "Invalid SUBSCRIBE filters and Will topics cause a disconnect",
			Attack: "raw SUBSCRIBE a/#/b, a#, invalid UTF-8, empty filter; CONNECT with an empty and an invalid-UTF-8 Will topic",
			Fix:    "built in (keep the broker patched)",
			Proves: "malformed SUBSCRIBE filters and Will topics close the connection and the broker stays alive",
			Actors: []string{"b", "live"},
			Run:    runPRO02,
		},
		{
			ID: "PRO-03", Tier: 1, Title: "Non-CONNECT first packet / huge declared length closed at once (CVE-2023-0809)",
			Attack: "on a fresh TLS session (and the local plaintext ops port): PUBLISH header declaring 256 MB + 1 KB first; a CONNECT declaring 200 MB",
			Fix:    "Debian >= deb12u1; max_packet_size",
			Proves: "a non-CONNECT first packet and a CONNECT declaring a huge length are closed at once; the broker stays alive",
			Guards: "CVE-2023-0809",
			Actors: []string{"b", "live"},
			Run:    runPRO03,
		},
		{
			ID: "PRO-04", Tier: 1, Title: "Oversized packets rejected (max_packet_size advertised and enforced)",
			Attack: "v5: read CONNACK Maximum Packet Size, publish max+1 bytes; 3.1.1: publish max+1 bytes",
			Fix:    "max_packet_size <largest device packet + headroom> (16384 rendered)",
			Proves: "v5 CONNACK advertises max_packet_size and a larger packet closes the connection (3.1.1 and v5)",
			Guards: "memory exhaustion by large packets",
			Actors: []string{"b", "live"},
			Run:    runPRO04,
		},
		{
			ID: "PRO-05", Tier: 1, Title: "v5 PUBLISH with a zero-length topic and no alias → DISCONNECT 0x82",
			Attack: "raw v5 PUBLISH with topic length 0 and no Topic Alias (CVE-2021-34432 class)",
			Fix:    "built in on 2.0.11",
			Proves: "a v5 PUBLISH with an empty topic and no alias gets DISCONNECT 0x82; the broker stays alive",
			Guards: "CVE-2021-34432 class",
			Actors: []string{"b", "live"},
			Run:    runPRO05,
		},
		{
			ID:     "PRO-06",
			Tier:   2,
			Title:  "v5 CONNECT abuse (user properties, Will property types, CONNACK to broker)",
			Attack: "1500 user properties ×20, invalid Will properties, CONNACK from client",
			Fix:    "Debian >= deb12u1; max_packet_size",
			Proves: "abusive v5 CONNECTs (1500 user properties, bad Will property types, a CONNACK sent to the broker) neither stall nor crash it",
			Guards: "CVE-2021-28166, CVE-2021-34431, CVE-2021-41039, CVE-2023-3592",
			Actors: []string{"b", "live"},
			Run:    runPRO06,
		},
		{
			ID:     "PRO-07",
			Tier:   2,
			Title:  "Shared/normal SUB/UNSUB mismatch sequences (CVE-2024-8376)",
			Attack: "50 × mixed $share/normal SUB/UNSUB/DISCONNECT sequences",
			Fix:    "deb12u2",
			Proves: "mixed shared/normal SUBSCRIBE/UNSUBSCRIBE/DISCONNECT sequences leave the broker alive",
			Guards: "CVE-2024-8376",
			Actors: []string{"b", "live"},
			Run:    runPRO07,
		},
		{
			ID:     "PRO-08",
			Tier:   2,
			Title:  "QoS2 duplicate mid without completing the flow (CVE-2023-28366)",
			Attack: "1000 × PUBLISH QoS2 same mid dup=1, receive buffer not drained",
			Fix:    "deb12u1 + deb12u2",
			Proves: "1000 duplicate QoS2 PUBLISHes never released, on an undrained socket, leave the broker alive",
			Guards: "CVE-2023-28366",
			Actors: []string{"b", "live"},
			Run:    runPRO08,
		},
	}
}

// oversize builds a PUBLISH whose whole encoding is exactly size bytes.
func oversize(topic string, size int, v5 bool, canary string) []byte {
	fixed := 2 + len(topic) + 2 // topic + mid
	if v5 {
		fixed++ // empty property length
	}
	for pl := size - fixed - 5; pl < size; pl++ {
		payload := []byte(canary + strings.Repeat("x", pl-len(canary)))
		p := rawPublish(topic, 1, 9, payload, v5, nil)
		if len(p) == size {
			return p
		}
		if len(p) > size {
			return p
		}
	}
	return rawPublish(topic, 1, 9, []byte(canary+strings.Repeat("x", size)), v5, nil)
}

// runPRO01 runs PRO-01 (its catalog entry is in this file).
func runPRO01(ctx context.Context, e *Env) Outcome {
	b := e.Actor("PRO-01", "b")
	var bad []badPacket
	for _, t := range []string{"devices/" + b + "/a\x00b", "devices/" + b + "/\xff\xfe", "devices/" + b + "/#", "devices/" + b + "/+"} {
		bad = append(bad, badPacket{false, rawPublish(t, 1, 9, []byte("bad"), false, nil), strconv.Quote(t)})
	}
	parts, out, done := e.expectCloses(ctx, b, bad)
	if done {
		return out
	}
	return e.passIfAlive(ctx, "PRO-01", strings.Join(parts, "; "))
}

// runPRO02 runs PRO-02 (its catalog entry is in this file).
func runPRO02(ctx context.Context, e *Env) Outcome {
	b := e.Actor("PRO-02", "b")
	var bad []badPacket
	for _, f := range []string{"a/#/b", "a#", "devices/\xff\xfe/x", ""} {
		bad = append(bad, badPacket{false, rawSubscribe(11, false, f), "SUBSCRIBE " + strconv.Quote(f)})
	}
	parts, out, done := e.expectCloses(ctx, b, bad)
	if done {
		return out
	}
	for _, wt := range []string{"", "devices/" + b + "/\xff\xfe"} {
		c, err := e.dialRaw(ctx, b)
		if err != nil {
			return inconclusive("%v", err)
		}
		topic := wt
		code, _, err := c.connack(rawConnect{ClientID: b, KeepAlive: 30, WillTopic: &topic, WillMsg: []byte("x")})
		c.Close()
		if err == nil && code == 0 {
			return fail("CONNECT with Will topic %q ACCEPTED (CONNACK 0)", wt)
		}
		if err != nil {
			parts = append(parts, fmt.Sprintf("Will %q: closed", wt))
		} else {
			parts = append(parts, fmt.Sprintf("Will %q: CONNACK %d", wt, code))
		}
	}
	return e.passIfAlive(ctx, "PRO-02", strings.Join(parts, "; "))
}

// runPRO03 runs PRO-03 (its catalog entry is in this file).
func runPRO03(ctx context.Context, e *Env) Outcome {
	b := e.Actor("PRO-03", "b")
	bogus := [][]byte{
		append([]byte{0x30, 0xff, 0xff, 0xff, 0x7f}, make([]byte, 1024)...),
		append(append([]byte{0x10}, remLen(200*1024*1024)...), append(mstr("MQTT"), 4, 2, 0, 30)...),
	}
	names := []string{"PUBLISH-first 256MB", "CONNECT 200MB"}
	var parts []string
	for i, pk := range bogus {
		dials := []struct {
			name string
			dial func() (net.Conn, error)
		}{{"8883", func() (net.Conn, error) {
			c, err := e.dialRaw(ctx, b)
			if err != nil {
				return nil, err
			}
			return c.Conn, nil
		}}}
		if e.T.Local != nil && e.T.Local.OpsPort > 0 {
			dials = append(dials, struct {
				name string
				dial func() (net.Conn, error)
			}{"ops", func() (net.Conn, error) {
				return (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(e.T.Local.OpsPort)))
			}})
		}
		for _, d := range dials {
			conn, err := d.dial()
			if err != nil {
				return inconclusive("%s: %v", d.name, err)
			}
			rc := newRawConn(conn)
			start := time.Now()
			_ = rc.send(pk)
			closed, _, _ := rc.closedWithin(2 * time.Second)
			rc.Close()
			if !closed {
				return fail("%s on %s: connection still OPEN after 2s", names[i], d.name)
			}
			parts = append(parts, fmt.Sprintf("%s on %s: closed in %s", names[i], d.name, time.Since(start).Round(time.Millisecond)))
		}
	}
	return e.passIfAlive(ctx, "PRO-03", strings.Join(parts, "; "))
}

// runPRO04 runs PRO-04 (its catalog entry is in this file).
func runPRO04(ctx context.Context, e *Env) Outcome {
	b := e.Actor("PRO-04", "b")
	c, ack, err := e.rawSession(ctx, b, true)
	if err != nil {
		return inconclusive("%v", err)
	}
	props := connackPropsU(ack.Body)
	c.Close()
	max, ok := props[0x27]
	if !ok {
		return fail("v5 CONNACK advertises no Maximum Packet Size: max_packet_size is not set")
	}
	canary := "canary-" + nonce()
	tap := e.watch.tap(payloadHas(canary))
	defer e.watch.untap(tap)
	var parts []string
	for _, v5 := range []bool{true, false} {
		topic := "devices/" + b + "/big"
		// 2.0.11 compares remaining length + 1 with the limit, so a
		// packet is only refused once it exceeds max by more than
		// its length header: 16 bytes over is unambiguous.
		pk := oversize(topic, int(max)+16, v5, canary)
		desc, closed, err := e.expectClose(ctx, b, v5, pk, fmt.Sprintf("%s %d-byte publish", map[bool]string{true: "v5", false: "3.1.1"}[v5], len(pk)))
		if err != nil {
			return inconclusive("%v", err)
		}
		if !closed {
			return fail("max %d advertised; %s", max, desc)
		}
		parts = append(parts, desc)
	}
	if err := e.aliveAfter(ctx, "PRO-04"); err != nil {
		return fail("%v", err)
	}
	if len(tap.all()) > 0 {
		return fail("oversized message DELIVERED to the watcher")
	}
	return pass("CONNACK Maximum Packet Size %d; %s; nothing delivered; liveness ok", max, strings.Join(parts, "; "))
}

// runPRO05 runs PRO-05 (its catalog entry is in this file).
func runPRO05(ctx context.Context, e *Env) Outcome {
	b := e.Actor("PRO-05", "b")
	parts, out, done := e.expectCloses(ctx, b, []badPacket{{true, rawPublish("", 1, 9, []byte("x"), true, nil), "empty topic, no alias"}})
	if done {
		return out
	}
	return e.passIfAlive(ctx, "PRO-05", parts[0])
}
