package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"
)

// minimal is the smallest valid scenario; cases add to it.
const minimal = `
fleet: {count: 10}
stages:
  - {kind: ramp}
  - {kind: steady, duration: 10s, every: 1s}
`

func mustParse(t testing.TB, name, src string) *Scenario {
	t.Helper()
	s, err := Parse(name, []byte(src))
	if err != nil {
		t.Fatalf("Parse(%s):\n%v", name, err)
	}
	return s
}

func TestParseDefaults(t *testing.T) {
	s := mustParse(t, "dir/minimal.yaml", minimal)
	want := &Scenario{
		Name:    "minimal",
		Fleet:   Fleet{Count: 10, Prefix: "dev-", Transport: TransportMQTTS, KeepAlive: 30 * time.Second, CleanSession: true, QoS: 1, Protocol: Protocol311},
		Connect: DefaultConnect(),
		Stages: []Stage{
			{Kind: StageRamp, Name: "ramp-0", Line: 4},
			{Kind: StageSteady, Name: "steady-1", Duration: 10 * time.Second, Every: time.Second, Payload: PayloadDHT11, Line: 5},
		},
		Source: "dir/minimal.yaml",
	}
	if got := exported(s); !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(minimal) =\n%#v\nwant\n%#v", got, want)
	}
	if got, want := s.TotalDuration(), 10*time.Second; got != want {
		t.Errorf("TotalDuration() = %v, want %v", got, want)
	}
	if got, want := s.RampDuration(), 50*time.Millisecond; got != want {
		t.Errorf("RampDuration() = %v, want %v (10 devices at 200/s)", got, want)
	}
}

