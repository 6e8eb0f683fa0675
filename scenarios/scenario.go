package scenarios

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Scenario is one load test: which fleet connects how, what it does stage
// by stage, and what must hold at the end. Parse, Load, Builtin and Resolve
// return scenarios with defaults applied and validated; a scenario built in
// Go should go through SetDefaults and Validate before it is run.
type Scenario struct {
	// Name identifies the scenario in reports and result files
	// (letters, digits, '.', '-', '_'). Defaults to the file name without
	// its extension.
	Name        string
	Description string
	Fleet       Fleet
	Connect     Connect
	// Stages run in order. Stages[0] is always a ramp (see StageRamp).
	Stages []Stage
	// Commands, when not nil, makes the backend identity send commands to
	// random devices during every stage after the ramp.
	Commands *Commands
	// Thresholds in file order.
	Thresholds []Threshold
	// Source is the file name the scenario came from ("launch.yaml" for a
	// built-in), used in every problem reported about it.
	Source string

	// lines maps a field path ("stages[2].every") to the line it was
	// written on. A path is present exactly when the file set that field,
	// which lets Validate tell an explicit zero ("every: 0s", an error)
	// from an absent field (a default, or "required"). Nil for scenarios
	// built in Go, where zero means absent.
	lines map[string]pos
	// bad holds the paths whose value could not be decoded; Validate does
	// not report them a second time.
	bad map[string]bool
}

// Transport is how devices reach the broker.
type Transport string

const (
	// TransportMQTTS is MQTT over TLS with a client certificate (mTLS),
	// straight to Mosquitto.
	TransportMQTTS Transport = "mqtts"
	// TransportWSS is MQTT over WebSocket over TLS through nginx, with the
	// device's username and password (the .pass file of its identity).
	TransportWSS Transport = "wss"
)

// Transports lists the valid transports.
var Transports = []Transport{TransportMQTTS, TransportWSS}

// Protocol is the MQTT version a fleet speaks.
type Protocol string

// The protocol versions a fleet can speak.
const (
	Protocol311 Protocol = "3.1.1"
	Protocol5   Protocol = "5"
)

// Protocols lists the valid protocol versions.
var Protocols = []Protocol{Protocol311, Protocol5}

// Fleet describes the virtual devices.
type Fleet struct {
	// Count is the number of devices, 1..MaxDevices.
	Count int
	// Prefix starts every device id (default "dev-"); see DeviceID.
	Prefix    string
	Transport Transport
	// KeepAlive is the MQTT keep-alive (default 30s; 0 disables it;
	// whole seconds up to 65535s, as the protocol carries seconds).
	KeepAlive time.Duration
	// CleanSession is the MQTT clean-session flag (default true). With
	// false and QoS >= 1 the broker queues messages for a device that is
	// away, which is what a reconnect storm then measures.
	CleanSession bool
	// QoS of telemetry and commands: 0, 1 (default) or 2.
	QoS byte
	// Protocol is the MQTT version: "3.1.1" (default) or "5". An MQTT 5
	// device asks for a session expiry instead of a persistent session,
	// honours the broker's Receive Maximum, and reads reason codes: a
	// PUBACK >= 0x80 is a failed publish with its reason.
	Protocol Protocol
	// SessionExpiry (MQTT 5 only) is how long the broker keeps a device's
	// session after the connection ends: 0 (default) with clean_session
	// true, DefaultSessionExpiry with clean_session false.
	SessionExpiry time.Duration
	// TopicAliases (MQTT 5 only): a device sends its telemetry topic once
	// per connection, then only a two-byte alias (when the broker allows
	// aliases).
	TopicAliases bool
	// SourceAddrs are the local IP addresses devices connect from, round
	// robin; empty means the system's choice. One source address gives
	// about PortsPerSource connections to one broker port, so fleets larger
	// than that need several. In YAML either "sources: 4" (loopback
	// 127.0.0.1 .. 127.0.0.4, for the local stack; Linux routes all of
	// 127/8 to lo without configuration) or an explicit
	// "source_addrs: [10.0.0.5, 10.0.0.6]". Stored normalized
	// (netip.Addr.String()).
	SourceAddrs []string
	// Profiles mixes device TLS profiles (package devices): each device
	// handshakes as its board does. In YAML a mapping of profile to share,
	// "profiles: {esp8266-bearssl: 60%, esp32-arduino-3: 40%}", summing to
	// 100%; empty means every device is the Go client. mqtts only.
	Profiles []ProfileShare
}

