package result

import (
	"strings"
	"testing"

	"github.com/mqttstack/mqttstack/scenarios"
)

func th(metric, op string, v float64, unit string) scenarios.Threshold {
	return scenarios.Threshold{Metric: metric, Op: op, Value: v, Unit: unit, Raw: op + " " + FormatValue(v, unit)}
}

func TestEvaluate(t *testing.T) {
	res := synthetic(t, 0, 1, 0, 400)
	conn, _ := res.Total.Summary(CONNACK)
	connP99ms := float64(conn.P99) / 1000
	tests := []struct {
		th       scenarios.Threshold
		pass     bool
		measured float64
		detail   string
	}{
		{th("connack_p99", "<", connP99ms+0.001, "ms"), true, connP99ms, ""},
		{th("connack_p99", "<", connP99ms, "ms"), false, connP99ms, "measured"},
		// 400 attempts + 79 reconnect attempts (i%5==0 except 110), 4 ramp
		// failures (i%97==13: 13, 110, 207, 304).
		{th("connect_success", ">=", 99, "%"), true, 100 * 475.0 / 479, ""},
		{th("connect_failures", "==", 0, ""), false, 4, ""},
		{th("loss", "==", 0, ""), false, 1, ""},
		{th("loss_rate", "<=", 0.1, "%"), true, 100 * 1.0 / 1600, ""},
		{th("reconnects", ">=", 80, ""), false, 79, ""},
		// 396 connects over the 20 s ramp.
		{th("connect_rate", ">=", 19, "/s"), true, 396.0 / 20, ""},
		// 4 rounds of 396 publishes over the 20 s steady phase.
		{th("publish_rate", ">", 79, "/s"), true, 4 * 396.0 / 20, ""},
		{th("errors", "<", 10, ""), false, float64(res.Total.Counts.Errors), ""},
		{th("publish_success", "==", 100, "%"), true, 100, ""},
	}
	for _, tt := range tests {
		t.Run(tt.th.Metric+tt.th.Op, func(t *testing.T) {
			out := Evaluate(res, []scenarios.Threshold{tt.th})
			if len(out) != 1 {
				t.Fatalf("%d outcomes for one threshold", len(out))
			}
			o := out[0]
			if o.Passed != tt.pass || !o.HasData || o.Measured != tt.measured {
				t.Errorf("outcome = %+v, want passed=%v measured=%v", o, tt.pass, tt.measured)
			}
			if !strings.Contains(o.Detail, tt.detail) {
				t.Errorf("detail %q does not mention %q", o.Detail, tt.detail)
			}
		})
	}
}

// TestEvaluateNoDataFails: a threshold the run cannot measure fails; it
// must never pass by default.
func TestEvaluateNoDataFails(t *testing.T) {
	r := NewRecorder(Meta{})
	r.Phase("ramp", at(0))
	r.Add(ConnectAttempts, at(0), 1)
	r.Add(Connects, at(0), 1)
	r.Observe(CONNACK, at(0), 3000)
	res := r.Finish(at(1), Final{})
	for _, tt := range []struct {
		th  scenarios.Threshold
		why string
	}{
		{th("e2e_p99", "<", 250, "ms"), "no end-to-end latency"},
		{th("puback_max", "<", 1000, "ms"), "no PUBACK latency"},
		{th("loss", "==", 0, ""), "tracked no messages"},
		{th("loss_rate", "<", 1, "%"), "tracked no messages"},
		{th("duplicates", "==", 0, ""), "tracked no messages"},
		{th("publish_success", ">=", 99, "%"), "nothing was published"},
		{th("publish_rate", ">=", 1, "/s"), "no steady or soak phase"},
		{th("bogus_metric", "==", 0, ""), "unknown metric"},
	} {
		t.Run(tt.th.Metric, func(t *testing.T) {
			o := Evaluate(res, []scenarios.Threshold{tt.th})[0]
			if o.Passed || o.HasData || !strings.HasPrefix(o.Detail, "no data: ") || !strings.Contains(o.Detail, tt.why) {
				t.Errorf("outcome = %+v, want a failure with no data because %q", o, tt.why)
			}
		})
	}
	if o := Evaluate(res, []scenarios.Threshold{th("connack_p50", "<", 10, "ms")}); !Passed(o) {
		t.Errorf("connack_p50 with data: %+v", o)
	}
}

func TestPassed(t *testing.T) {
	if !Passed(nil) {
		t.Error("no thresholds must pass")
	}
	if Passed([]ThresholdOutcome{{Passed: true}, {Passed: false}}) {
		t.Error("one failure must fail")
	}
}

// TestEveryKnownMetricIsMeasured keeps Measure in step with the scenario
// schema: every metric a scenario may name has a meaning here.
func TestEveryKnownMetricIsMeasured(t *testing.T) {
	res := synthetic(t, 0, 1, 0, 400)
	for _, m := range scenarios.KnownMetrics {
		if _, ok, why := Measure(res, m); !ok {
			t.Errorf("%s: no data in a full synthetic run: %s", m, why)
		}
	}
}

func TestHashes(t *testing.T) {
	a, b := ScenarioHash([]byte("name: a\n")), ScenarioHash([]byte("name: b\n"))
	if a == b || !strings.HasPrefix(a, "sha256:") || len(a) != len("sha256:")+64 {
		t.Errorf("ScenarioHash: %q, %q", a, b)
	}
	if DeviceListHash([]string{"a", "b"}) == DeviceListHash([]string{"ab"}) {
		t.Error("DeviceListHash does not separate ids")
	}
}