// exported returns a copy of s without the unexported bookkeeping, for
// comparing with a literal.
func exported(s *Scenario) *Scenario {
	c := s.Clone()
	c.lines, c.bad = nil, nil
	return c
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, s *Scenario)
	}{
		{
			name: "units",
			src: `
name: units
fleet: {count: 5_000, keepalive: 0s, qos: 2, clean_session: false, transport: wss}
connect: {rate: 600/m, max_in_flight: 8, timeout: 1500ms, backoff: {min: 100ms, max: 1m, jitter: 0.5}}
stages:
  - {kind: ramp}
  - {kind: soak, duration: 1h30m, rate: 12/m, payload: raw, size: 1KiB}
  - {kind: burst, count: 3, within: 2s}
  - {kind: reconnect-storm, share: 12.5%}
  - {kind: steady, name: tail, duration: 10s, every: 500ms, payload: battery, size: 2KB}
`,
			check: func(t *testing.T, s *Scenario) {
				f := s.Fleet
				if f.Count != 5000 || f.KeepAlive != 0 || f.QoS != 2 || f.CleanSession || f.Transport != TransportWSS {
					t.Errorf("fleet = %+v", f)
				}
				c := s.Connect
				if c.Rate != 10 || c.MaxInFlight != 8 || c.Timeout != 1500*time.Millisecond || c.Backoff != (Backoff{100 * time.Millisecond, time.Minute, 0.5}) {
					t.Errorf("connect = %+v", c)
				}
				soak := s.Stages[1]
				if soak.Duration != 90*time.Minute || soak.Rate != 0.2 || soak.Interval() != 5*time.Second || soak.Size != 1024 || soak.Payload != PayloadRaw {
					t.Errorf("soak = %+v", soak)
				}
				burst := s.Stages[2]
				if burst.Count != 3 || burst.Within != 2*time.Second || burst.Duration != 2*time.Second+BurstDrain || burst.Payload != DefaultPayload || burst.Name != "burst-2" {
					t.Errorf("burst = %+v", burst)
				}
				storm := s.Stages[3]
				if storm.Share != 0.125 || storm.Within != DefaultStormWithin || storm.Duration != DefaultStormWithin+StormSettle || storm.Payload != "" || storm.Publishes() {
					t.Errorf("storm = %+v", storm)
				}
				if tail := s.Stages[4]; tail.Name != "tail" || tail.Size != 2000 || tail.Every != 500*time.Millisecond {
					t.Errorf("tail = %+v", tail)
				}
				want := 90*time.Minute + 12*time.Second + 40*time.Second + 10*time.Second
				if got := s.TotalDuration(); got != want {
					t.Errorf("TotalDuration() = %v, want %v", got, want)
				}
			},
		},
		{
			name: "thresholds keep file order and normalize units",
			src: minimal + `
thresholds:
  loss: "== 0"
  e2e_p99: "<1s"
  connack_p50: "<= 250 us"
  connect_success: ">= 99.9%"
  connect_rate: ">= 600/m"
  publish_rate: [">= 9/s", "< 11/s"]
`,
			check: func(t *testing.T, s *Scenario) {
				want := []Threshold{
					{Metric: "loss", Op: "==", Value: 0, Unit: "", Raw: "== 0", Line: 8},
					{Metric: "e2e_p99", Op: "<", Value: 1000, Unit: "ms", Raw: "<1s", Line: 9},
					{Metric: "connack_p50", Op: "<=", Value: 0.25, Unit: "ms", Raw: "<= 250 us", Line: 10},
					{Metric: "connect_success", Op: ">=", Value: 99.9, Unit: "%", Raw: ">= 99.9%", Line: 11},
					{Metric: "connect_rate", Op: ">=", Value: 10, Unit: "/s", Raw: ">= 600/m", Line: 12},
					{Metric: "publish_rate", Op: ">=", Value: 9, Unit: "/s", Raw: ">= 9/s", Line: 13},
					{Metric: "publish_rate", Op: "<", Value: 11, Unit: "/s", Raw: "< 11/s", Line: 13},
				}
				if !reflect.DeepEqual(s.Thresholds, want) {
					t.Errorf("Thresholds =\n%#v\nwant\n%#v", s.Thresholds, want)
				}
			},
		},
		{
			name: "sources expand to loopback addresses",
			src:  strings.Replace(minimal, "{count: 10}", "{count: 60000, sources: 3}", 1),
			check: func(t *testing.T, s *Scenario) {
				if want := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}; !reflect.DeepEqual(s.Fleet.SourceAddrs, want) {
					t.Errorf("SourceAddrs = %v, want %v", s.Fleet.SourceAddrs, want)
				}
			},
		},
		{
			name: "source_addrs are normalized",
			src:  strings.Replace(minimal, "{count: 10}", "{count: 10, source_addrs: [127.0.0.2, '::ffff:10.0.0.5', '::1']}", 1),
			check: func(t *testing.T, s *Scenario) {
				if want := []string{"127.0.0.2", "10.0.0.5", "::1"}; !reflect.DeepEqual(s.Fleet.SourceAddrs, want) {
					t.Errorf("SourceAddrs = %v, want %v", s.Fleet.SourceAddrs, want)
				}
			},
		},
		{
			name: "aliases are followed",
			src: `
fleet: {count: 10}
stages:
  - {kind: ramp}
  - &report {kind: steady, duration: 10s, every: 1s, payload: htu21d}
  - {kind: reconnect-storm, share: 100%, within: 0s}
  - *report
`,
			check: func(t *testing.T, s *Scenario) {
				if len(s.Stages) != 4 || s.Stages[3].Payload != PayloadHTU21D || s.Stages[3].Name != "steady-3" {
					t.Errorf("stages = %+v", s.Stages)
				}
				if st := s.Stages[2]; st.Within != 0 || st.Duration != StormSettle || st.Share != 1 {
					t.Errorf("storm with within: 0s = %+v", st)
				}
			},
		},
		{
			name: "a trailing empty document is fine",
			src:  minimal + "---\n",
			check: func(t *testing.T, s *Scenario) {
				if s.Fleet.Count != 10 {
					t.Errorf("Fleet.Count = %d", s.Fleet.Count)
				}
			},
		},
		{
			name: "commands default to relay",
			src:  minimal + "commands: {rate: 5/s}\n",
			check: func(t *testing.T, s *Scenario) {
				if s.Commands == nil || *s.Commands != (Commands{Rate: 5, Payload: CommandRelay}) {
					t.Errorf("Commands = %+v", s.Commands)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, "valid.yaml", tt.src)
			tt.check(t, s)
			roundTrip(t, s)
		})
	}
}