// ProfileShare is one device profile's share of the fleet (0 < Share <= 1).
type ProfileShare struct {
	Profile string
	Share   float64
}

// Connect paces how the fleet connects, during the ramp and on reconnects.
type Connect struct {
	// Rate is connection attempts per second during the ramp ("800/s").
	Rate float64
	// MaxInFlight bounds connection attempts that have not yet got their
	// CONNACK (default 256), so a slow broker slows the ramp instead of
	// piling up handshakes.
	MaxInFlight int
	// Timeout for one attempt: TCP + TLS + CONNACK (default 10s).
	Timeout time.Duration
	// Backoff between reconnect attempts of one device.
	Backoff Backoff
}

// Backoff is an exponential reconnect backoff: Min doubling up to Max, each
// wait multiplied by a random factor in [1-Jitter, 1+Jitter].
type Backoff struct {
	Min, Max time.Duration // defaults 500ms and 30s
	Jitter   float64       // fraction 0..1 (YAML "20%" or 0.2), default 0.2
}

// StageKind says what a stage does.
type StageKind string

const (
	// StageRamp connects the whole fleet at Connect.Rate with at most
	// Connect.MaxInFlight attempts in flight. It is always the first stage
	// and only the first: its length follows from the rate (see
	// Scenario.RampDuration), so it takes no duration. Devices do not
	// publish on a timer during the ramp; each publishes its retained
	// status "online" once connected.
	StageRamp StageKind = "ramp"
	// StageSteady: every device publishes every Every (or at Rate per
	// second) for Duration.
	StageSteady StageKind = "steady"
	// StageBurst: every device publishes Count messages back to back,
	// devices starting spread over Within (0: all at once); the stage lasts
	// Duration, which includes the time to deliver the burst.
	StageBurst StageKind = "burst"
	// StageSoak is a long steady stage; it takes the same fields and is
	// reported separately, so a slow leak shows against the steady numbers.
	StageSoak StageKind = "soak"
	// StageReconnectStorm drops Share of the fleet abruptly (no
	// DISCONNECT, so the broker publishes their wills), spread over Within,
	// and lets them reconnect with Connect.Backoff. The stage lasts
	// Duration. With Every or Rate set, all connected devices keep
	// publishing during the storm; without, nothing is published on a timer.
	StageReconnectStorm StageKind = "reconnect-storm"
)

// StageKinds lists the valid stage kinds.
var StageKinds = []StageKind{StageRamp, StageSteady, StageBurst, StageSoak, StageReconnectStorm}

// Payload names the telemetry a device publishes. The sensor payloads are
// JSON as the boards in the field send it (device, seq, ts and readings).
type Payload string

// The telemetry payloads.
const (
	PayloadDHT11   Payload = "dht11"   // temperature + humidity, whole numbers
	PayloadHTU21D  Payload = "htu21d"  // temperature + humidity, two decimals
	PayloadDS18B20 Payload = "ds18b20" // temperature only
	PayloadBattery Payload = "battery" // battery voltage and percentage
	// PayloadRaw is Size bytes with the sequence number and timestamp in a
	// binary header, for measuring message size rather than a sensor.
	PayloadRaw Payload = "raw"
)

// Payloads lists the valid telemetry payloads.
var Payloads = []Payload{PayloadDHT11, PayloadHTU21D, PayloadDS18B20, PayloadBattery, PayloadRaw}

// DefaultPayload is the telemetry of a publishing stage that names none.
const DefaultPayload = PayloadDHT11

