package scenarios

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"
)

// Validate reports every problem of the scenario at once (see Problem):
// ranges, per-kind stage fields, and the rules that span fields. Problems
// carry the line of the field when the scenario came from a file. Parse
// already calls it; call it on a scenario built or changed in Go, after
// SetDefaults.
func (s *Scenario) Validate() error { return s.validate().err() }

// validator gathers problems about one scenario.
type validator struct {
	s     *Scenario
	probs problemList
}

// at records a problem about the field at path, with the line the file
// gave it, unless decoding the field already failed.
func (v *validator) at(path, msg, fix string) {
	for p := path; p != ""; p = parentPath(p) {
		if v.s.bad[p] {
			// Already reported, or inside something already reported
			// ("fleet: must be a mapping" covers "fleet.count: required").
			return
		}
	}
	at := v.s.pos(path)
	v.probs = append(v.probs, &Problem{File: v.s.Source, Line: at.line, col: at.col, Path: path, Msg: msg, Fix: fix})
}

// set reports whether the field at path counts as given: written in the
// file, or non-zero in a scenario built in Go.
func (v *validator) set(path string, nonzero bool) bool {
	return nonzero || v.s.has(path) || v.s.bad[path]
}

func (s *Scenario) validate() problemList {
	v := &validator{s: s}
	v.name("name", s.Name, "name: launch-eu")
	v.fleet()
	v.connect()
	v.stages()
	v.commands()
	v.thresholds()
	return v.probs
}

// name checks a name that ends up in file names and report headings.
func (v *validator) name(path, name, fix string) {
	switch {
	case name == "":
		v.at(path, "must not be empty", fix)
	case len(name) > 64:
		v.at(path, fmt.Sprintf("is %d characters, more than 64", len(name)), "shorten it")
	case !validName(name):
		v.at(path, fmt.Sprintf("%q may only hold letters, digits, '.', '-' and '_', starting with a letter or digit", name), fix)
	}
}

func validName(s string) bool {
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			i > 0 && (r == '.' || r == '-' || r == '_')
		if !ok {
			return false
		}
	}
	return s != ""
}

func (v *validator) fleet() {
	f := v.s.Fleet
	switch {
	case !v.set("fleet.count", f.Count != 0):
		v.at("fleet.count", "required", "e.g. fleet: {count: 1000}")
	case f.Count < 1 || f.Count > MaxDevices:
		v.at("fleet.count", fmt.Sprintf("%d devices: must be 1..%d", f.Count, MaxDevices), "e.g. 5000")
	}
	v.prefix(f.Prefix)
	if !contains(Transports, f.Transport) {
		v.at("fleet.transport", fmt.Sprintf("%q is not a transport; mqtts is mTLS to Mosquitto, wss is WebSocket through nginx", f.Transport), oneOf(f.Transport, Transports))
	}
	switch k := f.KeepAlive; {
	case k < 0:
		v.at("fleet.keepalive", "must not be negative", `e.g. "30s", or "0s" to disable keep-alive`)
	case k > 65535*time.Second:
		v.at("fleet.keepalive", fmt.Sprintf("%s is more than MQTT's 65535s", formatDuration(k)), `e.g. "30s"`)
	case k%time.Second != 0:
		v.at("fleet.keepalive", fmt.Sprintf("%s is not whole seconds; MQTT carries keep-alive in seconds", formatDuration(k)), `e.g. "30s"`)
	}
	if f.QoS > 2 {
		v.at("fleet.qos", fmt.Sprintf("%d is not an MQTT QoS", f.QoS), "use 0, 1 or 2")
	}
	if !contains(Protocols, f.Protocol) {
		v.at("fleet.protocol", fmt.Sprintf("%q is not an MQTT version this tool speaks", f.Protocol), oneOf(f.Protocol, Protocols))
	}
	if f.Protocol != Protocol5 {
		if v.s.has("fleet.session_expiry") || f.SessionExpiry != 0 {
			v.at("fleet.session_expiry", "is MQTT 5 only", "add protocol: 5, or use clean_session with 3.1.1")
		}
		if f.TopicAliases {
			v.at("fleet.topic_aliases", "are MQTT 5 only", "add protocol: 5, or remove topic_aliases")
		}
	}
	switch e := f.SessionExpiry; {
	case e < 0:
		v.at("fleet.session_expiry", "must not be negative", `e.g. "10m"`)
	case e > math.MaxUint32*time.Second:
		v.at("fleet.session_expiry", fmt.Sprintf("%s is more than MQTT 5's 4294967295s", formatDuration(e)), `e.g. "10m"`)
	case e%time.Second != 0:
		v.at("fleet.session_expiry", fmt.Sprintf("%s is not whole seconds; MQTT 5 carries the expiry in seconds", formatDuration(e)), `e.g. "10m"`)
	}
	srcPath := "fleet.source_addrs"
	if v.s.has("fleet.sources") {
		srcPath = "fleet.sources"
	}
	for i, a := range f.SourceAddrs {
		if _, err := netip.ParseAddr(a); err != nil {
			v.at(fmt.Sprintf("fleet.source_addrs[%d]", i), fmt.Sprintf("%q is not an IP address", a), "e.g. 127.0.0.2")
		}
	}
	if len(f.Profiles) > 0 && f.Transport == TransportWSS {
		v.at("fleet.profiles", "device TLS profiles need transport mqtts (over wss nginx, not the board, terminates TLS)", "use transport: mqtts, or remove profiles")
	}
	if n := max(1, len(f.SourceAddrs)); f.Count <= MaxDevices && f.Count > n*PortsPerSource && !v.s.bad[srcPath] {
		need := (f.Count + PortsPerSource - 1) / PortsPerSource
		v.at("fleet.count", fmt.Sprintf("%d devices need at least %d source addresses, %d configured: one address has about %d ports towards one broker port", f.Count, need, len(f.SourceAddrs), PortsPerSource),
			fmt.Sprintf("add sources: %d to fleet for the local stack, or source_addrs: [...] with addresses of this machine", need))
	}
}

