package security

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/mqttstack/mqttstack/infra/hostconfig"
)

// Least privilege of every identity class of the ACL (ACL-11…ACL-14).
// Devices are proven isolated by ACL-01…ACL-09. The privileged classes are
// proven by their representative, the suite's own member of the class:
// observer-8 (the password identity) for the observers and backend-8 for
// the backends. Mosquitto decides every ACL question from the username's
// rules plus the patterns, so two users whose rule sets are equal (with
// their own name written as %u) behave alike; ACL-14 holds the ACL the
// broker loaded against this table and fails on any block that no check
// covers.

// aclClass is an identity class whose limits checks prove by delivery.
type aclClass struct {
	name   string
	rules  []string // normalised "access topic" lines, sorted, own name as %u
	proven string   // the checks that prove its limits
}

var (
	devicePatterns = aclClass{name: "device (pattern)", rules: []string{"readwrite devices/%u/#"},
		proven: "ACL-01…ACL-09 (isolation), ACL-13 (subscriptions)"}
	observerClass = aclClass{name: "observer", rules: []string{"deny devices/%u/#", "read $SYS/#", "read devices/#"},
		proven: "ACL-11 (publishes nothing), ACL-13 (subscriptions)"}
	backendClass = aclClass{name: "backend", rules: []string{"readwrite devices/#"},
		proven: "ACL-12 (writes devices/# only), ACL-13 (subscriptions)"}
)

// aclRule is one topic or pattern line of an ACL file.
type aclRule struct {
	access, topic string
	line          int
}

// aclBlock is the rules of one user (user == "" for the topic lines before
// the first user line, which apply to anonymous clients).
type aclBlock struct {
	user  string
	line  int
	rules []aclRule
}

// aclFile is an ACL file as ACL-14 classifies it: its pattern lines apply
// to every client wherever they appear; topic lines to the user above them.
type aclFile struct {
	path     string
	patterns []aclRule
	blocks   []aclBlock // blocks[0] is the anonymous block
}

// aclFileOf groups hostconfig's parse of an ACL file into blocks.
func aclFileOf(a *hostconfig.ACLFile) aclFile {
	f := aclFile{path: a.Path, blocks: []aclBlock{{}}}
	idx := map[string]int{"": 0}
	for _, u := range a.Users {
		if _, ok := idx[u]; !ok {
			idx[u] = len(f.blocks)
			f.blocks = append(f.blocks, aclBlock{user: u})
		}
	}
	for _, r := range a.Rules {
		rule := aclRule{access: r.Access, topic: r.Topic, line: r.Line}
		if r.Kind == "pattern" {
			f.patterns = append(f.patterns, rule)
			continue
		}
		b := &f.blocks[idx[r.User]]
		if b.line == 0 {
			b.line = r.Line
		}
		b.rules = append(b.rules, rule)
	}
	return f
}

// normalise writes the rules as sorted "access topic" lines with user's
// own name (a whole topic level) as %u.
func normalise(rules []aclRule, user string) []string {
	var out []string
	for _, r := range rules {
		levels := strings.Split(r.topic, "/")
		for i, l := range levels {
			if user != "" && l == user {
				levels[i] = "%u"
			}
		}
		out = append(out, r.access+" "+strings.Join(levels, "/"))
	}
	sort.Strings(out)
	return out
}