// Stage is one step of a scenario; see the StageKind constants for what
// each kind does and which fields it takes (Validate enforces it).
type Stage struct {
	Kind StageKind
	// Name is unique within the scenario; defaults to "<kind>-<index>"
	// (index in Stages, so "steady-1" is the stage after the ramp).
	Name string
	// Duration is how long the stage runs: required for steady and soak;
	// for burst it defaults to Within + BurstDrain, for reconnect-storm to
	// Within + StormSettle. Zero for the ramp.
	Duration time.Duration
	// Every is the publish interval of each device; Rate is the same as
	// messages per second per device. At most one is set; Interval gives
	// the interval whichever was written.
	Every time.Duration
	Rate  float64
	// Payload is the telemetry published (DefaultPayload when the stage
	// publishes and names none; empty when it does not publish).
	Payload Payload
	// Size is the payload size in bytes for raw, the minimum size (JSON
	// padded with a "pad" field) for the sensor payloads; 0 means the
	// sensor's natural size.
	Size int
	// Share is the fraction 0 < Share <= 1 of the fleet a reconnect storm
	// drops (YAML "20%"); DropCount turns it into a number of devices.
	Share float64
	// Within spreads the start of a storm's drops or a burst's messages
	// over this window (storm default 10s).
	Within time.Duration
	// Count is the number of messages each device publishes in a burst.
	Count int
	// Line is the line of the stage in its file (0 when built in Go).
	Line int
}

// Commands makes the backend identity publish commands to
// devices/<id>/cmd/<payload> of random devices, at Rate per second in total,
// during every stage after the ramp. Devices answer on their status topic.
type Commands struct {
	Rate    float64
	Payload CommandPayload // default CommandRelay
}

// CommandPayload names a command.
type CommandPayload string

// CommandRelay switches a relay: "ON" or "OFF", alternating.
const CommandRelay CommandPayload = "relay"

// CommandPayloads lists the valid command payloads.
var CommandPayloads = []CommandPayload{CommandRelay}

// Limits and defaults.
const (
	MaxDevices = 1_000_000
	// PortsPerSource is a conservative count of the ephemeral ports one
	// source address has towards one broker address and port (Linux's
	// default ip_local_port_range 32768-60999 gives 28,232).
	PortsPerSource = 28_000
	// MaxPayloadSize bounds Stage.Size: beyond it a test measures the
	// network, not the broker.
	MaxPayloadSize = 1 << 20
	// MaxStageDuration bounds a stage's duration and within: a load test
	// stage longer than a week is a mistake in units ("30h" for "30m").
	MaxStageDuration = 7 * 24 * time.Hour
	// BurstDrain is the default time a burst stage runs after Within, for
	// the burst to be delivered.
	BurstDrain = 10 * time.Second
	// StormSettle is the default time a reconnect storm runs after Within,
	// for the dropped devices to come back.
	StormSettle = 30 * time.Second
	// DefaultSessionExpiry is an MQTT 5 fleet's session expiry with
	// clean_session false: long enough for any reconnect storm.
	DefaultSessionExpiry = 10 * time.Minute
	// DefaultStormWithin is the default window of a reconnect storm.
	DefaultStormWithin = 10 * time.Second
)

// DefaultFleet returns the fleet defaults; Count has none.
func DefaultFleet() Fleet {
	return Fleet{Prefix: "dev-", Transport: TransportMQTTS, KeepAlive: 30 * time.Second, CleanSession: true, QoS: 1, Protocol: Protocol311}
}

// DefaultConnect returns the connect defaults; Rate has one too (200/s) so
// that a scenario without a connect section still runs at a gentle pace.
func DefaultConnect() Connect {
	return Connect{
		Rate:        200,
		MaxInFlight: 256,
		Timeout:     10 * time.Second,
		Backoff:     Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second, Jitter: 0.2},
	}
}

// Publishes reports whether devices publish on a timer during the stage.
func (st Stage) Publishes() bool { return st.Every > 0 || st.Rate > 0 }

// Interval is the per-device publish interval of the stage, from Every or
// Rate; 0 when the stage does not publish on a timer.
func (st Stage) Interval() time.Duration {
	if st.Every > 0 {
		return st.Every
	}
	if st.Rate > 0 {
		return time.Duration(float64(time.Second) / st.Rate)
	}
	return 0
}

