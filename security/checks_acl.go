package security

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// subscriber is an attacker that subscribes and records what it gets,
// whatever its protocol version.
type subscriber interface {
	publisher
	subscribeAll(ctx context.Context, filters []string) (string, error)
	received() *recorder
	close()
}

func (c *client311) subscribeAll(ctx context.Context, filters []string) (string, error) {
	res, err := c.subscribe(ctx, filters...)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, f := range filters {
		parts = append(parts, fmt.Sprintf("%s:%d", f, res[f]))
	}
	return "SUBACK " + strings.Join(parts, " "), nil
}
func (c *client311) received() *recorder { return c.rec }

func (c *client5) subscribeAll(ctx context.Context, filters []string) (string, error) {
	return c.subscribeWith(ctx, filters, 0)
}

// subscribeLive subscribes with Retain Handling 2: the broker sends no
// retained messages at subscribe time, only what is published from now on.
// A check that watches for a live echo uses it, so that a stack full of
// retained device statuses (a load run leaves one per device) cannot fill
// the client's queue at the broker (max_queued_messages) and drop the
// check's own control message.
func (c *client5) subscribeLive(ctx context.Context, filters []string) (string, error) {
	return c.subscribeWith(ctx, filters, 2)
}

func (c *client5) subscribeWith(ctx context.Context, filters []string, retainHandling byte) (string, error) {
	s := &paho.Subscribe{}
	for _, f := range filters {
		s.Subscriptions = append(s.Subscriptions, paho.SubscribeOptions{Topic: f, QoS: 1, RetainHandling: retainHandling})
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sa, err := c.Subscribe(sctx, s)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("v5 SUBACK reasons %v", sa.Reasons), nil
}
func (c *client5) received() *recorder { return c.rec }

// readIsolation is ACL-01/02/07: the attacker devB subscribes filters
// (granted on 2.0.11 whatever the ACL says), the owner devA publishes
// canaries to its cmd and telemetry topics that the watcher must see
// (positive control), the attacker publishes to its own telemetry topic and
// must receive that (its subscriptions work), and it must never receive a
// message outside its own subtree devices/<b>/.
func (e *Env) readIsolation(ctx context.Context, att subscriber, owner publisher, filters []string, a, b string) Outcome {
	canaryTopics := []string{"devices/" + a + "/cmd", "devices/" + a + "/telemetry"}
	ownTopic, ownPrefix := "devices/"+b+"/telemetry", "devices/"+b+"/"
	granted, err := att.subscribeAll(ctx, filters)
	if err != nil {
		return inconclusive("attacker subscribe: %v", err)
	}
	canary := "canary-" + nonce()
	wtap := e.watch.tap(payloadHas(canary))
	defer e.watch.untap(wtap)
	for _, t := range canaryTopics {
		if err := owner.publish(ctx, t, 1, false, []byte(canary+" "+t)); err != nil {
			return inconclusive("owner publish %s: %v", t, err)
		}
	}
	for _, t := range canaryTopics {
		if _, ok := wtap.waitFor(ctx, barrierWait, func(m Msg) bool { return m.Topic == t }); !ok {
			return inconclusive("positive control: watcher did not see the owner's canary on %s", t)
		}
	}
	own := "own-" + nonce()
	if err := att.publish(ctx, ownTopic, 1, false, []byte(own)); err != nil {
		return inconclusive("attacker's own publish: %v", err)
	}
	if _, ok := att.received().waitFor(ctx, barrierWait, payloadHas(own)); !ok {
		return inconclusive("positive control: attacker did not receive its own message on %s (%s)", ownTopic, granted)
	}
	if err := sleepCtx(ctx, canaryGrace); err != nil {
		return inconclusive("%v", err)
	}
	var foreign []string
	for _, m := range att.received().all() {
		if !strings.HasPrefix(m.Topic, ownPrefix) {
			foreign = append(foreign, m.Topic)
		}
	}
	if len(foreign) > 0 {
		sort.Strings(foreign)
		return fail("%s; attacker RECEIVED %d foreign message(s), e.g. %s", granted, len(foreign), foreign[0])
	}
	return pass("%s; watcher saw %d owner canaries, attacker got only its own (%d msg)", granted, len(canaryTopics), len(att.received().all()))
}

// crossRead is ACL-01/02: check id's owner devA and attacker devB both
// connect over 3.1.1, then readIsolation judges devB's filters(a, b).
func (e *Env) crossRead(ctx context.Context, id string, filters func(a, b string) []string) Outcome {
	a, b := e.Actor(id, "a"), e.Actor(id, "b")
	owner, err := e.connect311(ctx, a)
	if err != nil {
		return inconclusive("%v", err)
	}
	defer owner.close()
	att, err := e.connect311(ctx, b)
	if err != nil {
		return inconclusive("%v", err)
	}
	defer att.close()
	return e.readIsolation(ctx, att, owner, filters(a, b), a, b)
}

func aclChecks() []Check {
	return []Check{
		{
			ID: "ACL-01", Tier: 1, Title: "Another device's topics are not readable",
			Attack: "devB subscribes devices/devA/# and devices/devA/cmd (granted on 2.0.11); devA publishes canaries",
			Fix:    "acl_file with `pattern readwrite devices/%u/#` and no broader topic grants",
			Proves: "a device subscribed to another device's topics (granted on 2.0.11) receives none of its messages, while the watcher sees them and its own arrive",
			Gaps:   "SUBACK grants any filter: only delivery tells",
			Actors: []string{"a", "b"},
			Run:    runACL01,
		},
		{
			ID: "ACL-02", Tier: 1, Title: "Wildcards outside the own subtree deliver nothing foreign",
			Attack: "devB subscribes #, +/#, +/+/+, devices/+/cmd, devices/#; devA publishes canaries",
			Fix:    "acl_file pattern (delivery-time read check in subs__send)",
			Proves: "wildcard subscriptions (#, +/#, +/+/+, devices/+/cmd, devices/#) deliver a device nothing outside its subtree",
			Gaps:   "SUBACK grants any filter",
			Actors: []string{"a", "b"},
			Run:    runACL02,
		},
		{
			ID: "ACL-03", Tier: 1, Title: "Cross-device publish is not delivered (QoS0/1/2, 3.1.1 and v5, topic alias)",
			Attack: "devB publishes canaries to devices/devA/cmd: 3.1.1 QoS0/1/2, v5 QoS1/2, v5 via a topic alias; devA publishes the barrier",
			Fix:    "acl_file `pattern readwrite devices/%u/#`",
			Proves: "a device's publish into another device's cmd is delivered to nobody, over 3.1.1 QoS 0/1/2, v5 QoS 1/2 and a v5 topic alias; v5 gets 0x87",
			Gaps:   "3.1.1 acknowledges the denied publish (PUBACK 0, PUBREC/PUBCOMP); v5 QoS2 returns PUBREC 0x87 without a client error",
			Actors: []string{"a", "b"},
			Run:    runACL03,
		},
		{
			ID: "ACL-04", Tier: 1, Title: "No retained-message leakage or tampering between devices",
			Attack: "devA retains devices/devA/state; devB subscribes late (# and the topic), then publishes a retained empty payload and a retained canary there",
			Fix:    "acl_file; check_retain_source true",
			Proves: "a late subscriber gets no foreign retained message, and a device can neither delete nor replace another device's retained value",
			Actors: []string{"a", "b"},
			Run:    runACL04,
		},
		{
			ID: "ACL-05", Tier: 1, Title: "$SYS is neither readable nor writable by devices",
			Attack: "devB subscribes $SYS/# and $SYS/broker/version and publishes to $SYS/broker/version; the watcher proves $SYS is live",
			Fix:    "default $-topic handling; never grant $SYS in pattern lines",
			Proves: "a device receives nothing from $SYS while $SYS is live, and its $SYS publish is refused (0x87)",
			Guards: "information disclosure via $SYS",
			Actors: []string{"b"},
			Run:    runACL05,
		},
		{
			ID: "ACL-06", Tier: 1, Title: "A Will cannot target another device",
			Attack: "devB connects with a retained QoS1 Will on devices/devA/cmd and drops TCP; control: a Will on devB's own status",
			Fix:    "acl_file (the Will is checked like a publish)",
			Proves: "a Will aimed at another device's topic is neither delivered nor stored, while a Will on the device's own topic is",
			Actors: []string{"a", "b"},
			Run:    runACL06,
		},
		{
			ID: "ACL-07", Tier: 1, Title: "Shared subscriptions do not bypass the ACL (v5)",
			Attack: "devB (v5) subscribes $share/g/devices/devA/# and $share/g/#, publishes to $share/g/devices/devA/cmd; devA publishes canaries",
			Fix:    "acl_file",
			Proves: "$share subscriptions deliver nothing foreign and a publish to $share/... is refused",
			Actors: []string{"a", "b"},
			Run:    runACL07,
		},
		{
			ID: "ACL-08", Tier: 1, Title: "Wildcard characters in an identity are neutralised",
			Attack: "a CI-CA certificate with CN 'sec+#' connects (v5) and publishes to another device's and its 'own' topics",
			Fix:    "pattern ACLs (CVE-2017-7650 guard), use_username_as_clientid true, CN policy ^[A-Za-z0-9_-]{1,64}$",
			Proves: "a CA-issued identity with '+#' in its CN connects but every publish, even to 'its own' topics, is refused",
			Guards: "CVE-2017-7650",
			Actors: []string{"a"}, Negative: []NegativeKind{NegWildcardCN},
			Run: runACL08,
		},
		{
			ID: "ACL-09", Tier: 1, Title: "The ACL identity is the username, never a client-chosen id",
			Attack: "devB connects with client id = devA and publishes to devA's subtree (8883 and a password listener); lint the ACL for %c",
			Fix:    "`pattern ... devices/%u/#` (never %c); use_username_as_clientid true on every listener",
			Proves: "a device that picks another device's client id still writes nothing there (8883 and a password listener), and no ACL rule is keyed on %c",
			Gaps:   "without use_username_as_clientid a %c rule hands devices each other's subtrees",
			Guards: "F6",
			Actors: []string{"a", "b"},
			Run:    runACL09,
		},
		{
			ID: "ACL-11", Tier: 1, Title: "Observers publish nothing anywhere",
			Attack: "observer-8 publishes canaries to a device's cmd, telemetry and status (retained or not), its own pattern subtree, $SYS and another root; v5 QoS1 and 3.1.1 QoS0/1/2",
			Fix:    "observers get `topic read` only, plus `topic deny devices/<observer>/#` against the device pattern (patterns apply to every user)",
			Proves: "a leaked observer credential (dashboards, CI runners) cannot command, spoof or retain anything: no canary reached the watcher or was stored, every v5 publish got 0x87, and the observer still read the device",
			Gaps:   "3.1.1 acknowledges denied publishes (PUBACK 0): only delivery tells; a root nobody may read is judged by the v5 reason code",
			Guards: "F12, least privilege of the observer class",
			Actors: []string{"a"},
			Run:    runACL11,
		},
		{
			ID: "ACL-12", Tier: 1, Title: "Backends write devices/# and nothing else",
			Attack: "backend-8, subscribed to #, +/#, $SYS/#, publishes canaries to $SYS, another root and a sibling root (devicesx/), retained or not; control: its command to a device",
			Fix:    "backends get `topic readwrite devices/#` only; never #, never $SYS",
			Proves: "a backend credential reaches devices and nothing beside them: outside devices/# nothing was delivered, stored or echoed back, every v5 publish got 0x87, while its command to a device was delivered",
			Gaps:   "$SYS publishes are refused by the broker whatever the ACL says (acl__check_dollar); the check still covers them for a future broker",
			Guards: "least privilege of the backend class",
			Actors: []string{"a"},
			Run:    runACL12,
		},
		{
			ID: "ACL-13", Tier: 1, Title: "No identity class subscribes beyond its grant",
			Attack: "a device, the observer and the backend each subscribe #, +/#, $SYS/# and $SYS/broker/version (granted on 2.0.11); another device publishes, the broker replays $SYS",
			Fix:    "acl_file: read grants only where the class needs them (device: own subtree; backend: devices/#; observer: devices/# and $SYS/#)",
			Proves: "wildcard and $SYS subscriptions deliver exactly the class's read grant: the device got only its subtree, the backend no $SYS, the observer only devices/ and $SYS/; controls: each got what it may",
			Gaps:   "SUBACK grants every filter (security_default.c never checks subscriptions): only delivery tells",
			Guards: "ACL read grants of every class",
			Actors: []string{"a", "b"},
			Run:    runACL13,
		},
		{
			ID: "ACL-14", Standalone: true, Host: true, Tier: 1, Title: "Every block of the loaded ACL is covered by a check",
			Attack: "read the acl_file(s) of the broker's configuration through the host; classify every pattern and user block by its rules (own name as %u)",
			Fix:    "give each new identity class a check that proves its limits by delivery, and add the class to the table in security/acl_privilege.go",
			Proves: "the patterns are the device class, every user is an observer or a backend exactly as ACL-11/12/13 exercise them, no anonymous rules: no identity in the broker's ACL is unproven",
			Guards: "an uncovered identity: a grant no check has ever attacked",
			Run:    runACL14,
		},
		{
			ID: "ACL-10", Host: true, Tier: 2, Title: "Retained messages of a de-authorised publisher are not replayed",
			Attack:    "devA retains, ops remove its write right and reload, a new subscriber subscribes",
			Fix:       "check_retain_source true",
			Proves:    "a retained message is not replayed once its publisher lost the write right and the broker reloaded",
			Guards:    "CVE-2018-12546",
			Actors:    []string{"a"},
			Exclusive: true,
			Run:       runACL10,
		},
	}
}

func runACL03(ctx context.Context, e *Env) Outcome {
	a, b := e.Actor("ACL-03", "a"), e.Actor("ACL-03", "b")
	owner, err := e.connect311(ctx, a)
	if err != nil {
		return inconclusive("%v", err)
	}
	defer owner.close()
	topic := "devices/" + a + "/cmd"
	var codes []string
	var wrong []string
	out := e.canaryProof(ctx, owner, topic, func(canary string) (string, error) {
		att, err := e.connect311(ctx, b)
		if err != nil {
			return "", err
		}
		for q := byte(0); q <= 2; q++ {
			if err := att.publish(ctx, topic, q, false, []byte(fmt.Sprintf("%s v3 q%d", canary, q))); err != nil {
				codes = append(codes, fmt.Sprintf("v3q%d err %v", q, err))
			} else {
				codes = append(codes, fmt.Sprintf("v3q%d ok", q))
			}
		}
		att.close()
		v5, err := e.connect5(ctx, b, nil)
		if err != nil {
			return "", err
		}
		for q := byte(1); q <= 2; q++ {
			rc, err := v5.publishCode(ctx, &paho.Publish{Topic: topic, QoS: q, Payload: []byte(fmt.Sprintf("%s v5 q%d", canary, q))})
			codes = append(codes, fmt.Sprintf("v5q%d 0x%02x", q, rc))
			if rc != 0x87 {
				wrong = append(wrong, fmt.Sprintf("v5 QoS%d reason 0x%02x (err %v), want 0x87", q, rc, err))
			}
		}
		v5.close()
		// Topic alias through raw v5: the alias resolves before the ACL
		// check, so both PUBLISHes must be refused.
		rc, _, err := e.rawSession(ctx, b, true)
		if err != nil {
			return "", err
		}
		defer rc.Close()
		if err := rc.send(rawPublish(topic, 1, 1, []byte(canary+" alias-set"), true, propU16(0x23, 1))); err != nil {
			return "", err
		}
		if err := rc.send(rawPublish("", 1, 2, []byte(canary+" alias-use"), true, propU16(0x23, 1))); err != nil {
			return "", err
		}
		for i := 0; i < 2; i++ {
			p, err := rc.read(3 * time.Second)
			if err != nil {
				wrong = append(wrong, fmt.Sprintf("alias publish %d: no PUBACK: %v", i+1, err))
				break
			}
			if p.Type == 4 && len(p.Body) >= 3 {
				codes = append(codes, fmt.Sprintf("alias%d 0x%02x", i+1, p.Body[2]))
				if p.Body[2] != 0x87 {
					wrong = append(wrong, fmt.Sprintf("alias publish %d reason 0x%02x, want 0x87", i+1, p.Body[2]))
				}
			} else {
				codes = append(codes, fmt.Sprintf("alias%d type %d", i+1, p.Type))
			}
		}
		return fmt.Sprintf("devB -> %s: %s", topic, strings.Join(codes, ", ")), nil
	})
	if out.Status == Pass && len(wrong) > 0 {
		return fail("%s; but %s", out.Evidence, strings.Join(wrong, "; "))
	}
	return out
}

func runACL04(ctx context.Context, e *Env) Outcome {
	a, b := e.Actor("ACL-04", "a"), e.Actor("ACL-04", "b")
	owner, err := e.connect311(ctx, a)
	if err != nil {
		return inconclusive("%v", err)
	}
	defer owner.close()
	stateTopic := "devices/" + a + "/state"
	orig := "state-" + nonce()
	if err := owner.publish(ctx, stateTopic, 1, true, []byte(orig)); err != nil {
		return inconclusive("owner retained publish: %v", err)
	}
	// Remove the retained value afterwards: persistence would keep it.
	defer owner.publish(context.WithoutCancel(ctx), stateTopic, 1, true, nil)
	att, err := e.connect311(ctx, b)
	if err != nil {
		return inconclusive("%v", err)
	}
	defer att.close()
	ownState := "devices/" + b + "/state"
	ownVal := "own-" + nonce()
	if err := att.publish(ctx, ownState, 1, true, []byte(ownVal)); err != nil {
		return inconclusive("attacker's own retained publish: %v", err)
	}
	defer att.publish(context.WithoutCancel(ctx), ownState, 1, true, nil)
	granted, err := att.subscribeAll(ctx, []string{"#", stateTopic, ownState})
	if err != nil {
		return inconclusive("attacker subscribe: %v", err)
	}
	if _, ok := att.rec.waitFor(ctx, barrierWait, payloadHas(ownVal)); !ok {
		return inconclusive("positive control: attacker's subscription did not replay its own retained message (%s)", granted)
	}
	// (b) tamper: delete and plant.
	canary := "canary-" + nonce()
	if err := att.publish(ctx, stateTopic, 1, true, nil); err != nil {
		return inconclusive("attacker delete attempt: %v", err)
	}
	if err := att.publish(ctx, stateTopic, 1, true, []byte(canary)); err != nil {
		return inconclusive("attacker plant attempt: %v", err)
	}
	if _, err := e.barrier(ctx, owner, "devices/"+a+"/telemetry"); err != nil {
		return inconclusive("%v", err)
	}
	for _, m := range att.rec.all() {
		if m.Topic == stateTopic || !strings.HasPrefix(m.Topic, "devices/"+b+"/") {
			return fail("late subscriber RECEIVED %s (retained=%v)", m.Topic, m.Retained)
		}
	}
	// A fresh subscription by the watcher replays what is stored now.
	tap := e.watch.tap(func(m Msg) bool { return m.Topic == stateTopic && m.Retained })
	defer e.watch.untap(tap)
	if _, err := e.watch.c.subscribe(ctx, stateTopic); err != nil {
		return inconclusive("watcher resubscribe: %v", err)
	}
	m, ok := tap.waitFor(ctx, 3*time.Second, func(Msg) bool { return true })
	if !ok {
		return fail("retained value of %s is GONE after devB's retained empty publish (deleted by another device)", stateTopic)
	}
	if string(m.Payload) != orig {
		return fail("retained value of %s is now %q (planted by another device), want the owner's", stateTopic, m.Payload)
	}
	return pass("%s; late subscriber got no foreign retained message; devB's delete+plant denied, watcher replay still %q", granted, orig)
}

func runACL05(ctx context.Context, e *Env) Outcome {
	b := e.Actor("ACL-05", "b")
	att, err := e.connect5(ctx, b, nil)
	if err != nil {
		return inconclusive("%v", err)
	}
	defer att.close()
	uptime := e.watch.tap(func(m Msg) bool { return m.Topic == "$SYS/broker/uptime" })
	defer e.watch.untap(uptime)
	granted, err := att.subscribeAll(ctx, []string{"$SYS/#", "$SYS/broker/version"})
	if err != nil {
		return inconclusive("attacker subscribe: %v", err)
	}
	canary := "canary-" + nonce()
	wtap := e.watch.tap(payloadHas(canary))
	defer e.watch.untap(wtap)
	rc, perr := att.publishCode(ctx, &paho.Publish{Topic: "$SYS/broker/version", QoS: 1, Payload: []byte(canary)})
	// $SYS values are retained: a permitted subscription would replay them
	// at once. The window also covers a periodic update (sys_interval 10 s
	// in the rendered config): the watcher must see one, which proves $SYS
	// was being published while the attacker listened.
	if _, ok := uptime.waitFor(ctx, 25*time.Second, func(Msg) bool { return true }); !ok {
		return inconclusive("positive control: watcher saw no $SYS/broker/uptime update within 25s (sys_interval 0?)")
	}
	if err := sleepCtx(ctx, canaryGrace); err != nil {
		return inconclusive("%v", err)
	}
	if got := att.rec.all(); len(got) > 0 {
		return fail("device RECEIVED %d $SYS message(s), e.g. %s", len(got), got[0].Topic)
	}
	if len(wtap.all()) > 0 {
		return fail("device's publish to $SYS/broker/version was DELIVERED")
	}
	if rc != 0x87 {
		return fail("%s; publish to $SYS/broker/version got reason 0x%02x (err %v), want 0x87", granted, rc, perr)
	}
	return pass("%s; nothing from $SYS delivered while the watcher saw uptime updates; $SYS publish PUBACK 0x87", granted)
}

func runACL06(ctx context.Context, e *Env) Outcome {
	a, b := e.Actor("ACL-06", "a"), e.Actor("ACL-06", "b")
	victimTopic := "devices/" + a + "/cmd"
	canary := "canary-" + nonce()
	ctl := "willctl-" + nonce()
	tap := e.watch.tap(func(m Msg) bool {
		return strings.Contains(string(m.Payload), canary) || strings.Contains(string(m.Payload), ctl)
	})
	defer e.watch.untap(tap)
	bad, err := e.connect311(ctx, b, func(o *mqtt.ClientOptions) { o.SetWill(victimTopic, canary, 1, true) })
	if err != nil {
		return inconclusive("%v", err)
	}
	bad.dropTCP()
	bad.close()
	if err := sleepCtx(ctx, 300*time.Millisecond); err != nil {
		return inconclusive("%v", err)
	}
	good, err := e.connect311(ctx, b, func(o *mqtt.ClientOptions) { o.SetWill("devices/"+b+"/status", ctl, 1, false) })
	if err != nil {
		return inconclusive("%v", err)
	}
	good.dropTCP()
	good.close()
	if _, ok := tap.waitFor(ctx, barrierWait, payloadHas(ctl)); !ok {
		return inconclusive("positive control: the Will on devB's own status topic was not delivered")
	}
	if err := sleepCtx(ctx, canaryGrace); err != nil {
		return inconclusive("%v", err)
	}
	if m := tap.matching(payloadHas(canary)); len(m) > 0 {
		return fail("Will to %s was DELIVERED", m[0].Topic)
	}
	// The retained Will must not have been stored either.
	rtap := e.watch.tap(func(m Msg) bool { return m.Topic == victimTopic && m.Retained })
	defer e.watch.untap(rtap)
	if _, err := e.watch.c.subscribe(ctx, victimTopic); err != nil {
		return inconclusive("watcher resubscribe: %v", err)
	}
	if m, ok := rtap.waitFor(ctx, time.Second, payloadHas(canary)); ok {
		return fail("retained Will STORED on %s", m.Topic)
	}
	return pass("Will to %s not delivered nor retained; control Will on devices/%s/status delivered", victimTopic, b)
}

func runACL07(ctx context.Context, e *Env) Outcome {
	a, b := e.Actor("ACL-07", "a"), e.Actor("ACL-07", "b")
	owner, err := e.connect311(ctx, a)
	if err != nil {
		return inconclusive("%v", err)
	}
	defer owner.close()
	att, err := e.connect5(ctx, b, nil)
	if err != nil {
		return inconclusive("%v", err)
	}
	defer att.close()
	out := e.readIsolation(ctx, att, owner,
		[]string{"$share/g/devices/" + a + "/#", "$share/g/#", "$share/own/devices/" + b + "/#"}, a, b)
	if out.Status != Pass {
		return out
	}
	wr := e.canaryProof(ctx, owner, "devices/"+a+"/cmd", func(canary string) (string, error) {
		rc, err := att.publishCode(ctx, &paho.Publish{Topic: "$share/g/devices/" + a + "/cmd", QoS: 1, Payload: []byte(canary)})
		if rc < 0x80 {
			return "", fmt.Errorf("publish to $share/... got reason 0x%02x (err %v): expected a refusal", rc, err)
		}
		return fmt.Sprintf("publish to $share/g/devices/%s/cmd: 0x%02x", a, rc), nil
	})
	if wr.Status == Inconclusive && strings.Contains(wr.Evidence, "expected a refusal") {
		return fail("%s", wr.Evidence)
	}
	if wr.Status != Pass {
		return wr
	}
	return pass("%s; %s", out.Evidence, wr.Evidence)
}

func runACL08(ctx context.Context, e *Env) Outcome {
	if err := e.negErr[NegWildcardCN]; err != nil {
		return inconclusive("could not issue the CN 'sec+#' identity: %v", err)
	}
	a := e.Actor("ACL-08", "a")
	owner, err := e.connect311(ctx, a)
	if err != nil {
		return inconclusive("%v", err)
	}
	defer owner.close()
	cfg := e.certTLS(e.neg[NegWildcardCN])
	var codes []string
	var allowed []string
	out := e.canaryProof(ctx, owner, "devices/"+a+"/cmd", func(canary string) (string, error) {
		conn, err := e.dialTLS(ctx, cfg)
		if err != nil {
			return "", fmt.Errorf("CN 'sec+#' handshake: %w", err)
		}
		rc := newRawConn(conn)
		defer rc.Close()
		code, _, err := rc.connack(rawConnect{V5: true, ClientID: "sec-acl08-wild", KeepAlive: 30})
		if err != nil {
			if e.T.Local == nil {
				return "", fmt.Errorf("CN 'sec+#' CONNECT: %w (a deployed broker must trust the CI sub-CA and load its CRL: deploy <pki>/ca.crl and reload)", err)
			}
			return "", fmt.Errorf("CN 'sec+#' CONNECT: %w", err)
		}
		if code != 0 {
			return "", fmt.Errorf("CN 'sec+#' got CONNACK 0x%02x; the spec expects the connect to succeed and every ACL check to be denied", code)
		}
		topics := []string{"devices/" + a + "/cmd", "devices/sec/x", "devices/sec-acl08-wild/x"}
		for i, t := range topics {
			if err := rc.send(rawPublish(t, 1, uint16(i+1), []byte(canary+" "+t), true, nil)); err != nil {
				return "", err
			}
			p, err := rc.read(3 * time.Second)
			if err != nil || p.Type != 4 || len(p.Body) < 3 {
				return "", fmt.Errorf("no PUBACK for %s: %v", t, err)
			}
			codes = append(codes, fmt.Sprintf("%s:0x%02x", t, p.Body[2]))
			if p.Body[2] < 0x80 {
				allowed = append(allowed, t)
			}
		}
		return "CN 'sec+#' (CONNACK 0) published " + strings.Join(codes, " "), nil
	})
	if out.Status == Pass && len(allowed) > 0 {
		return fail("%s; broker ACCEPTED (reason < 0x80) %s", out.Evidence, strings.Join(allowed, ", "))
	}
	return out
}

func runACL09(ctx context.Context, e *Env) Outcome {
	a, b := e.Actor("ACL-09", "a"), e.Actor("ACL-09", "b")
	owner, err := e.connect311(ctx, a)
	if err != nil {
		return inconclusive("%v", err)
	}
	defer owner.close()
	topic := "devices/" + a + "/cmd"
	lint, lintErr := e.lintClientIDKeys(ctx)
	out := e.canaryProof(ctx, owner, topic, func(canary string) (string, error) {
		att, err := e.connect311(ctx, b, func(o *mqtt.ClientOptions) { o.SetClientID(a) })
		if err != nil {
			return "", err
		}
		defer att.close()
		if err := att.publish(ctx, topic, 1, false, []byte(canary+" 8883")); err != nil {
			return "", err
		}
		did := fmt.Sprintf("%s with client id %q published to %s on 8883", b, a, topic)
		if pw, ok := e.passwordListener(); ok {
			user, pass, err := e.pwCreds()
			if err != nil {
				return did, nil
			}
			e.pwMu.Lock()
			defer e.pwMu.Unlock()
			c, rp, err := pw.dial(ctx, e)
			if err != nil {
				return "", fmt.Errorf("%s: %w", pw.name, err)
			}
			defer c.Close()
			code, _, err := c.connack(rawConnect{ClientID: a, Username: &user, Password: &pass, KeepAlive: 30})
			if err != nil || code != 0 {
				return "", fmt.Errorf("%s: positive control login as %s: code %d %v (%s)", pw.name, user, code, err, rp)
			}
			if err := c.send(rawPublish(topic, 1, 1, []byte(canary+" "+pw.name), false, nil)); err != nil {
				return "", err
			}
			_, _ = c.read(3 * time.Second)
			did += fmt.Sprintf("; %s as %s with client id %q too", pw.name, user, a)
		}
		return did, nil
	})
	if len(lint) > 0 {
		if out.Status == Pass {
			return fail("delivery blocked, but lint: %s", strings.Join(lint, "; "))
		}
		return fail("%s; lint: %s", out.Evidence, strings.Join(lint, "; "))
	}
	if out.Status == Pass {
		if lintErr != nil {
			out.Evidence = oneLine(out.Evidence + "; ACL %c lint not run: " + lintErr.Error())
		} else {
			out.Evidence = oneLine(out.Evidence + "; ACL has no %c rule")
		}
	}
	return out
}

// lintClientIDKeys is ACL-09's static half: hostconfig's %c findings on the
// ACLs the broker loads, read through the host.
func (e *Env) lintClientIDKeys(ctx context.Context) ([]string, error) {
	return e.lintMatching(ctx, "%c")
}

// runACL01 runs ACL-01 (its catalog entry is in this file).
func runACL01(ctx context.Context, e *Env) Outcome {
	return e.crossRead(ctx, "ACL-01", func(a, b string) []string {
		return []string{"devices/" + a + "/#", "devices/" + a + "/cmd", "devices/" + b + "/#"}
	})
}

// runACL02 runs ACL-02 (its catalog entry is in this file).
func runACL02(ctx context.Context, e *Env) Outcome {
	return e.crossRead(ctx, "ACL-02", func(a, b string) []string {
		return []string{"#", "+/#", "+/+/+", "devices/+/cmd", "devices/#"}
	})
}
