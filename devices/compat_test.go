package devices_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/devices"
	"github.com/mqttstack/mqttstack/internal/stacktest"
)

func TestMain(m *testing.M) { os.Exit(stacktest.Main(m)) }

// compatOptions points a matrix at a running test stack.
func compatOptions(t *testing.T, s *stacktest.Stack) devices.Options { return benchOptions(t, s) }

func benchOptions(t testing.TB, s *stacktest.Stack) devices.Options {
	t.Helper()
	pool, err := certs.LoadCAPool(s.Target.CACert)
	if err != nil {
		t.Fatal(err)
	}
	return devices.Options{
		Addr:       s.Target.MQTTSAddr(),
		ServerName: s.Target.ServerName,
		RootCAs:    pool,
		Identity:   devices.PKIIdentities(s.PKIDir, s.Authority()),
		Host:       s.Host(),
		// A handful: the test proves the measurement is wired, the bench
		// (scripts/bench.sh) measures.
		CostHandshakes: 5,
	}
}

// TestCompatGolden: every profile's verdict against the rendered,
// hardened Mosquitto matches what docs/DEVICES.md (the profiles' expect
// field) says, for the reason it says; and the clock column shows which
// boards break without NTP.
func TestCompatGolden(t *testing.T) {
	s := stacktest.Start(t)
	o := compatOptions(t, s)
	o.Required = []string{"esp8266-bearssl", "sim800"}
	o.Skew = -2 * 365 * 24 * time.Hour // a board whose RTC lost two years
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m, err := devices.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := devices.WriteConsole(&out, m); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	if len(m.Rows) != len(devices.Profiles()) {
		t.Fatalf("%d rows for %d profiles", len(m.Rows), len(devices.Profiles()))
	}
	for _, r := range m.Rows {
		p, _ := devices.Lookup(r.Profile)
		if r.Verdict != p.Expect {
			t.Errorf("%s: %s (%s: %s), DEVICES.md expects %s", r.Profile, r.Verdict, r.Reason, r.Detail, p.Expect)
			continue
		}
		if !r.Matches {
			t.Errorf("%s: Matches false for an expected verdict", r.Profile)
		}
		if p.ExpectReason != "" && string(r.Reason) != p.ExpectReason {
			t.Errorf("%s: refused for %q (%s), expected %q", r.Profile, r.Reason, r.Detail, p.ExpectReason)
		}
		if r.Works() {
			if r.Version == "" || r.Suite == "" || r.Group == "" || r.FirstFlight <= 0 || r.RoundTripMS <= 0 {
				t.Errorf("%s works but the row misses negotiated facts: %+v", r.Profile, r)
			}
			if r.BrokerCPUus < 0 {
				t.Errorf("%s: broker CPU not measured with a host: %s", r.Profile, m.CPUNote)
			}
			// Clock realism: boards that check dates fail without NTP,
			// the others do not notice.
			wantNoNTP := "works"
			if p.Clock == devices.ClockChecks {
				wantNoNTP = "refused"
			}
			if r.NoNTP != wantNoNTP || (wantNoNTP == "refused" && r.NoNTPReason != devices.ReasonClock) {
				t.Errorf("%s (clock %s) with an unset clock: %s %s, want %s", r.Profile, p.Clock, r.NoNTP, r.NoNTPReason, wantNoNTP)
			}
		}
		if p.MFLN > 0 && r.Works() && r.ServerMFLN != p.MFLN {
			t.Errorf("%s: asked for MFLN %d, the broker agreed to %d (OpenSSL honours MFLN)", r.Profile, p.MFLN, r.ServerMFLN)
		}
	}
	failed := m.Failed()
	if len(failed) != 1 || failed[0].Profile != "sim800" {
		t.Errorf("required and failed: %+v, want sim800 only", failed)
	}
	var js, junit bytes.Buffer
	if err := devices.WriteJSON(&js, m); err != nil {
		t.Fatal(err)
	}
	var back devices.Matrix
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Rows) != len(m.Rows) {
		t.Fatalf("JSON does not read back: %v", err)
	}
	if err := devices.WriteJUnit(&junit, m); err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := devices.WriteHTML(&page, m); err != nil || !strings.Contains(page.String(), "sim800") || !strings.Contains(page.String(), `class="refused"`) {
		t.Errorf("HTML page (%v):\n%.400s", err, page.String())
	}
	if got := strings.Count(junit.String(), "<failure"); got != 1 {
		t.Errorf("JUnit has %d failures, want 1 (sim800, required):\n%s", got, junit.String())
	}
}

// TestCompatDialIP: boards dialling the broker's IP address follow their
// SNI rule (ESP32s send the address as a host name, BearSSL sends none);
// the hardened Mosquitto takes both.
func TestCompatDialIP(t *testing.T) {
	s := stacktest.Start(t)
	o := compatOptions(t, s)
	o.Host, o.DialIP = nil, true
	ps, err := devices.Select([]string{"esp32-arduino-3", "esp8266-bearssl"})
	if err != nil {
		t.Fatal(err)
	}
	o.Profiles = ps
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := devices.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range m.Rows {
		if !r.Works() {
			t.Errorf("%s dialling by IP: %s %s: %s", r.Profile, r.Verdict, r.Reason, r.Detail)
		}
	}
}