func sameRules(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

// aclCoverage holds the ACL against the classes: the patterns must be the
// device class, every user block an observer or backend, no anonymous
// rules, and the representatives must be members of their class (else
// what their checks prove is about another rule set).
func aclCoverage(f aclFile, observer, backend string) (bad []string, summary string) {
	if got := normalise(f.patterns, ""); !sameRules(got, devicePatterns.rules) {
		where := f.path
		if len(f.patterns) > 0 {
			where = fmt.Sprintf("%s:%d", f.path, f.patterns[0].line)
		}
		bad = append(bad, fmt.Sprintf("%s: pattern rules [%s] are not the device class [%s] that %s prove", where, strings.Join(got, "; "), strings.Join(devicePatterns.rules, "; "), devicePatterns.proven))
	}
	if anon := f.blocks[0]; len(anon.rules) > 0 {
		bad = append(bad, fmt.Sprintf("%s:%d: topic rules for anonymous clients (before any user line) [%s]: no check covers them", f.path, anon.rules[0].line, strings.Join(normalise(anon.rules, ""), "; ")))
	}
	count := map[string]int{}
	seen := map[string]string{}
	for _, b := range f.blocks[1:] {
		got := normalise(b.rules, b.user)
		cls := ""
		for _, c := range []aclClass{observerClass, backendClass} {
			if sameRules(got, c.rules) {
				cls = c.name
			}
		}
		if cls == "" {
			bad = append(bad, fmt.Sprintf("%s:%d: user %s [%s] is in no class a check covers (observer [%s], backend [%s])", f.path, b.line, b.user, strings.Join(got, "; "), strings.Join(observerClass.rules, "; "), strings.Join(backendClass.rules, "; ")))
			continue
		}
		count[cls]++
		seen[b.user] = cls
	}
	for _, rep := range []struct {
		id  string
		cls aclClass
	}{{observer, observerClass}, {backend, backendClass}} {
		if seen[rep.id] != rep.cls.name {
			bad = append(bad, fmt.Sprintf("%s: %s, the identity %s exercise, is not an %s of this ACL (class %q): their proof does not cover the %s blocks", f.path, rep.id, rep.cls.proven, rep.cls.name, seen[rep.id], rep.cls.name))
		}
	}
	summary = fmt.Sprintf("%s: patterns = device class; %d observer blocks (%s), %d backend blocks (%s)", f.path, count[observerClass.name], observerClass.proven, count[backendClass.name], backendClass.proven)
	return bad, summary
}

// runACL14 reads the ACL files the broker loads (acl_file of its
// configuration, through the host) and requires every user and pattern
// block to belong to a class that a check exercises.
func runACL14(ctx context.Context, e *Env) Outcome {
	if e.host == nil {
		return needsHost("reading the ACL the broker loaded")
	}
	conf, err := e.brokerConf(ctx)
	if err != nil {
		return inconclusive("%v", err)
	}
	files := dedup(confValues(conf, "acl_file"))
	if len(files) == 0 {
		return fail("the broker loads no acl_file: every authenticated client may read and write everything")
	}
	var bad, parts []string
	for _, p := range files {
		a, err := hostconfig.ReadACLFile(ctx, e.host, p)
		if err != nil {
			return inconclusive("%s: %v", e.host.Name(), err)
		}
		wrong, summary := aclCoverage(aclFileOf(a), e.opts.PasswordIdentity, sesBackend)
		bad = append(bad, wrong...)
		parts = append(parts, summary)
	}
	if len(bad) > 0 {
		return fail("%d uncovered: %s", len(bad), strings.Join(bad, "; "))
	}
	return pass("%s: %s", e.host.Name(), strings.Join(parts, "; "))
}

// published is what one attempted publish got back.
type published struct {
	topic  string
	retain bool
	code   int // v5 reason code, -1 when none
}

// publish5All publishes payload (with its topic appended) to every target
// over v5 QoS 1 and returns the reason codes.
func publish5All(ctx context.Context, c *client5, targets []published, payload string) []published {
	out := make([]published, len(targets))
	for i, t := range targets {
		t.code, _ = c.publishCode(ctx, &paho.Publish{Topic: t.topic, QoS: 1, Retain: t.retain, Payload: []byte(payload + " " + t.topic)})
		out[i] = t
	}
	return out
}

// acceptedOf lists the publishes the broker accepted (reason < 0x80).
func acceptedOf(ps []published) []string {
	var out []string
	for _, p := range ps {
		if p.code >= 0 && p.code < 0x80 {
			out = append(out, fmt.Sprintf("%s%s (0x%02x)", p.topic, map[bool]string{true: " retained"}[p.retain], p.code))
		}
	}
	return out
}

// retainedCanaries has the watcher subscribe filters afresh (the broker
// replays what is retained there) and returns the topics where a retained
// message carrying canary is stored.
func (e *Env) retainedCanaries(ctx context.Context, canary string, filters ...string) ([]string, error) {
	tap := e.watch.tap(func(m Msg) bool { return m.Retained })
	defer e.watch.untap(tap)
	if _, err := e.watch.c.subscribe(ctx, filters...); err != nil {
		return nil, fmt.Errorf("watcher resubscribe: %w", err)
	}
	if err := sleepCtx(ctx, canaryGrace); err != nil {
		return nil, err
	}
	var out []string
	for _, m := range tap.matching(payloadHas(canary)) {
		out = append(out, m.Topic)
	}
	return out, nil
}

// runACL11: the observer identity publishes canaries everywhere a leaked
// dashboard credential would: a device's cmd, telemetry and status,
// retained or not, its own pattern subtree, $SYS and another root; over v5
// QoS 1 (reason codes) and 3.1.1 QoS 0/1/2 (silently dropped when denied).
// Nothing may be delivered (watcher), nothing stored (retained replay),
// and every v5 publish must be refused (0x87: the only evidence for roots
// nobody may read). Control: the observer does read the device's topics.
func runACL11(ctx context.Context, e *Env) Outcome {
	a := e.Actor("ACL-11", "a")
	obs := e.opts.PasswordIdentity
	owner, err := e.connect311(ctx, a)
	if err != nil {
		return inconclusive("%v", err)
	}
	defer owner.close()
	e.pwMu.Lock()
	defer e.pwMu.Unlock()
	dev := "devices/" + a + "/"
	targets := []published{
		{topic: dev + "cmd"}, {topic: dev + "telemetry"}, {topic: dev + "status"},
		{topic: dev + "cmd", retain: true}, {topic: dev + "telemetry", retain: true}, {topic: dev + "status", retain: true},
		{topic: "devices/" + obs + "/telemetry"}, {topic: "devices/" + obs + "/status", retain: true},
		{topic: "$SYS/broker/version"}, {topic: "$SYS/sec-acl11", retain: true},
		{topic: "sec-acl11/x"}, {topic: "sec-acl11/x", retain: true},
	}
	var codes []published
	var o5 *client5
	defer func() {
		if o5 != nil {
			o5.close()
		}
	}()
	var canaryUsed string
	out := e.canaryProof(ctx, owner, dev+"telemetry", func(canary string) (string, error) {
		canaryUsed = canary
		o3, err := e.connect311(ctx, obs)
		if err != nil {
			return "", fmt.Errorf("observer %s (3.1.1): %w", obs, err)
		}
		for q := byte(0); q <= 2; q++ {
			_ = o3.publish(ctx, dev+"cmd", q, false, []byte(fmt.Sprintf("%s v3 q%d", canary, q)))
		}
		o3.close()
		o5, err = e.connect5(ctx, obs, nil)
		if err != nil {
			return "", fmt.Errorf("observer %s (v5): %w", obs, err)
		}
		if _, err := o5.subscribeAll(ctx, []string{dev + "#"}); err != nil {
			return "", fmt.Errorf("observer subscribe: %w", err)
		}
		codes = publish5All(ctx, o5, targets, canary)
		return fmt.Sprintf("%s published to %d targets (v5 QoS1) and %scmd (3.1.1 QoS0/1/2)", obs, len(targets), dev), nil
	})
	// clean up whatever a weakened ACL let the observer store
	defer func() {
		bg := context.WithoutCancel(ctx)
		for _, t := range targets {
			if !t.retain {
				continue
			}
			if strings.HasPrefix(t.topic, dev) {
				_ = owner.publish(bg, t.topic, 1, true, nil)
			} else if o5 != nil {
				_ = o5.publish(bg, t.topic, 1, true, nil)
			}
		}
	}()
	if out.Status != Pass {
		return out
	}
	if acc := acceptedOf(codes); len(acc) > 0 {
		return fail("%s; but the broker ACCEPTED the observer's publish to %s", out.Evidence, strings.Join(acc, ", "))
	}
	stored, err := e.retainedCanaries(ctx, canaryUsed, dev+"#", "devices/"+obs+"/#", "$SYS/sec-acl11")
	if err != nil {
		return inconclusive("%v", err)
	}
	if len(stored) > 0 {
		return fail("the observer's retained canary is STORED on %s", strings.Join(stored, ", "))
	}
	if len(o5.rec.matching(func(m Msg) bool {
		return strings.HasPrefix(m.Topic, dev) && strings.HasPrefix(string(m.Payload), "barrier-")
	})) == 0 {
		return inconclusive("%s; positive control: the observer did not receive the device's barrier on %stelemetry (is it an observer at all?)", out.Evidence, dev)
	}
	return pass("%s; all %d v5 publishes refused (0x87), nothing retained; the observer read the device's barrier", out.Evidence, len(codes))
}

// runACL12: the backend identity, subscribed to #, +/# and $SYS/#, must
// write devices/# (control: its command reaches the watcher and its own
// subscription) and nothing else: $SYS, another root, a sibling root,
// retained or not. Refusal is judged by the watcher (nothing delivered),
// by the v5 reason codes, and by the backend's own subscriptions (a write
// grant that comes with read would echo the canary back).
func runACL12(ctx context.Context, e *Env) Outcome {
	a := e.Actor("ACL-12", "a")
	owner, err := e.connect311(ctx, a)
	if err != nil {
		return inconclusive("%v", err)
	}
	defer owner.close()
	e.backendMu.Lock()
	defer e.backendMu.Unlock()
	bk, err := e.connect5(ctx, sesBackend, nil)
	if err != nil {
		return inconclusive("backend %s: %v", sesBackend, err)
	}
	defer bk.close()
	// Live only: after a load run the stack holds a retained status per
	// device, and two overlapping filters would queue each twice, past
	// the broker's per-client queue, dropping the control below. A write
	// outside devices/# is still seen: it would be delivered live.
	granted, err := bk.subscribeLive(ctx, []string{"#", "+/#", "$SYS/#"})
	if err != nil {
		return inconclusive("backend subscribe: %v", err)
	}
	// control: the backend's grant works both ways
	grant := "grant-" + nonce()
	gtap := e.watch.tap(payloadHas(grant))
	defer e.watch.untap(gtap)
	if err := bk.publish(ctx, "devices/"+a+"/cmd", 1, false, []byte(grant)); err != nil {
		return inconclusive("positive control: the backend's command to devices/%s/cmd: %v", a, err)
	}
	if _, ok := gtap.waitFor(ctx, barrierWait, payloadHas(grant)); !ok {
		return inconclusive("positive control: the backend's command to devices/%s/cmd did not reach the watcher", a)
	}
	if _, ok := bk.rec.waitFor(ctx, barrierWait, payloadHas(grant)); !ok {
		return inconclusive("positive control: the backend's # subscription did not deliver its own command (%s)", granted)
	}
	targets := []published{
		{topic: "$SYS/broker/version"}, {topic: "$SYS/sec-acl12", retain: true},
		{topic: "sec-acl12/x"}, {topic: "sec-acl12/x", retain: true},
		{topic: "devicesx/" + a + "/cmd"}, {topic: "devicesx/" + a + "/cmd", retain: true},
	}
	var codes []published
	var canaryUsed string
	out := e.canaryProof(ctx, owner, "devices/"+a+"/telemetry", func(canary string) (string, error) {
		canaryUsed = canary
		codes = publish5All(ctx, bk, targets, canary)
		return fmt.Sprintf("%s published to %d targets outside devices/# (v5 QoS1)", sesBackend, len(targets)), nil
	})
	defer func() {
		for _, t := range targets {
			if t.retain {
				_ = bk.publish(context.WithoutCancel(ctx), t.topic, 1, true, nil)
			}
		}
	}()
	if out.Status != Pass {
		return out
	}
	if acc := acceptedOf(codes); len(acc) > 0 {
		return fail("%s; but the broker ACCEPTED the backend's publish to %s", out.Evidence, strings.Join(acc, ", "))
	}
	var beyond []string
	for _, m := range bk.rec.all() {
		if !strings.HasPrefix(m.Topic, "devices/") {
			beyond = append(beyond, m.Topic)
		}
	}
	if len(beyond) > 0 {
		sort.Strings(beyond)
		return fail("%s; the backend RECEIVED %d message(s) outside devices/, e.g. %s (%s)", out.Evidence, len(beyond), beyond[0], granted)
	}
	if stored, err := e.retainedCanaries(ctx, canaryUsed, "$SYS/sec-acl12"); err != nil {
		return inconclusive("%v", err)
	} else if len(stored) > 0 {
		return fail("the backend's retained canary is STORED on %s", strings.Join(stored, ", "))
	}
	return pass("%s; all refused (0x87), nothing delivered or retained; its command to devices/%s/cmd was delivered (%s, only devices/ topics received)", out.Evidence, a, granted)
}

// sysWait bounds the wait for a periodic $SYS publish: the rendered
// sys_interval (10 s) and a margin.
const sysWait = 15 * time.Second

// runACL13 subscribes one member of each class (device B, the observer,
// the backend) to #, +/# and $SYS/# at once, lets device A publish and the
// broker replay $SYS, and requires each to receive only what its grant
// allows: B its own subtree, the backend devices/, the observer devices/
// and $SYS/. Controls: the observer gets $SYS (so $SYS was flowing), the
// observer and the backend get A's message, B gets its own.
func runACL13(ctx context.Context, e *Env) Outcome {
	a, b := e.Actor("ACL-13", "a"), e.Actor("ACL-13", "b")
	obs := e.opts.PasswordIdentity
	src, err := e.connect311(ctx, a)
	if err != nil {
		return inconclusive("%v", err)
	}
	defer src.close()
	e.pwMu.Lock()
	defer e.pwMu.Unlock()
	e.backendMu.Lock()
	defer e.backendMu.Unlock()
	type sub struct {
		who     string
		c       *client311
		allowed []string // topic prefixes the grant reads
	}
	subs := []*sub{{who: "device " + b, allowed: []string{"devices/" + b + "/"}},
		{who: "backend " + sesBackend, allowed: []string{"devices/"}},
		{who: "observer " + obs, allowed: []string{"devices/", "$SYS/"}}}
	ids := []string{b, sesBackend, obs}
	filters := []string{"#", "+/#", "$SYS/#", "$SYS/broker/version"}
	for i, s := range subs {
		c, err := e.connect311(ctx, ids[i])
		if err != nil {
			return inconclusive("%s: %v", s.who, err)
		}
		defer c.close()
		s.c = c
		if _, err := c.subscribe(ctx, filters...); err != nil {
			return inconclusive("%s subscribe: %v", s.who, err)
		}
	}
	for _, s := range subs {
		if _, err := s.c.rec.settle(ctx, 300*time.Millisecond, 10*time.Second); err != nil {
			return inconclusive("%v", err)
		}
	}
	msg := "src-" + nonce()
	if err := src.publish(ctx, "devices/"+a+"/telemetry", 1, false, []byte(msg)); err != nil {
		return inconclusive("device %s publish: %v", a, err)
	}
	own := "own-" + nonce()
	if err := subs[0].c.publish(ctx, "devices/"+b+"/telemetry", 1, false, []byte(own)); err != nil {
		return inconclusive("device %s own publish: %v", b, err)
	}
	// The retained $SYS replay can be lost: after a load run the retained
	// device statuses (queued once per overlapping filter) fill the
	// observer's queue at the broker, which drops what does not fit, so
	// the $SYS control may have to wait for the broker's next periodic
	// $SYS publish, which comes within one sys_interval (10 s, rendered);
	// the settle above drained the queue, so that one fits.
	controls := []struct {
		s    *sub
		pred func(Msg) bool
		what string
		wait time.Duration
	}{
		{subs[0], payloadHas(own), "its own message", barrierWait},
		{subs[1], payloadHas(msg), "device " + a + "'s telemetry", barrierWait},
		{subs[2], payloadHas(msg), "device " + a + "'s telemetry", barrierWait},
		{subs[2], func(m Msg) bool { return strings.HasPrefix(m.Topic, "$SYS/") }, "a $SYS message (within one sys_interval and a margin)", sysWait},
	}
	for _, c := range controls {
		if _, ok := c.s.c.rec.waitFor(ctx, c.wait, c.pred); !ok {
			return inconclusive("positive control: %s did not receive %s", c.s.who, c.what)
		}
	}
	if err := sleepCtx(ctx, canaryGrace); err != nil {
		return inconclusive("%v", err)
	}
	var bad, parts []string
	for _, s := range subs {
		n := 0
		for _, m := range s.c.rec.all() {
			ok := false
			for _, p := range s.allowed {
				ok = ok || strings.HasPrefix(m.Topic, p)
			}
			if !ok {
				bad = append(bad, fmt.Sprintf("%s RECEIVED %s", s.who, m.Topic))
			}
			n++
		}
		parts = append(parts, fmt.Sprintf("%s: %d msgs within %s", s.who, n, strings.Join(s.allowed, "+")))
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fail("beyond the grant: %s (and %d more)", bad[0], len(bad)-1)
	}
	return pass("each subscribed %s; %s", strings.Join(filters, " "), strings.Join(parts, "; "))
}