// DropCount is how many of devices a reconnect storm drops:
// ceil(Share × devices), so that a storm never drops nobody; 0 for other
// kinds. Each shard applies it to its own devices.
func (st Stage) DropCount(devices int) int {
	if st.Kind != StageReconnectStorm || devices <= 0 || !(st.Share > 0) {
		return 0
	}
	n := int(math.Ceil(st.Share * float64(devices)))
	return min(max(n, 1), devices)
}

// DeviceID is the id (certificate CN, MQTT username and client id) of
// device i, 0 <= i < Count: Prefix followed by i+1 zero-padded to at least
// five digits and to the width of Count, so ids sort in creation order.
func (f Fleet) DeviceID(i int) string {
	w := len(strconv.Itoa(f.Count))
	if w < 5 {
		w = 5
	}
	return fmt.Sprintf("%s%0*d", f.Prefix, w, i+1)
}

// RampDuration is how long the ramp takes at least: Count / Connect.Rate
// (it takes longer when MaxInFlight or the broker is the bottleneck).
func (s *Scenario) RampDuration() time.Duration {
	if s.Connect.Rate <= 0 || math.IsInf(s.Connect.Rate, 0) || math.IsNaN(s.Connect.Rate) {
		return 0
	}
	sec := float64(s.Fleet.Count) / s.Connect.Rate
	if sec > float64(math.MaxInt64/int64(time.Second)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(sec * float64(time.Second))
}

// TotalDuration is the sum of the stage durations after the ramp (whose
// length depends on the rate and the broker; see RampDuration).
func (s *Scenario) TotalDuration() time.Duration {
	var total time.Duration
	for _, st := range s.Stages {
		if st.Kind == StageRamp {
			continue
		}
		if total > time.Duration(math.MaxInt64)-st.Duration {
			return time.Duration(math.MaxInt64)
		}
		total += st.Duration
	}
	return total
}

// EstimatedDuration is RampDuration + TotalDuration: the expected length of
// a run when the broker keeps up.
func (s *Scenario) EstimatedDuration() time.Duration {
	r, t := s.RampDuration(), s.TotalDuration()
	if r > time.Duration(math.MaxInt64)-t {
		return time.Duration(math.MaxInt64)
	}
	return r + t
}

// WithDevices returns a copy of s with Fleet.Count = n, validated again
// (n must be in range, and the source addresses must still suffice). The
// copy shares nothing mutable with s.
func (s *Scenario) WithDevices(n int) (*Scenario, error) {
	c := s.Clone()
	c.Fleet.Count = n
	if c.lines != nil {
		// The count is no longer what the file says; problems about it
		// should not point at the file's line.
		c.lines["fleet.count"] = pos{}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("--devices %d: %w", n, err)
	}
	return c, nil
}

// Clone returns a deep copy of s.
func (s *Scenario) Clone() *Scenario {
	c := *s
	c.Fleet.SourceAddrs = append([]string(nil), s.Fleet.SourceAddrs...)
	c.Stages = append([]Stage(nil), s.Stages...)
	c.Thresholds = append([]Threshold(nil), s.Thresholds...)
	if s.Commands != nil {
		cmd := *s.Commands
		c.Commands = &cmd
	}
	if s.lines != nil {
		c.lines = make(map[string]pos, len(s.lines))
		for k, v := range s.lines {
			c.lines[k] = v
		}
	}
	if s.bad != nil {
		c.bad = make(map[string]bool, len(s.bad))
		for k, v := range s.bad {
			c.bad[k] = v
		}
	}
	return &c
}

// SetDefaults fills every field the file (or the Go code) left out with its
// default. Parse calls it; call it on a scenario built in Go before
// Validate. Explicitly written zeros stay, for Validate to report. In Go,
// where nothing records what was written, QoS 0, CleanSession false and
// Jitter 0 are taken as meant: start from DefaultFleet and DefaultConnect
// to get their defaults.
func (s *Scenario) SetDefaults() {
	df, dc := DefaultFleet(), DefaultConnect()
	if !s.has("fleet.prefix") && s.Fleet.Prefix == "" {
		s.Fleet.Prefix = df.Prefix
	}
	if !s.has("fleet.transport") && s.Fleet.Transport == "" {
		s.Fleet.Transport = df.Transport
	}
	if !s.has("fleet.keepalive") && s.Fleet.KeepAlive == 0 {
		s.Fleet.KeepAlive = df.KeepAlive
	}
	if s.lines != nil && !s.has("fleet.clean_session") {
		// In Go the zero value false is a choice; in a file absence is not.
		s.Fleet.CleanSession = df.CleanSession
	}
	if !s.has("fleet.qos") && s.Fleet.QoS == 0 && s.lines != nil {
		s.Fleet.QoS = df.QoS
	}
	if !s.has("fleet.protocol") && s.Fleet.Protocol == "" {
		s.Fleet.Protocol = df.Protocol
	}
	if !s.has("fleet.session_expiry") && s.Fleet.SessionExpiry == 0 && s.Fleet.Protocol == Protocol5 && !s.Fleet.CleanSession {
		s.Fleet.SessionExpiry = DefaultSessionExpiry
	}
	if !s.has("connect.rate") && s.Connect.Rate == 0 {
		s.Connect.Rate = dc.Rate
	}
	if !s.has("connect.max_in_flight") && s.Connect.MaxInFlight == 0 {
		s.Connect.MaxInFlight = dc.MaxInFlight
	}
	if !s.has("connect.timeout") && s.Connect.Timeout == 0 {
		s.Connect.Timeout = dc.Timeout
	}
	if !s.has("connect.backoff.min") && s.Connect.Backoff.Min == 0 {
		s.Connect.Backoff.Min = dc.Backoff.Min
	}
	if !s.has("connect.backoff.max") && s.Connect.Backoff.Max == 0 {
		s.Connect.Backoff.Max = dc.Backoff.Max
	}
	if !s.has("connect.backoff.jitter") && s.Connect.Backoff.Jitter == 0 && s.lines != nil {
		s.Connect.Backoff.Jitter = dc.Backoff.Jitter
	}
	if s.Commands != nil && s.Commands.Payload == "" && !s.has("commands.payload") {
		s.Commands.Payload = CommandRelay
	}
	for i := range s.Stages {
		st := &s.Stages[i]
		p := fmt.Sprintf("stages[%d]", i)
		if st.Name == "" && !s.has(p+".name") {
			st.Name = fmt.Sprintf("%s-%d", st.Kind, i)
		}
		switch st.Kind {
		case StageReconnectStorm:
			if st.Within == 0 && !s.has(p+".within") {
				st.Within = DefaultStormWithin
			}
			// The bounds keep the sum from overflowing; Validate reports
			// a within out of range.
			if st.Duration == 0 && !s.has(p+".duration") && st.Within >= 0 && st.Within <= MaxStageDuration {
				st.Duration = st.Within + StormSettle
			}
		case StageBurst:
			if st.Duration == 0 && !s.has(p+".duration") && st.Within >= 0 && st.Within <= MaxStageDuration {
				st.Duration = st.Within + BurstDrain
			}
		}
		publishes := st.Publishes() || st.Kind == StageBurst ||
			(st.Kind == StageSteady || st.Kind == StageSoak)
		if publishes && st.Payload == "" && !s.has(p+".payload") {
			st.Payload = DefaultPayload
		}
	}
}

// has reports whether the file set the field at path.
func (s *Scenario) has(path string) bool {
	_, ok := s.lines[path]
	return ok
}

// pos is where a field was written: 1-based line and column.
type pos struct{ line, col int }

// Line returns the line the field at path ("stages[2].every") was written
// on, or of its nearest enclosing field; 0 when unknown.
func (s *Scenario) Line(path string) int { return s.pos(path).line }

func (s *Scenario) pos(path string) pos {
	for p := path; p != ""; p = parentPath(p) {
		if at, ok := s.lines[p]; ok {
			// A field with no line was set in Go (WithDevices): it has
			// no place in the file, and its parent's line would mislead.
			return at
		}
	}
	return pos{}
}

// parentPath strips the last element of a field path:
// "stages[2].every" -> "stages[2]" -> "stages" -> "".
func parentPath(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		switch p[i] {
		case '.':
			return p[:i]
		case '[':
			return p[:i]
		}
	}
	return ""
}
