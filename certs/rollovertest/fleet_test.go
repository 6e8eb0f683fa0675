package rollovertest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/devices"
	"github.com/mqttstack/mqttstack/internal/stacktest"
	"github.com/mqttstack/mqttstack/security"
)

// rolloverChecks is the security subset of MQTTSTACK_ROLLOVER_SUBSET=1 (a
// quick iteration): every check that depends on the trust files (client
// certificates, CRLs, the broker's certificate, nginx's client
// verification, the cafile lint) plus two isolation checks. By default
// every tier-1 check runs at every step (about 45 s for the four runs at
// load 6).
var rolloverChecks = []string{
	"CRT-01", "CRT-02", "CRT-03", "CRT-05", "CRT-06", "CRT-08", "CRT-09",
	"TLS-01", "TLS-02", "TLS-03", "OPS-02",
	"WEB-03", "WEB-05", "WEB-08",
	"ACL-01", "ACL-09",
}

// TestRolloverFleet proves a CA rollover on the real local stack
// (Mosquitto 2.0.11 + nginx 1.22): both generations connect during the
// overlap, a revoked device of either generation stays refused
// throughout, after retire the old generation is refused at the TLS layer
// and the new one connects, and the tier-1 security suite passes at each
// step.
// The server certificate moves to G2 keeping its key: the pin report's
// predictions (leaf-fingerprint pins break, public-key pins survive) are
// checked against the real broker.
func TestRolloverFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the local stack and runs the tier-1 security suite four times")
	}
	dir := filepath.Join(t.TempDir(), "pki")
	a, err := certs.Init(certs.InitOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	devs := certs.DeviceIDs("dev-", 1, 6)
	if _, err := a.IssueClients(ctx, devs); err != nil {
		t.Fatal(err)
	}
	g1Only := x509.NewCertPool()
	g1Only.AddCert(a.Cert)
	s := stacktest.Start(t, stacktest.WithPKIDir(dir), stacktest.WithOpsPort())
	reload := func() {
		t.Helper()
		s.Reload()
		s.ReloadNginx()
	}
	fleet := fleetProber{t: t, s: s}
	// boards runs every board profile of package devices (their own
	// ClientHello, suites, key type, verification) against the broker
	// with identities of CA generation g: each must do what it does on a
	// single-CA stack (trusted), or be refused (not trusted).
	boards := func(step string, g *certs.Authority, roots *x509.CertPool, trusted bool) {
		t.Helper()
		cache := map[devices.KeyType]*tls.Certificate{}
		ident := func(p devices.Profile) (*tls.Certificate, string, error) {
			id := "board-" + string(p.ClientKey)
			if c := cache[p.ClientKey]; c != nil {
				return c, id, nil
			}
			if err := g.IssueClient(id, certs.ClientOptions{Key: certs.KeyType(p.ClientKey)}); err != nil {
				return nil, id, err
			}
			c, err := certs.LoadClient(g.Dir, id)
			if err != nil {
				return nil, id, err
			}
			cache[p.ClientKey] = &c
			return &c, id, nil
		}
		m, err := devices.Run(ctx, devices.Options{Addr: s.Target.MQTTSAddr(), ServerName: s.Target.ServerName, RootCAs: roots, Identity: ident})
		if err != nil {
			t.Fatalf("%s: boards: %v", step, err)
		}
		works := 0
		for _, r := range m.Rows {
			switch {
			case trusted && !r.Matches:
				t.Errorf("%s: board %s: %s (%s %s), expected %s", step, r.Profile, r.Verdict, r.Reason, r.Detail, r.Expect)
			case !trusted && r.Works():
				t.Errorf("%s: board %s connected with a certificate of a CA the broker no longer trusts", step, r.Profile)
			}
			if r.Works() {
				works++
			}
		}
		t.Logf("%s: %d of %d board profiles connect", step, works, len(m.Rows))
	}
	suite := func(step string) {
		t.Helper()
		// checks this build of the catalog knows (the suite grows)
		var only []string
		for _, c := range security.Catalog() {
			if c.Tier == 1 && (os.Getenv("MQTTSTACK_ROLLOVER_SUBSET") == "" || contains(rolloverChecks, c.ID)) {
				only = append(only, c.ID)
			}
		}
		checks, err := security.Select(security.Catalog(), 1, only)
		if err != nil {
			t.Fatal(err)
		}
		e, err := security.Prepare(ctx, security.Options{Target: s.Target, Host: s.Host()}, checks)
		if err != nil {
			t.Fatalf("%s: security: %v", step, err)
		}
		defer e.Close()
		t.Logf("%s: security checks %s", step, strings.Join(only, " "))
		for _, r := range security.Run(ctx, e, checks, nil) {
			if r.Outcome.Status != security.Pass {
				t.Errorf("%s: %s %s: %s", step, r.Check.ID, r.Outcome.Status, r.Outcome.Evidence)
			}
		}
	}
	suite("before")

	// next: G2 (cross-signed) joins the trust files
	if _, err := a.Next(certs.NextOptions{CrossSign: true}); err != nil {
		t.Fatal(err)
	}
	g2, err := a.Generation(certs.GenNext)
	if err != nil {
		t.Fatal(err)
	}
	// wave 1 re-issued; observer-5 is the revoked WSS identity for nginx
	if _, err := g2.IssueClients(ctx, append(devs[:3:3], "observer-1", "observer-5")); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{devs[1], devs[4], "observer-5"} {
		if err := a.Revoke(id); err != nil {
			t.Fatal(err)
		}
	}
	reload()
	bundle, err := certs.LoadCAPool(certs.PathsOf(dir).CACert)
	if err != nil {
		t.Fatal(err)
	}
	fleet.expect("overlap", []probe{
		{"G1 device", dir, devs[3], bundle, ""},
		{"G1 cert of a re-issued device", dir, devs[0], bundle, ""},
		{"G2 device", g2.Dir, devs[0], bundle, ""},
		// the server certificate is still G1's: a wave must carry both
		// anchors (the exports do) until `certs server switch`
		{"G2 device trusting only G2", g2.Dir, devs[2], poolOf(g2.Cert), "signed by unknown authority"},
		{"G1 revoked", dir, devs[1], bundle, "revoked"},
		{"G2 revoked", g2.Dir, devs[1], bundle, "revoked"},
		{"G1-only revoked", dir, devs[4], bundle, "revoked"},
	})
	fleet.nginx("overlap", map[string]int{dir + "|observer-1": 426, g2.Dir + "|observer-1": 426, dir + "|observer-5": 400, g2.Dir + "|observer-5": 400})
	boards("overlap, G2 identities", g2, bundle, true)
	boards("overlap, G1 identities", a, bundle, true)
	suite("overlap")

	// promote, then move the server certificate to G2 (key kept, cross chain)
	if _, err := a.Promote(0); err != nil {
		t.Fatal(err)
	}
	prev := filepath.Join(dir, "previous")
	ren, err := a.RenewServer(certs.RenewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// the pins boards hold before the switch
	pinned := map[string]func(leaf *x509.Certificate) bool{
		certs.PinFingerprint: func(l *x509.Certificate) bool { return certs.PinsOf(l).LeafSHA1 == ren.OldPins.LeafSHA1 },
		certs.PinPublicKey:   func(l *x509.Certificate) bool { return certs.PinsOf(l).SPKISHA256 == ren.OldPins.SPKISHA256 },
	}
	for m, ok := range pinned {
		if err := fleet.connectPinned(dir, devs[0], bundle, ok); err != nil {
			t.Fatalf("%s pin before the switch: %v", m, err)
		}
	}
	if _, err := a.SwitchServer(); err != nil {
		t.Fatal(err)
	}
	s.Reload() // Mosquitto 2.0.11 reloads its server certificate on SIGHUP (the pin checks below prove it)
	s.ReloadNginx()
	// the pin report's predictions for the ESP8266, against the real broker
	checked := 0
	for _, v := range ren.Report {
		ok, isPin := pinned[v.Method]
		if v.Profile != "esp8266" || !isPin {
			continue
		}
		checked++
		err := fleet.connectPinned(dir, devs[0], bundle, ok)
		if (err == nil) != v.After {
			t.Errorf("pin report says %s/%s after=%v, the broker says %v", v.Profile, v.Method, v.After, err)
		}
	}
	if checked != 2 {
		t.Fatalf("checked %d ESP8266 pin predictions, want fingerprint and public key", checked)
	}
	fleet.expect("promoted", []probe{
		{"G1 device trusting only G1 (cross chain)", prev, devs[3], g1Only, ""},
		{"G2 device", dir, devs[0], bundle, ""},
		{"G1 revoked", prev, devs[1], bundle, "revoked"},
		{"G2 revoked", dir, devs[1], bundle, "revoked"},
	})
	suite("promoted")

	// retire: refused while identities hold only G1 certificates
	_, err = a.Retire(false, 0)
	var old *certs.OldOnlyError
	if !errors.As(err, &old) || !contains(old.IDs, devs[3]) || contains(old.IDs, devs[4]) || contains(old.IDs, devs[0]) {
		t.Fatalf("retire with G1-only devices: %v", err)
	}
	if _, err := a.IssueClients(ctx, old.IDs); err != nil {
		t.Fatal(err)
	}
	res, err := a.Retire(false, 0)
	if err != nil {
		t.Fatal(err)
	}
	reload()
	fleet.expect("retired", []probe{
		{"G1 device", res.Archive, devs[3], g1Only, "tls"},
		{"G2 device", dir, devs[3], bundle, ""},
		{"G2 revoked", dir, devs[1], bundle, "revoked"},
	})
	fleet.nginx("retired", map[string]int{res.Archive + "|observer-2": 403, dir + "|observer-1": 426, dir + "|observer-5": 400})
	boards("retired, G2 identities", a, bundle, true)
	// the retired CA's identities are refused on every board
	retired, err := certs.Open(res.Archive)
	if err != nil {
		t.Fatal(err)
	}
	boards("retired, G1 identities", retired, bundle, false)
	suite("retired")
}

func poolOf(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

type probe struct {
	name, dir, id string
	roots         *x509.CertPool // the device's anchors
	refusal       string         // "" = connects; else a TLS-layer refusal whose alert contains it
}

type fleetProber struct {
	t testing.TB
	s *stacktest.Stack
}

// expect connects each probe over mTLS (TLS 1.2, as the boards do) and
// checks CONNACK 0, or a refusal during the handshake.
func (f fleetProber) expect(step string, ps []probe) {
	f.t.Helper()
	for _, p := range ps {
		err := f.connect(p)
		switch {
		case p.refusal == "" && err != nil:
			f.t.Errorf("%s: %s (%s): refused: %v", step, p.name, p.id, err)
		case p.refusal != "" && err == nil:
			f.t.Errorf("%s: %s (%s): connected, want a TLS refusal", step, p.name, p.id)
		case p.refusal != "" && !strings.Contains(err.Error(), "handshake: remote error: tls: ") && !strings.Contains(err.Error(), "handshake: tls:"):
			f.t.Errorf("%s: %s (%s): refused, but not at the TLS layer: %v", step, p.name, p.id, err)
		case p.refusal != "" && p.refusal != "tls" && !strings.Contains(err.Error(), p.refusal):
			f.t.Errorf("%s: %s (%s): %v, want %q", step, p.name, p.id, err, p.refusal)
		}
	}
}

// connectPinned connects like connect and also requires the server's leaf
// to match a pin (the chain is verified as well: this emulates the pin
// comparison of setFingerprint/setKnownKey, not their lack of chain checks).
func (f fleetProber) connectPinned(dir, id string, roots *x509.CertPool, pin func(*x509.Certificate) bool) error {
	return f.dial(probe{name: "pinned", dir: dir, id: id, roots: roots}, func(cs tls.ConnectionState) error {
		if !pin(cs.PeerCertificates[0]) {
			return errors.New("server certificate does not match the pin")
		}
		return nil
	})
}

func (f fleetProber) connect(p probe) error { return f.dial(p, nil) }

func (f fleetProber) dial(p probe, verify func(tls.ConnectionState) error) error {
	c, err := certs.LoadClient(p.dir, p.id)
	if err != nil {
		f.t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: p.roots, ServerName: f.s.Target.ServerName, Certificates: []tls.Certificate{c}, MaxVersion: tls.VersionTLS12, VerifyConnection: verify}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", f.s.Target.MQTTSAddr())
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// MQTT 3.1.1 CONNECT, clean session, keepalive 30 s, client id "r"
	pkt := []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 30, 0, 1, 'r'}
	if _, err := conn.Write(pkt); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil {
		return fmt.Errorf("connack: %w", err)
	}
	if ack[0] != 0x20 || ack[3] != 0 {
		return fmt.Errorf("connack % x", ack)
	}
	return nil
}

// nginx GETs /mqtt (no upgrade) with each "dir|id" identity: 426 means
// nginx verified the certificate (and found the identity's listener); 400
// that the certificate failed verification (revoked); 403 that none was
// sent (nginx names only the trusted CAs, so a client of a retired CA has
// no acceptable certificate).
func (f fleetProber) nginx(step string, want map[string]int) {
	f.t.Helper()
	for k, code := range want {
		dir, id, _ := strings.Cut(k, "|")
		c, err := certs.LoadClient(dir, id)
		if err != nil {
			f.t.Fatal(err)
		}
		roots, err := certs.LoadCAPool(certs.PathsOf(f.s.PKIDir).CACert)
		if err != nil {
			f.t.Fatal(err)
		}
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: f.s.Target.ServerName, Certificates: []tls.Certificate{c}},
			DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
		cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		u := fmt.Sprintf("https://%s/mqtt", net.JoinHostPort("127.0.0.1", fmt.Sprint(f.s.Target.Local.HTTPSPort)))
		req, _ := http.NewRequest("GET", u, nil)
		req.Host = f.s.Target.ServerName
		resp, err := cl.Do(req)
		if err != nil {
			f.t.Errorf("%s: nginx %s (%s): %v", step, id, filepath.Base(dir), err)
			continue
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.StatusCode != code {
			f.t.Errorf("%s: nginx /mqtt with %s of %s: %d, want %d", step, id, filepath.Base(dir), resp.StatusCode, code)
		}
	}
}
