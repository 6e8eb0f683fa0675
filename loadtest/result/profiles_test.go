package result

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// profileShard records one shard of a two-profile run: esp connects n
// devices at 1 ms TLS each, sim fails every attempt.
func profileShard(t *testing.T, start time.Time, from, n int) *Result {
	t.Helper()
	r := NewRecorder(Meta{Scenario: "mix", ScenarioHash: "h", Shard: Shard{Index: from / n, Count: 2},
		Devices: Devices{Prefix: "dev-", From: from + 1, To: from + n + 1, Count: n}})
	r.Phase("ramp", start)
	for i := range n {
		at := start.Add(time.Duration(i) * 10 * time.Millisecond)
		prof := "esp8266-bearssl"
		if i%2 == 1 {
			prof = "sim800"
		}
		r.Add(ConnectAttempts, at, 1)
		r.ProfileAdd(prof, ConnectAttempts, at, 1)
		if prof == "sim800" {
			r.Add(ConnectFailures, at, 1)
			r.Error("tls: protocol version", at)
			r.ProfileAdd(prof, ConnectFailures, at, 1)
			r.ProfileError(prof, "tls: protocol version", at)
			continue
		}
		r.Add(Connects, at, 1)
		r.Observe(TLS, at, time.Millisecond)
		r.ProfileAdd(prof, Connects, at, 1)
		r.ProfileObserve(prof, TLS, at, time.Millisecond)
	}
	return r.Finish(start.Add(time.Second), Final{})
}

func TestProfileBreakdown(t *testing.T) {
	start := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	a := profileShard(t, start, 0, 10)
	b := profileShard(t, start, 10, 10)
	if len(a.Profiles) != 2 || a.Profiles[0].Name != "esp8266-bearssl" || a.Profiles[0].Counts.Connects != 5 || a.Profiles[1].Counts.ConnectFailures != 5 {
		t.Fatalf("profiles %+v", a.Profiles)
	}
	if s, ok := a.Profiles[0].Summary(TLS); !ok || s.Count != 5 {
		t.Fatalf("esp TLS summary %+v", s)
	}
	if got := a.Profiles[0].ConnectRate(); got < 50 || got > 150 {
		t.Errorf("esp connect rate %.1f/s, want about 5 connects in 80 ms", got)
	}
	// JSON round trip, then an exact merge of the shards.
	dir := t.TempDir()
	for i, r := range []*Result{a, b} {
		if err := WriteJSON(filepath.Join(dir, []string{"a.json", "b.json"}[i]), r); err != nil {
			t.Fatal(err)
		}
	}
	ra, err := ReadJSON(filepath.Join(dir, "a.json"))
	if err != nil {
		t.Fatal(err)
	}
	rb, err := ReadJSON(filepath.Join(dir, "b.json"))
	if err != nil {
		t.Fatal(err)
	}
	ra.Compat = []CompatRow{{Profile: "esp8266-bearssl", Verdict: "works", TLS: "TLS 1.2", Suite: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", Group: "x25519", FirstFlight: 1207, HandshakeMS: 1.9, ClockUnset: "refused: clock not set"},
		{Profile: "sim800", Verdict: "refused", Reason: "protocol version", Detail: "TLS 1.0 only"}}
	m, err := Merge(ra, rb)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Profiles) != 2 || m.Profiles[0].Counts.Connects != 10 || m.Profiles[1].Counts.ConnectFailures != 10 ||
		len(m.Profiles[1].Causes) != 1 || m.Profiles[1].Causes[0].N != 10 {
		t.Fatalf("merged profiles %+v", m.Profiles)
	}
	if s, ok := m.Profiles[0].Summary(TLS); !ok || s.Count != 10 {
		t.Fatalf("merged esp TLS %+v", s)
	}
	var con, page bytes.Buffer
	if err := WriteConsole(&con, m, nil); err != nil {
		t.Fatal(err)
	}
	if len(m.Compat) != 2 {
		t.Errorf("merged matrix %+v", m.Compat)
	}
	for _, want := range []string{"Device profiles", "esp8266-bearssl", "10/10", "sim800", "0/10", "tls: protocol version ×10",
		"Device compatibility before the load", "sim800                       refused  protocol version: TLS 1.0 only", "without NTP: refused: clock not set"} {
		if !strings.Contains(con.String(), want) {
			t.Errorf("console misses %q:\n%s", want, con.String())
		}
	}
	if err := WriteHTML(&page, m); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), "<h2>Device profiles</h2>") || !strings.Contains(page.String(), "<h2>Device compatibility</h2>") || !strings.Contains(page.String(), "sim800") {
		t.Errorf("HTML has no device profiles section")
	}
	// A run without profiles shows no section.
	con.Reset()
	plain := NewRecorder(Meta{Scenario: "plain"}).Finish(start, Final{})
	if err := WriteConsole(&con, plain, nil); err != nil || strings.Contains(con.String(), "Device profiles") {
		t.Errorf("a run without profiles shows the section (%v)", err)
	}
}