// prefix checks the device id prefix against the id policy of the PKI
// (letters, digits, '-', '_'; the id is the certificate CN, the MQTT
// username and the ACL key), and keeps devices clear of the observer and
// backend identities, which the ACL grants all of devices/#.
func (v *validator) prefix(p string) {
	const path = "fleet.prefix"
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			v.at(path, fmt.Sprintf("%q may only hold letters, digits, '-' and '_': device ids are certificate CNs, MQTT usernames and ACL keys", p), "e.g. dev-")
			return
		}
	}
	if len(p) > 32 {
		v.at(path, fmt.Sprintf("is %d characters, more than 32", len(p)), "e.g. dev-")
		return
	}
	low := strings.ToLower(p)
	for _, reserved := range []string{"observer", "backend"} {
		if strings.HasPrefix(low, reserved) || (low != "" && strings.HasPrefix(reserved, low)) {
			v.at(path, fmt.Sprintf("%q could make device ids that collide with the %s identities, which may read or write all of devices/#", p, reserved), "e.g. dev-")
			return
		}
	}
}

func (v *validator) connect() {
	c := v.s.Connect
	if !(c.Rate > 0) || math.IsInf(c.Rate, 0) {
		v.at("connect.rate", "must be > 0", `e.g. "800/s"`)
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 100_000 {
		v.at("connect.max_in_flight", fmt.Sprintf("%d: must be 1..100000", c.MaxInFlight), "e.g. 256")
	}
	if c.Timeout <= 0 {
		v.at("connect.timeout", "must be > 0", `e.g. "10s"`)
	}
	b := c.Backoff
	if b.Min <= 0 {
		v.at("connect.backoff.min", "must be > 0", `e.g. "500ms"`)
	}
	if b.Max <= 0 {
		v.at("connect.backoff.max", "must be > 0", `e.g. "30s"`)
	} else if b.Min > 0 && b.Max < b.Min {
		v.at("connect.backoff.max", fmt.Sprintf("%s is less than min %s", formatDuration(b.Max), formatDuration(b.Min)), "make max >= min")
	}
	if !(b.Jitter >= 0 && b.Jitter <= 1) {
		v.at("connect.backoff.jitter", fmt.Sprintf("%s: must be 0%%..100%%", formatFraction(b.Jitter)), `e.g. "20%"`)
	}
}

// stageFields says, per kind, which optional fields a stage takes beyond
// kind and name, and what the kind is for (used in fixes).
var stageFields = map[StageKind]struct {
	allowed []string
	what    string
}{
	StageRamp:           {nil, "a ramp connects the fleet at connect.rate"},
	StageSteady:         {[]string{"duration", "every", "rate", "payload", "size"}, "a steady stage takes duration, every or rate, payload, size"},
	StageSoak:           {[]string{"duration", "every", "rate", "payload", "size"}, "a soak stage takes duration, every or rate, payload, size"},
	StageBurst:          {[]string{"count", "within", "duration", "payload", "size"}, "a burst stage takes count, within, duration, payload, size"},
	StageReconnectStorm: {[]string{"share", "within", "duration", "every", "rate", "payload", "size"}, "a reconnect-storm stage takes share, within, duration, every or rate, payload, size"},
}

func (v *validator) stages() {
	st := v.s.Stages
	if len(st) == 0 {
		if !v.s.bad["stages"] {
			v.at("stages", "at least one stage is required", "e.g. stages: [{kind: ramp}, {kind: steady, duration: 1m, every: 5s}]")
		}
		return
	}
	names := map[string]int{}
	for i := range st {
		v.stage(i, st[i])
		if st[i].Name == "" {
			continue
		}
		if first, dup := names[st[i].Name]; dup {
			v.at(fmt.Sprintf("stages[%d].name", i), fmt.Sprintf("%q is also the name of stages[%d]", st[i].Name, first), "give each stage its own name")
		} else {
			names[st[i].Name] = i
		}
	}
}

func (v *validator) stage(i int, st Stage) {
	p := fmt.Sprintf("stages[%d]", i)
	if v.s.bad[p] {
		return // not a mapping: already reported, nothing to check
	}
	f := func(name string) string { return p + "." + name }
	spec, known := stageFields[st.Kind]
	switch {
	case !v.set(f("kind"), st.Kind != ""):
		v.at(f("kind"), "required", oneOf("", StageKinds))
		return
	case !known:
		v.at(f("kind"), fmt.Sprintf("%q is not a stage kind", st.Kind), oneOf(st.Kind, StageKinds))
		return
	}
	if i == 0 && st.Kind != StageRamp {
		v.at(f("kind"), "the first stage must be a ramp, which connects the fleet", "add - {kind: ramp} before it")
	}
	if i > 0 && st.Kind == StageRamp {
		v.at(f("kind"), "only the first stage may be a ramp: the fleet is connected once", "remove it, or use reconnect-storm with share: 100% to reconnect everyone")
	}
	if v.set(f("name"), st.Name != "") {
		v.name(f("name"), st.Name, "e.g. name: warm-up")
	}

	given := map[string]bool{
		"duration": v.set(f("duration"), st.Duration != 0),
		"every":    v.set(f("every"), st.Every != 0),
		"rate":     v.set(f("rate"), st.Rate != 0),
		"payload":  v.set(f("payload"), st.Payload != ""),
		"size":     v.set(f("size"), st.Size != 0),
		"share":    v.set(f("share"), st.Share != 0),
		"within":   v.set(f("within"), st.Within != 0),
		"count":    v.set(f("count"), st.Count != 0),
	}
	for _, name := range []string{"duration", "every", "rate", "payload", "size", "share", "within", "count"} {
		if given[name] && !contains(spec.allowed, name) {
			v.at(f(name), fmt.Sprintf("not used by a %s stage", st.Kind), "remove it; "+spec.what)
			delete(given, name) // no further checks on a field that must go
		}
	}

	// Duration.
	switch {
	case (st.Kind == StageSteady || st.Kind == StageSoak) && !given["duration"]:
		v.at(f("duration"), "required", `e.g. "2m"`)
	case given["duration"] && st.Duration <= 0:
		v.at(f("duration"), "must be > 0", `e.g. "2m"`)
	case given["duration"] && st.Duration > MaxStageDuration:
		v.at(f("duration"), fmt.Sprintf("%s is more than a week", formatDuration(st.Duration)), `check the unit: "30m", not "30h"`)
	case given["duration"] && st.Within > 0 && st.Duration < st.Within:
		// Also against the default within: a storm cut short by its
		// own stage would not drop its share.
		v.at(f("duration"), fmt.Sprintf("%s is shorter than within %s", formatDuration(st.Duration), formatDuration(st.Within)), "make duration >= within")
	}

	// Publishing: every or rate.
	switch {
	case given["every"] && given["rate"]:
		v.at(f("rate"), "every and rate both set; they say the same thing", "keep one: every: 5s or rate: 0.2/s")
	case (st.Kind == StageSteady || st.Kind == StageSoak) && !given["every"] && !given["rate"]:
		v.at(f("every"), "required: how often each device publishes", "e.g. every: 5s, or rate: 0.2/s")
	case given["every"] && st.Every <= 0:
		v.at(f("every"), "must be > 0", `e.g. "5s"`)
	case given["rate"] && !(st.Rate > 0):
		v.at(f("rate"), "must be > 0", `e.g. "0.2/s"`)
	case st.Duration > 0 && st.Interval() > st.Duration && st.Kind != StageReconnectStorm:
		v.at(f("every"), fmt.Sprintf("interval %s is longer than the %s stage: no device would publish", formatDuration(st.Interval()), formatDuration(st.Duration)), "publish more often or run longer")
	case given["rate"] && st.Rate > 1000:
		v.at(f("rate"), "more than 1000 messages per second per device", `a device's rate, e.g. "0.2/s"; the fleet's total is count × rate`)
	}
	if st.Kind == StageReconnectStorm && !given["every"] && !given["rate"] {
		for _, name := range []string{"payload", "size"} {
			if given[name] {
				v.at(f(name), "has no effect: devices publish during a storm only with every or rate", `add every: "5s", or remove it`)
				delete(given, name)
			}
		}
	}

	// Payload and size.
	if given["payload"] && !contains(Payloads, st.Payload) {
		v.at(f("payload"), fmt.Sprintf("%q is not a payload", st.Payload), oneOf(st.Payload, Payloads))
	}
	switch {
	case given["size"] && (st.Size < 0 || st.Size > MaxPayloadSize):
		v.at(f("size"), fmt.Sprintf("%d bytes: must be 0..1MiB", st.Size), "e.g. 256 or 1KiB")
	case st.Payload == PayloadRaw && st.Size < RawHeaderSize:
		v.at(f("size"), fmt.Sprintf("a raw payload needs size >= %d for its header, the sequence number and send time", RawHeaderSize), "e.g. size: 256")
	}

	// Storm and burst.
	if st.Kind == StageReconnectStorm {
		switch {
		case !given["share"]:
			v.at(f("share"), "required: the part of the fleet to drop", `e.g. "20%"`)
		case !(st.Share > 0 && st.Share <= 1):
			v.at(f("share"), fmt.Sprintf("%s: must be more than 0%% and at most 100%%", formatFraction(st.Share)), `e.g. "20%"`)
		}
	}
	switch {
	case given["within"] && st.Within < 0:
		v.at(f("within"), "must not be negative", `e.g. "10s", or "0s" for all at once`)
	case given["within"] && st.Within > MaxStageDuration:
		v.at(f("within"), fmt.Sprintf("%s is more than a week", formatDuration(st.Within)), `e.g. "10s"`)
	}
	if st.Kind == StageBurst {
		switch {
		case !given["count"]:
			v.at(f("count"), "required: messages each device publishes in the burst", "e.g. 10")
		case st.Count < 1 || st.Count > 100_000:
			v.at(f("count"), fmt.Sprintf("%d: must be 1..100000", st.Count), "e.g. 10")
		}
	}
}

// RawHeaderSize is the smallest raw payload: an 8-byte big-endian
// sequence number and an 8-byte send time (Unix nanoseconds).
const RawHeaderSize = 16

func (v *validator) commands() {
	c := v.s.Commands
	if c == nil {
		return
	}
	if !(c.Rate > 0) || math.IsInf(c.Rate, 0) {
		v.at("commands.rate", "must be > 0", `e.g. "50/s" (commands per second across the fleet)`)
	}
	if !contains(CommandPayloads, c.Payload) {
		v.at("commands.payload", fmt.Sprintf("%q is not a command payload", c.Payload), oneOf(c.Payload, CommandPayloads))
	}
	if len(v.s.Stages) == 1 && v.s.Stages[0].Kind == StageRamp {
		v.at("commands", "no stage after the ramp to send commands in", "add a steady stage, or remove commands")
	}
}

func (v *validator) thresholds() {
	s := v.s
	publishes, steady := false, false
	for _, st := range s.Stages {
		publishes = publishes || st.Publishes() || st.Kind == StageBurst
		steady = steady || st.Kind == StageSteady || st.Kind == StageSoak
	}
	for i, t := range s.Thresholds {
		path := "thresholds." + t.Metric
		line := t.Line
		add := func(msg, fix string) {
			if line == 0 {
				line = s.Line(path)
			}
			v.probs = append(v.probs, &Problem{File: s.Source, Line: line, Path: path, Msg: msg, Fix: fix})
		}
		kind, ok := KindOf(t.Metric)
		if !ok {
			path = fmt.Sprintf("thresholds[%d]", i)
			add(fmt.Sprintf("unknown metric %q", t.Metric), metricFix(t.Metric))
			continue
		}
		if !contains(Ops, t.Op) {
			add(fmt.Sprintf("%q is not a comparison", t.Op), "use one of "+strings.Join(Ops, " "))
		}
		if t.Unit != kind.Unit() {
			add(fmt.Sprintf("unit %q does not fit a %s; use %q", t.Unit, kind, kind.Unit()), "e.g. "+kind.example())
		}
		if math.IsNaN(t.Value) || math.IsInf(t.Value, 0) {
			add("value is not a number", "e.g. "+kind.example())
		}
		switch {
		case strings.HasPrefix(t.Metric, "puback_") && s.Fleet.QoS == 0:
			add("there are no PUBACKs at QoS 0", "set fleet.qos: 1, or remove this threshold")
		case (t.Metric == "publish_rate" || t.Metric == "publish_success") && !publishes,
			strings.HasPrefix(t.Metric, "e2e_") && !publishes,
			strings.HasPrefix(t.Metric, "puback_") && !publishes:
			add("no stage publishes, so this metric has no data", "add a steady stage, or remove this threshold")
		case t.Metric == "publish_rate" && !steady:
			add("publish_rate is the mean over steady and soak stages, and there are none", "add a steady stage, or remove this threshold")
		}
	}
}

func contains[T comparable](list []T, x T) bool {
	for _, y := range list {
		if y == x {
			return true
		}
	}
	return false
}
