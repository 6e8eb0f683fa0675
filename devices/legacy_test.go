package devices_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/devices"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/internal/freeport"
	"github.com/mqttstack/mqttstack/internal/stacktest"
	"github.com/mqttstack/mqttstack/security"
)

// TestLegacyListener: the documented way to admit RSA-only and CBC-only
// boards (docs/DEVICES.md): a second listener with an RSA server
// certificate and its own cipher list. On it the modems and the "less
// secure" ESP8266 work (SIM800's TLS 1.0 stays refused); on the main
// listener nothing changed: the same boards are still refused, and the
// security suite's TLS and certificate checks still pass there.
func TestLegacyListener(t *testing.T) {
	s, legacyAddr := startLegacy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	names := []string{"esp8266-bearssl", "esp8266-bearssl-less-secure", "tasmota-bearssl", "a7670", "bg96", "sim800"}
	profiles, err := devices.Select(names)
	if err != nil {
		t.Fatal(err)
	}
	o := compatOptions(t, s)
	o.Profiles, o.Host = profiles, nil
	verdicts := func(addr string) map[string]string {
		o.Addr = addr
		m, err := devices.Run(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, r := range m.Rows {
			out[r.Profile] = r.Verdict
			if !r.Works() {
				out[r.Profile] += ": " + string(r.Reason)
			}
			t.Logf("%s %s: %s %s %s %s %s", addr, r.Profile, r.Verdict, r.Reason, r.Version, r.Suite, r.Group)
		}
		return out
	}
	main := verdicts(s.Target.MQTTSAddr())
	legacy := verdicts(legacyAddr)
	for _, tc := range []struct{ profile, main, legacy string }{
		{"esp8266-bearssl", "works", "works"},
		{"esp8266-bearssl-less-secure", "refused: no shared cipher", "works"},
		{"tasmota-bearssl", "refused: no shared cipher", "works"},
		{"a7670", "refused: no shared cipher", "works"},
		{"bg96", "refused: no shared cipher", "works"},
		{"sim800", "refused: protocol version", "refused: protocol version"},
	} {
		if main[tc.profile] != tc.main {
			t.Errorf("main listener, %s: %s, want %s", tc.profile, main[tc.profile], tc.main)
		}
		if legacy[tc.profile] != tc.legacy {
			t.Errorf("legacy listener, %s: %s, want %s", tc.profile, legacy[tc.profile], tc.legacy)
		}
	}

	// The security suite against the main listener: its TLS and
	// certificate checks and the config lint pass as without the second
	// listener.
	checks, err := security.Select(security.Catalog(), 1, []string{"TLS-01", "TLS-02", "TLS-03", "CRT-01", "CRT-02", "OPS-02"})
	if err != nil {
		t.Fatal(err)
	}
	env, err := security.Prepare(ctx, security.Options{Target: s.Target, Host: s.Host()}, checks)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	for _, r := range security.Run(ctx, env, checks, nil) {
		if r.Outcome.Status != security.Pass {
			t.Errorf("%s with a legacy listener beside the main one: %v: %s", r.Check.ID, r.Outcome.Status, r.Outcome.Evidence)
		}
	}
}

// startLegacy starts a local stack with the legacy listener beside the
// main one (its own PKI, with the RSA server certificate issued first) and
// returns the legacy listener's address.
func startLegacy(t testing.TB) (*stacktest.Stack, string) {
	t.Helper()
	pki := filepath.Join(t.TempDir(), "pki")
	ca, err := certs.Init(certs.InitOptions{Dir: pki})
	if err != nil {
		t.Fatal(err)
	}
	crt, key, err := ca.IssueLegacyServer(0)
	if err != nil {
		t.Fatal(err)
	}
	ports, _, err := freeport.Take(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := stacktest.Start(t, stacktest.WithPKIDir(pki), stacktest.WithStack(func(st *hostconfig.Stack) {
		st.LegacyTLS = &hostconfig.LegacyTLS{Port: ports[0], CertFile: crt, KeyFile: key}
	}))
	return s, fmt.Sprintf("127.0.0.1:%d", ports[0])
}