// TestParseInvalid pins the exact text of the problems: they are the user
// interface of a scenario file.
func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "empty",
			src:  "",
			want: []string{`bad.yaml: file is empty (a scenario needs at least fleet: {count: N} and stages:)`},
		},
		{
			name: "comment only",
			src:  "# nothing\n",
			want: []string{`bad.yaml: file is empty (a scenario needs at least fleet: {count: N} and stages:)`},
		},
		{
			name: "not a mapping",
			src:  "- a\n- b\n",
			want: []string{`bad.yaml:1: must be a mapping, not a list (e.g. name: launch)`},
		},
		{
			name: "syntax error",
			src:  "fleet: {count: 10\nstages: []\n",
			want: []string{`bad.yaml:1: not valid YAML: did not find expected ',' or '}' (check indentation and quote values that contain ': ' or start with '{', '[', '*', '&', '!', '%' or '@')`},
		},
		{
			name: "two documents",
			src:  minimal + "---\nname: x\n",
			want: []string{`bad.yaml:6: a second YAML document after --- (put one scenario per file)`},
		},
		{
			name: "missing everything",
			src:  "name: x\n",
			want: []string{
				`bad.yaml: fleet.count: required (e.g. fleet: {count: 1000})`,
				`bad.yaml: stages: at least one stage is required (e.g. stages: [{kind: ramp}, {kind: steady, duration: 1m, every: 5s}])`,
			},
		},
		{
			name: "the design's example with mistakes",
			src: `name: launch
fleet: {count: 0, prefix: backend-, transport: tcp, keep_alive: 30s, qos: 3}
connect: {rate: 800, max_in_flight: 256}
stages:
  - {kind: steady, duration: 2m, every: 0s}
  - {kind: ramp}
  - {kind: reconnect-storm, share: 20, within: 10s}
  - {kind: stedy, duration: 1m, every: 5s}
  - {kind: burst, every: 5s}
commands: {rate: 50/s, payload: relais}
thresholds:
  connect_success: ">= 99.9"
  connack_p99: "< 500"
  e2e_p99: "< 250ms"
  los: "== 0"
`,
			want: []string{
				`bad.yaml:2: fleet.count: 0 devices: must be 1..1000000 (e.g. 5000)`,
				`bad.yaml:2: fleet.prefix: "backend-" could make device ids that collide with the backend identities, which may read or write all of devices/# (e.g. dev-)`,
				`bad.yaml:2: fleet.transport: "tcp" is not a transport; mqtts is mTLS to Mosquitto, wss is WebSocket through nginx (valid: mqtts, wss)`,
				`bad.yaml:2: fleet.keep_alive: unknown field (did you mean keepalive?)`,
				`bad.yaml:2: fleet.qos: 3 is not an MQTT QoS (use 0, 1 or 2)`,
				`bad.yaml:3: connect.rate: "800" has no unit (e.g. "800/s")`,
				`bad.yaml:5: stages[0].kind: the first stage must be a ramp, which connects the fleet (add - {kind: ramp} before it)`,
				`bad.yaml:5: stages[0].every: must be > 0 (e.g. "5s")`,
				`bad.yaml:6: stages[1].kind: only the first stage may be a ramp: the fleet is connected once (remove it, or use reconnect-storm with share: 100% to reconnect everyone)`,
				`bad.yaml:7: stages[2].share: 20 is not a fraction between 0 and 1 (e.g. "20%")`,
				`bad.yaml:8: stages[3].kind: "stedy" is not a stage kind (did you mean steady? valid: ramp, steady, burst, soak, reconnect-storm)`,
				`bad.yaml:9: stages[4].count: required: messages each device publishes in the burst (e.g. 10)`,
				`bad.yaml:9: stages[4].every: not used by a burst stage (remove it; a burst stage takes count, within, duration, payload, size)`,
				`bad.yaml:10: commands.payload: "relais" is not a command payload (did you mean relay? valid: relay)`,
				`bad.yaml:12: thresholds.connect_success: ">= 99.9": connect_success is a percentage (end the value with %, e.g. ">= 99.9%")`,
				`bad.yaml:13: thresholds.connack_p99: "< 500" has no unit; connack_p99 is a duration (use ms or s, e.g. "< 500ms")`,
				`bad.yaml:15: thresholds.los: unknown metric (did you mean loss? known metrics: durations {tcp,tls,connack,puback,e2e}_{p50,p90,p99,p999,max}; percentages connect_success, loss_rate, publish_success; counts loss, duplicates, reorders, errors, reconnects, connect_failures; rates connect_rate, publish_rate)`,
			},
		},
		{
			name: "strict shapes",
			src: `name: "bad name!"
extra: 1
fleet:
  count: many
  count: 2
  clean_session: yes
  prefix: "dev/"
connect: {rate: 0/s, timeout: 5, backoff: {min: 2s, max: 1s, jitter: 150%}}
stages: {kind: ramp}
`,
			want: []string{
				`bad.yaml:1: name: "bad name!" may only hold letters, digits, '.', '-' and '_', starting with a letter or digit (name: launch-eu)`,
				`bad.yaml:2: extra: unknown field (known fields: name, description, fleet, connect, stages, commands, thresholds)`,
				`bad.yaml:4: fleet.count: "many" is not a number (e.g. 5000)`,
				`bad.yaml:5: fleet.count: set twice (first on line 4) (keep one)`,
				`bad.yaml:6: fleet.clean_session: "yes" is not true or false (write true or false)`,
				`bad.yaml:7: fleet.prefix: "dev/" may only hold letters, digits, '-' and '_': device ids are certificate CNs, MQTT usernames and ACL keys (e.g. dev-)`,
				`bad.yaml:8: connect.rate: must be > 0 (e.g. "800/s")`,
				`bad.yaml:8: connect.timeout: "5" has no unit (e.g. 10s)`,
				`bad.yaml:8: connect.backoff.max: 1s is less than min 2s (make max >= min)`,
				`bad.yaml:8: connect.backoff.jitter: 150%: must be 0%..100% (e.g. "20%")`,
				`bad.yaml:9: stages: must be a list of stages, not a mapping (e.g. - {kind: ramp})`,
			},
		},
		{
			name: "per-kind fields",
			src: `fleet: {count: 100}
stages:
  - {kind: ramp, duration: 10s}
  - {kind: steady, duration: 10s}
  - {kind: steady, every: 5s, rate: 1/s, duration: 1m}
  - {kind: soak, duration: 1m, every: 2m}
  - {kind: reconnect-storm, payload: dht11}
  - {kind: reconnect-storm, share: 0%, within: 20s, duration: 10s}
  - {kind: burst, count: 0, share: 10%}
  - {kind: steady, duration: 1m, every: 1s, payload: raw}
  - {kind: steady, duration: 1m, every: 1s, payload: dht12, size: 2MiB}
  - {kind: steady, name: steady-1, duration: 1m, every: 1s}
  - {name: nameless}
  - {kind: reconnect-storm, share: 1%, duration: 5s}
  - {kind: burst, count: 1, within: 9000h}
  - {kind: soak, duration: 200h, every: 1h}
`,
			want: []string{
				`bad.yaml:3: stages[0].duration: not used by a ramp stage (remove it; a ramp connects the fleet at connect.rate)`,
				`bad.yaml:4: stages[1].every: required: how often each device publishes (e.g. every: 5s, or rate: 0.2/s)`,
				`bad.yaml:5: stages[2].rate: every and rate both set; they say the same thing (keep one: every: 5s or rate: 0.2/s)`,
				`bad.yaml:6: stages[3].every: interval 2m is longer than the 1m stage: no device would publish (publish more often or run longer)`,
				`bad.yaml:7: stages[4].share: required: the part of the fleet to drop (e.g. "20%")`,
				`bad.yaml:7: stages[4].payload: has no effect: devices publish during a storm only with every or rate (add every: "5s", or remove it)`,
				`bad.yaml:8: stages[5].share: 0%: must be more than 0% and at most 100% (e.g. "20%")`,
				`bad.yaml:8: stages[5].duration: 10s is shorter than within 20s (make duration >= within)`,
				`bad.yaml:9: stages[6].count: 0: must be 1..100000 (e.g. 10)`,
				`bad.yaml:9: stages[6].share: not used by a burst stage (remove it; a burst stage takes count, within, duration, payload, size)`,
				`bad.yaml:10: stages[7].size: a raw payload needs size >= 16 for its header, the sequence number and send time (e.g. size: 256)`,
				`bad.yaml:11: stages[8].payload: "dht12" is not a payload (did you mean dht11? valid: dht11, htu21d, ds18b20, battery, raw)`,
				`bad.yaml:11: stages[8].size: 2097152 bytes: must be 0..1MiB (e.g. 256 or 1KiB)`,
				`bad.yaml:12: stages[9].name: "steady-1" is also the name of stages[1] (give each stage its own name)`,
				`bad.yaml:13: stages[10].kind: required (valid: ramp, steady, burst, soak, reconnect-storm)`,
				`bad.yaml:14: stages[11].duration: 5s is shorter than within 10s (make duration >= within)`,
				`bad.yaml:15: stages[12].within: 9000h is more than a week (e.g. "10s")`,
				`bad.yaml:16: stages[13].duration: 200h is more than a week (check the unit: "30m", not "30h")`,
			},
		},
		{
			name: "threshold expressions",
			src: minimal + `thresholds:
  e2e_p99: "250ms"
  e2e_p90: "= 250ms"
  e2e_p50: "< fast"
  e2e_max: "< 2h"
  loss: "< 0"
  duplicates: "== 0%"
  loss_rate: "<= 101%"
  connect_success: "> 100%"
  connect_rate: ">= 100"
  errors: [">= 0", 5]
  reorders: []
  reconnects: {a: b}
  tcp_p99: "<= -1ms"
`,
			want: []string{
				`bad.yaml:7: thresholds.e2e_p99: "250ms" does not start with a comparison (e.g. "< 500ms")`,
				`bad.yaml:8: thresholds.e2e_p90: "= 250ms": use one of < <= > >= == (e.g. "< 500ms")`,
				`bad.yaml:9: thresholds.e2e_p50: "< fast" has no number after < (e.g. "< 500ms")`,
				`bad.yaml:10: thresholds.e2e_max: "< 2h" has unit "h"; e2e_max is a duration (use ms or s, e.g. "< 500ms")`,
				`bad.yaml:11: thresholds.loss: "< 0" can never pass: loss is never negative (e.g. "== 0")`,
				`bad.yaml:12: thresholds.duplicates: "== 0%": duplicates is a count and takes no unit (e.g. "== 0")`,
				`bad.yaml:13: thresholds.loss_rate: "<= 101%": a percentage is at most 100% (e.g. ">= 99.9%")`,
				`bad.yaml:14: thresholds.connect_success: "> 100%" can never pass: a percentage is at most 100% (e.g. ">= 100%")`,
				`bad.yaml:15: thresholds.connect_rate: ">= 100": connect_rate is a rate (end the value with /s, e.g. ">= 500/s")`,
				`bad.yaml:16: thresholds.errors[1]: "5" does not start with a comparison (e.g. "== 0")`,
				`bad.yaml:17: thresholds.reorders: empty list of conditions (e.g. "== 0")`,
				`bad.yaml:18: thresholds.reconnects: must be a single value, not a mapping (e.g. "== 0")`,
				`bad.yaml:19: thresholds.tcp_p99: "<= -1ms": tcp_p99 is never negative (e.g. "< 500ms")`,
			},
		},
		{
			name: "cross-field rules",
			src: `fleet: {count: 60000, qos: 0, prefix: Obs}
stages:
  - {kind: ramp}
commands: {rate: 1/s}
thresholds:
  puback_p99: "< 1s"
  e2e_p99: "< 1s"
  publish_rate: "> 1/s"
`,
			want: []string{
				`bad.yaml:1: fleet.count: 60000 devices need at least 3 source addresses, 0 configured: one address has about 28000 ports towards one broker port (add sources: 3 to fleet for the local stack, or source_addrs: [...] with addresses of this machine)`,
				`bad.yaml:1: fleet.prefix: "Obs" could make device ids that collide with the observer identities, which may read or write all of devices/# (e.g. dev-)`,
				`bad.yaml:4: commands: no stage after the ramp to send commands in (add a steady stage, or remove commands)`,
				`bad.yaml:6: thresholds.puback_p99: there are no PUBACKs at QoS 0 (set fleet.qos: 1, or remove this threshold)`,
				`bad.yaml:7: thresholds.e2e_p99: no stage publishes, so this metric has no data (add a steady stage, or remove this threshold)`,
				`bad.yaml:8: thresholds.publish_rate: no stage publishes, so this metric has no data (add a steady stage, or remove this threshold)`,
			},
		},
		{
			name: "sources",
			src: `fleet: {count: 10, sources: 0, source_addrs: [localhost, 0.0.0.0, 127.0.0.2, 127.0.0.2, [x]]}
stages: [{kind: ramp}]
`,
			want: []string{
				`bad.yaml:1: fleet.sources: 0 loopback source addresses: must be 1..254 (e.g. 4, which uses 127.0.0.1 to 127.0.0.4)`,
				`bad.yaml:1: fleet.source_addrs: sources and source_addrs are both set (keep one: sources: N for 127.0.0.1..N, or source_addrs: [list])`,
				`bad.yaml:1: fleet.source_addrs[0]: "localhost" is not an IP address (e.g. 127.0.0.2 or 10.0.0.5)`,
				`bad.yaml:1: fleet.source_addrs[1]: 0.0.0.0 cannot be a source address (use an address of this machine, e.g. 127.0.0.2)`,
				`bad.yaml:1: fleet.source_addrs[3]: 127.0.0.2 listed twice (list each address once)`,
				`bad.yaml:1: fleet.source_addrs[4]: must be a single value, not a list (e.g. 127.0.0.2)`,
			},
		},
		{
			name: "absurd lengths are clipped",
			src:  "fleet: {count: 10}\nstages: [{kind: ramp}]\n" + strings.Repeat("k", 100) + ": 1\nname: " + strings.Repeat("n", 300) + "\n",
			want: []string{
				`bad.yaml:3: ` + strings.Repeat("k", 64) + `...: unknown field (known fields: name, description, fleet, connect, stages, commands, thresholds)`,
				`bad.yaml:4: name: value is 300 characters long (e.g. launch)`,
			},
		},
		{
			name: "merge keys and odd keys",
			src: `fleet: {count: 10}
base: &b {kind: steady, duration: 1m, every: 1s}
stages:
  - {kind: ramp}
  - {<<: *b, name: x}
  - {[a]: 1, kind: steady, duration: 1m, every: 1s}
  - ~
thresholds: [loss]
`,
			want: []string{
				`bad.yaml:2: base: unknown field (known fields: name, description, fleet, connect, stages, commands, thresholds)`,
				`bad.yaml:5: stages[1].kind: required (valid: ramp, steady, burst, soak, reconnect-storm)`,
				`bad.yaml:5: stages[1].<<: merge keys are not supported (write the fields out; an alias like *name works as a whole value)`,
				`bad.yaml:6: stages[2]: a key must be a plain name, not a list (e.g. {kind: steady, duration: 2m, every: 5s})`,
				`bad.yaml:7: stages[3]: must be a mapping, not empty (e.g. {kind: steady, duration: 2m, every: 5s})`,
				`bad.yaml:8: thresholds: must be a mapping of metric to condition, not a list (e.g. {e2e_p99: "< 250ms", loss: "== 0"})`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("bad.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded, want %d problems; got %+v", len(tt.want), s)
			}
			if s != nil {
				t.Errorf("Parse returned a scenario with its error")
			}
			got := strings.Split(err.Error(), "\n")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if ps := Problems(err); len(ps) != len(got) {
				t.Errorf("Problems(err) has %d, the message %d lines", len(ps), len(got))
			}
			var me *multierror.Error
			if !errors.As(err, &me) {
				t.Errorf("error is %T, want *multierror.Error", err)
			}
		})
	}
}

