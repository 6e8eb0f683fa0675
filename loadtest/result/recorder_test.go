package result

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func TestRecorderPhasesCountersSeries(t *testing.T) {
	r := NewRecorder(Meta{Scenario: "launch", ScenarioHash: "abc", Start: t0})
	r.Phase("ramp", at(0))
	for i := range 10 {
		ts := at(float64(i) * 0.3) // seconds 0,0,0,0,1,1,1,2,2,2
		r.Add(ConnectAttempts, ts, 1)
		r.Observe(TCP, ts, time.Duration(i+1)*time.Millisecond)
		if i == 9 {
			r.Add(ConnectFailures, ts, 1)
			r.Error("tls: bad certificate", ts)
			continue
		}
		r.Add(Connects, ts, 1)
		r.Add(Active, ts, 1)
	}
	r.Phase("steady", at(3))
	r.Add(Published, at(3.5), 5)
	r.Observe(PUBACK, at(3.5), 20*time.Millisecond)
	r.Add(Active, at(4.2), -2)
	r.Error("publish: timeout", at(4.5))
	r.Error("publish: timeout", at(4.6))

	live := r.Snapshot()
	if live.Phase != "steady" || live.Active != 7 || live.Total.Connects != 9 || live.Observations[TCP] != 10 ||
		live.SecondT != t0.Unix()+4 || live.Second.Errors != 2 {
		t.Fatalf("Snapshot = %+v", live)
	}

	res := r.Finish(at(5), Final{CPUUser: 2 * time.Second, MaxRSSBytes: 9000})
	if got := len(res.Phases); got != 2 {
		t.Fatalf("phases = %d, want 2", got)
	}
	ramp, steady := res.Phases[0], res.Phases[1]
	if ramp.Name != "ramp" || ramp.Counts.ConnectAttempts != 10 || ramp.Counts.Connects != 9 || ramp.Counts.Errors != 1 || ramp.PeakActive != 9 {
		t.Errorf("ramp = %+v", ramp)
	}
	if ramp.Seconds != 3 || steady.Seconds != 2 || !steady.End.Equal(at(5)) {
		t.Errorf("ramp %vs, steady %vs ending %v", ramp.Seconds, steady.Seconds, steady.End)
	}
	tcp, ok := ramp.Summary(TCP)
	if !ok || tcp.Count != 10 || tcp.P50 < 4990 || tcp.P50 > 5010 || tcp.Max < 9990 || tcp.Max > 10010 {
		t.Errorf("ramp tcp = %+v", tcp)
	}
	if _, ok := steady.Summary(TCP); ok {
		t.Errorf("steady has TCP latency, want none")
	}
	if s, ok := res.Total.Summary(PUBACK); !ok || s.Count != 1 {
		t.Errorf("total puback = %+v", s)
	}
	if res.Total.Counts.Errors != 3 || res.Total.PeakActive != 9 {
		t.Errorf("total = %+v", res.Total)
	}

	wantActive := []int64{4, 7, 9, 9, 7, 7}
	if len(res.Series) != len(wantActive) {
		t.Fatalf("series has %d seconds, want %d: %+v", len(res.Series), len(wantActive), res.Series)
	}
	for i, s := range res.Series {
		if s.T != t0.Unix()+int64(i) || s.Active != wantActive[i] {
			t.Errorf("series[%d] = t %d active %d, want t %d active %d", i, s.T, s.Active, t0.Unix()+int64(i), wantActive[i])
		}
	}
	if res.Series[0].ConnectAttempts != 4 || res.Series[3].Published != 5 || res.Series[4].Errors != 2 {
		t.Errorf("series counts: %+v", res.Series)
	}

	if len(res.Errors) != 2 || res.Errors[0].Cause != "publish: timeout" || res.Errors[0].Count != 2 ||
		!res.Errors[0].FirstSeen.Equal(at(4.5)) || !res.Errors[0].LastSeen.Equal(at(4.6)) ||
		!reflect.DeepEqual(res.Errors[0].PerSecond, []Point{{T: t0.Unix() + 4, N: 2}}) {
		t.Errorf("errors = %+v", res.Errors)
	}
	if res.Cost.PeakConnected != 9 || res.Cost.RSSPerDeviceBytes != 1000 || res.Cost.CPUPerConnectMillis != 200 {
		t.Errorf("cost = %+v", res.Cost)
	}
}

func TestObserveClampsOutOfRange(t *testing.T) {
	r := NewRecorder(Meta{})
	r.Observe(E2E, at(0), -time.Millisecond) // receiver clock behind sender
	r.Observe(E2E, at(0), 500*time.Nanosecond)
	r.Observe(E2E, at(0), time.Hour)
	res := r.Finish(at(1), Final{})
	s, ok := res.Total.Summary(E2E)
	if !ok || s.Count != 3 || s.Clamped != 2 || s.Min != 1 || s.Max < histHighest*999/1000 {
		t.Fatalf("e2e = %+v", s)
	}
	if res.Phases[0].Name != defaultPhase {
		t.Errorf("phase before any Phase call = %q, want %q", res.Phases[0].Name, defaultPhase)
	}
}

func TestEventsBeforeSeriesBaseAndBogusClock(t *testing.T) {
	r := NewRecorder(Meta{})
	r.Add(Published, time.Time{}, 1) // no time: counted, not plotted, not the series' base
	r.Add(Published, at(10), 1)
	r.Add(Published, at(7), 1)                    // out of order: series grows at the front
	r.Add(Published, t0.Add(365*24*time.Hour), 1) // bogus clock: counted, not plotted
	res := r.Finish(at(12), Final{})
	if res.Total.Counts.Published != 4 {
		t.Errorf("published = %d, want 4", res.Total.Counts.Published)
	}
	if len(res.Series) != 6 || res.Series[0].T != at(7).Unix() {
		t.Errorf("series has %d seconds; a bogus timestamp must not stretch it", len(res.Series))
	}
}

func TestJSONRoundTrip(t *testing.T) {
	res := synthetic(t, 0, 1, 0, 200)
	path := filepath.Join(t.TempDir(), "r.json")
	if err := WriteJSON(path, res); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := Marshal(res)
	b, _ := Marshal(got)
	if string(a) != string(b) {
		t.Errorf("round trip changed the result")
	}
	if s, ok := got.Total.Summary(CONNACK); !ok || s.h == nil {
		t.Errorf("histograms not decoded on read")
	}
}

func TestReadJSONRefusesBadFiles(t *testing.T) {
	good, err := Marshal(synthetic(t, 0, 1, 0, 20))
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	hist := s[strings.Index(s, `"histogram": "`)+len(`"histogram": "`):]
	hist = hist[:strings.Index(hist, `"`)]
	tests := []struct {
		name, data, want string
	}{
		{"not json", "schema: v1", "invalid JSON"},
		{"no schema", `{"meta": {}}`, `no "schema" field`},
		{"other schema", `{"schema": "mqttstack.result/v2"}`, `schema "mqttstack.result/v2" is not supported`},
		{"unknown field", strings.Replace(s, `"schema"`, `"bogus": 1, "schema"`, 1), `unknown field "bogus"`},
		{"damaged histogram", strings.Replace(s, hist, "AAAA"+hist[4:], 1), "histogram does not decode"},
		{"truncated histogram", strings.Replace(s, hist, "AA==", 1), "histogram does not decode"},
		{"gap in series", strings.Replace(s, `"t": 1795262405`, `"t": 1795262499`, 1), "follows"},
		{"edited count", strings.Replace(s, `"count": 20,`, `"count": 21,`, 1), "count says 21"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "run.json")
			if err := os.WriteFile(path, []byte(tt.data), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadJSON(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("ReadJSON = %v, want an error naming %s and saying %q", err, path, tt.want)
			}
		})
	}
}