// roundTrip checks that the canonical form parses back to the same
// scenario.
func roundTrip(t testing.TB, s *Scenario) {
	t.Helper()
	out, err := s.Format()
	if err != nil {
		t.Fatalf("Format: %v", err)
	}
	back, err := Parse(s.Source, out)
	if err != nil {
		t.Fatalf("Parse(Format(s)):\n%v\n--- formatted:\n%s", err, out)
	}
	if a, b := canonical(s), canonical(back); !reflect.DeepEqual(a, b) {
		t.Fatalf("round trip changed the scenario:\n%+v\nvs\n%+v\n--- formatted:\n%s", a, b, out)
	}
}

// canonical strips what legitimately differs after a round trip: lines
// and the raw threshold text's line numbers.
func canonical(s *Scenario) *Scenario {
	c := exported(s)
	for i := range c.Stages {
		c.Stages[i].Line = 0
	}
	for i := range c.Thresholds {
		// Raw is checked where it is written (TestParseValid); a
		// threshold built in Go has none until it is formatted.
		c.Thresholds[i].Line, c.Thresholds[i].Raw = 0, ""
	}
	if len(c.Fleet.SourceAddrs) == 0 {
		c.Fleet.SourceAddrs = nil
	}
	return c
}

func TestBuiltins(t *testing.T) {
	names := BuiltinNames()
	for _, want := range []string{"smoke", "launch", "burst", "soak", "reconnect-storm"} {
		if !contains(names, want) {
			t.Errorf("BuiltinNames() = %v, missing %s", names, want)
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			s, err := Builtin(name)
			if err != nil {
				t.Fatalf("Builtin(%q):\n%v", name, err)
			}
			if s.Name != name || s.Source != name+".yaml" || s.Description == "" {
				t.Errorf("Name %q Source %q Description %q", s.Name, s.Source, s.Description)
			}
			if err := s.Validate(); err != nil {
				t.Errorf("Validate() after Parse: %v", err)
			}
			if len(s.Thresholds) == 0 {
				t.Errorf("a built-in without thresholds cannot fail")
			}
			roundTrip(t, s)
			r, err := Resolve(name)
			if err != nil || r.Name != name {
				t.Errorf("Resolve(%q) = %v, %v", name, r, err)
			}
		})
	}
	// What the built-ins promise in their descriptions and in the brief.
	smoke, _ := Builtin("smoke")
	if smoke.Fleet.Count != 1000 || smoke.EstimatedDuration() >= time.Minute || smoke.Fleet.QoS != 1 {
		t.Errorf("smoke: %d devices, ~%v, QoS %d; want 1000 devices in under a minute at QoS 1", smoke.Fleet.Count, smoke.EstimatedDuration(), smoke.Fleet.QoS)
	}
	launch, _ := Builtin("launch")
	if launch.Fleet.Count != 5000 || launch.Connect.Rate > 800 || launch.Stages[2].Kind != StageReconnectStorm {
		t.Errorf("launch: %d devices at %v/s, stages %+v", launch.Fleet.Count, launch.Connect.Rate, launch.Stages)
	}
	soak, _ := Builtin("soak")
	if soak.TotalDuration() < 30*time.Minute {
		t.Errorf("soak lasts %v, want >= 30m", soak.TotalDuration())
	}
	if _, err := Builtin("nope"); err == nil || !strings.Contains(err.Error(), "smoke") {
		t.Errorf("Builtin(nope) = %v, want an error listing the built-ins", err)
	}
	if _, err := Builtin("../builtin/smoke"); err == nil {
		t.Errorf("Builtin with a path succeeded")
	}
}

func TestResolveAndLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mine.yaml")
	if err := os.WriteFile(file, []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Resolve(file)
	if err != nil || s.Name != "mine" || s.Source != file {
		t.Fatalf("Resolve(%s) = %+v, %v", file, s, err)
	}
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("fleet: {count: -1}\nstages: [{kind: ramp}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Resolve(bad)
	if want := bad + ":1: fleet.count: -1 devices: must be 1..1000000 (e.g. 5000)"; err == nil || err.Error() != want {
		t.Errorf("Resolve(bad) = %v, want %s", err, want)
	}
	if file, data, err := ResolveSource("launch"); err != nil || file != "launch.yaml" || !strings.Contains(string(data), "name: launch") {
		t.Errorf("ResolveSource(launch) = %q, %d bytes, %v", file, len(data), err)
	}
	if _, err := Resolve(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Resolve(missing) = %v, want os.ErrNotExist", err)
	}
	t.Chdir(dir)
	if err := os.WriteFile("plain", []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Resolve("plain"); err != nil || s.Name != "plain" || s.Source != "plain" {
		t.Errorf("Resolve(plain) for a file without extension = %+v, %v", s, err)
	}
	if _, err := Resolve("no-such-scenario"); err == nil || !strings.Contains(err.Error(), "launch") {
		t.Errorf("Resolve(no-such-scenario) = %v, want an error listing the built-ins", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("#"+strings.Repeat("x", MaxFileSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "bytes, more than") {
		t.Errorf("Load(big) = %v, want a size error", err)
	}
}

func TestWithDevices(t *testing.T) {
	launch, err := Builtin("launch")
	if err != nil {
		t.Fatal(err)
	}
	big, err := launch.WithDevices(50_000)
	if err == nil {
		t.Fatalf("WithDevices(50000) without source addresses succeeded: %+v", big.Fleet)
	}
	if want := "fleet.count: 50000 devices need at least 2 source addresses"; !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "launch.yaml:3") {
		t.Errorf("WithDevices(50000) = %q, want %q and no file line (the count came from a flag)", err, want)
	}
	small, err := launch.WithDevices(10)
	if err != nil {
		t.Fatal(err)
	}
	if small.Fleet.Count != 10 || launch.Fleet.Count != 5000 {
		t.Errorf("WithDevices(10): copy has %d, original %d", small.Fleet.Count, launch.Fleet.Count)
	}
	small.Stages[1].Name = "changed"
	if launch.Stages[1].Name == "changed" {
		t.Errorf("WithDevices shares Stages with the original")
	}
}

func TestValidateBuiltInGo(t *testing.T) {
	s := &Scenario{Fleet: Fleet{Count: 3}, Stages: []Stage{{Kind: StageRamp}, {Kind: StageSteady}}}
	s.SetDefaults()
	err := s.Validate()
	want := []string{
		`name: must not be empty (name: launch-eu)`,
		`stages[1].duration: required (e.g. "2m")`,
		`stages[1].every: required: how often each device publishes (e.g. every: 5s, or rate: 0.2/s)`,
	}
	if err == nil || !reflect.DeepEqual(strings.Split(err.Error(), "\n"), want) {
		t.Fatalf("Validate() =\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}
	// In Go the zero QoS is QoS 0, not "unset".
	if s.Fleet.QoS != 0 || s.Fleet.CleanSession {
		t.Errorf("SetDefaults changed explicit Go zero values: %+v", s.Fleet)
	}
	s.Name = "go"
	s.Stages[1].Duration, s.Stages[1].Every = time.Minute, time.Second
	s.Thresholds = []Threshold{{Metric: "e2e_p99", Op: "<", Value: 250, Unit: "ms"}, {Metric: "bogus", Op: "=", Unit: "x"}, {Metric: "loss", Op: "!=", Unit: "%"}}
	err = s.Validate()
	ps := Problems(err)
	if len(ps) != 3 || ps[0].Path != "thresholds[1]" || ps[1].Path != "thresholds.loss" || ps[2].Path != "thresholds.loss" {
		t.Fatalf("Validate() with bad Go thresholds = %v", err)
	}
	s.Thresholds = s.Thresholds[:1]
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	roundTrip(t, s)
}

func TestThresholdHolds(t *testing.T) {
	tests := []struct {
		op   string
		v    float64
		want bool
	}{
		{"<", 249, true}, {"<", 250, false}, {"<=", 250, true}, {">", 250, false},
		{">", 251, true}, {">=", 250, true}, {"==", 250, true}, {"==", 250.1, false}, {"!=", 1, false},
	}
	for _, tt := range tests {
		th := Threshold{Metric: "e2e_p99", Op: tt.op, Value: 250, Unit: "ms"}
		if got := th.Holds(tt.v); got != tt.want {
			t.Errorf("%s %v: Holds = %v, want %v", th, tt.v, got, tt.want)
		}
	}
}

func TestKnownMetrics(t *testing.T) {
	if len(KnownMetrics) != 5*5+3+6+2 {
		t.Errorf("%d known metrics: %v", len(KnownMetrics), KnownMetrics)
	}
	for _, m := range KnownMetrics {
		k, ok := KindOf(m)
		if !ok || k.Unit() == "" && k != MetricCount {
			t.Errorf("KindOf(%s) = %v, %v", m, k, ok)
		}
	}
	if k, _ := KindOf("connack_p999"); k != MetricDuration {
		t.Errorf("connack_p999 is %v", k)
	}
	if _, ok := KindOf("e2e_p95"); ok {
		t.Errorf("e2e_p95 is known")
	}
}

func TestDropCount(t *testing.T) {
	tests := []struct {
		st      Stage
		devices int
		want    int
	}{
		{Stage{Kind: StageReconnectStorm, Share: 0.2}, 5000, 1000},
		{Stage{Kind: StageReconnectStorm, Share: 0.2}, 7, 2},   // ceil(1.4)
		{Stage{Kind: StageReconnectStorm, Share: 0.001}, 3, 1}, // never nobody
		{Stage{Kind: StageReconnectStorm, Share: 1}, 3, 3},
		{Stage{Kind: StageReconnectStorm, Share: 0.5}, 0, 0},
		{Stage{Kind: StageSteady, Share: 0.5}, 10, 0},
	}
	for _, tt := range tests {
		if got := tt.st.DropCount(tt.devices); got != tt.want {
			t.Errorf("%+v.DropCount(%d) = %d, want %d", tt.st, tt.devices, got, tt.want)
		}
	}
}

func TestDeviceID(t *testing.T) {
	tests := []struct {
		f    Fleet
		i    int
		want string
	}{
		{Fleet{Count: 10, Prefix: "dev-"}, 0, "dev-00001"},
		{Fleet{Count: 100000, Prefix: "dev-"}, 99999, "dev-100000"},
		{Fleet{Count: 1000000, Prefix: "d"}, 41, "d0000042"},
	}
	for _, tt := range tests {
		if got := tt.f.DeviceID(tt.i); got != tt.want {
			t.Errorf("%+v.DeviceID(%d) = %q, want %q", tt.f, tt.i, got, tt.want)
		}
	}
}

func TestUnits(t *testing.T) {
	durations := map[string]time.Duration{"0": 0, "0s": 0, "500ms": 500 * time.Millisecond, "2m": 2 * time.Minute, " 1h30m ": 90 * time.Minute}
	for in, want := range durations {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, err := parseDuration(formatDuration(want)); err != nil || back != want {
			t.Errorf("formatDuration(%v) = %q does not read back", want, formatDuration(want))
		}
	}
	for _, in := range []string{"5", "1.5", "", "5 parsecs", "-"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) succeeded", in)
		}
	}
	rates := map[string]float64{"800/s": 800, "10/m": 10.0 / 60, "3600 / h": 1, "0.5/sec": 0.5}
	for in, want := range rates {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"800", "800/d", "NaN/s", "inf/s", "0x10/s", "/s", "1e400/s"} {
		if _, err := parseRate(in); err == nil {
			t.Errorf("parseRate(%q) succeeded", in)
		}
	}
	sizes := map[string]int{"256": 256, "1KiB": 1024, "1 KB": 1000, "2MiB": 2 << 20, "7B": 7}
	for in, want := range sizes {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"1.5KiB", "KiB", "99999999999GiB", "9999999999MiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
	for _, f := range []float64{0.2, 0.125, 1, 0.07, 1.0 / 3, 0.001} {
		if back, err := parseFraction(formatFraction(f)); err != nil || back != f {
			t.Errorf("formatFraction(%v) = %q reads back as %v, %v", f, formatFraction(f), back, err)
		}
	}
}
