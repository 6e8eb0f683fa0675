package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func bundleCNs(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := parseCertsPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, c.Subject.CommonName)
	}
	return out
}

func crlIssuers(t testing.TB, path string) []string {
	t.Helper()
	crls, err := LoadCRLs(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range crls {
		out = append(out, l.Issuer.CommonName)
	}
	return out
}

func wantErr(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}

func issueIDs(t testing.TB, a *Authority, ids ...string) {
	t.Helper()
	if _, err := a.IssueClients(context.Background(), ids); err != nil {
		t.Fatal(err)
	}
}

func readPass(t testing.TB, dir, id string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, clientsDir, id+".pass"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRolloverSteps walks next → issue --ca next → promote → server renew
// → retire on one PKI and checks each step's files and each bad input's
// error.
func TestRolloverSteps(t *testing.T) {
	a := newPKI(t, InitOptions{})
	dir := a.Dir
	devs := DeviceIDs("dev-", 1, 4)
	issueIDs(t, a, devs...)
	p := PathsOf(dir)

	// Bad input before a rollover.
	_, err := a.Retire(false, 0)
	wantErr(t, err, "G1 is the only CA", "certs ca next")
	_, err = a.Promote(0)
	wantErr(t, err, "no successor CA", "certs ca next")
	_, err = a.Generation("next")
	wantErr(t, err, "no successor CA")
	_, err = a.Generation("G7")
	wantErr(t, err, `CA "G7"`, "G1 (current)")

	// next, cross-signed
	res, err := a.Next(NextOptions{CrossSign: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.CA.Subject.CommonName; got != DefaultCAName+" G2" {
		t.Fatalf("successor CN %q", got)
	}
	if len(res.Changed) != 2 || res.Changed[0] != p.CACert || res.Changed[1] != p.CRL {
		t.Fatalf("next changed %v, want the two trust files", res.Changed)
	}
	if got := bundleCNs(t, p.CACert); fmt.Sprint(got) != fmt.Sprint([]string{DefaultCAName, DefaultCAName + " G2"}) {
		t.Fatalf("trust bundle %v", got)
	}
	if got := crlIssuers(t, p.CRL); fmt.Sprint(got) != fmt.Sprint([]string{DefaultCAName, DefaultCAName + " G2"}) {
		t.Fatalf("CRL bundle issuers %v", got)
	}
	if res.Cross == nil || res.Cross.CheckSignatureFrom(a.Cert) != nil || !publicKeysEqual(res.Cross.PublicKey, res.CA.PublicKey) ||
		!bytes.Equal(res.Cross.RawSubject, res.CA.RawSubject) || res.Cross.NotAfter.After(a.Cert.NotAfter) {
		t.Fatal("cross certificate: want G2's name and key signed by G1, not outliving G1")
	}
	if m := mode(t, filepath.Join(dir, nextDir, caKeyFile)); m != 0o600 {
		t.Fatalf("next/ca.key mode %o", m)
	}
	// Open still opens G1 (the key picks the bundle's certificate).
	if o, err := Open(dir); err != nil || o.Cert.Subject.CommonName != DefaultCAName {
		t.Fatalf("Open during overlap: %v", err)
	}
	_, err = a.Next(NextOptions{})
	wantErr(t, err, "already holds G2")
	_, err = a.Retire(false, 0)
	wantErr(t, err, "G1 is still the active CA", "certs ca promote")

	// re-issue wave 1 under next: same ids and passwords
	g2, err := a.Generation("next")
	if err != nil {
		t.Fatal(err)
	}
	issueIDs(t, g2, devs[:2]...)
	for _, id := range devs[:2] {
		if readPass(t, g2.Dir, id) != readPass(t, dir, id) {
			t.Fatalf("%s: the re-issue changed the password", id)
		}
	}
	// exports follow the newest generation holding the id
	var h bytes.Buffer
	if err := a.Export(&h, devs[0], FormatCHeader); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.String(), DefaultCAName+" G2") || !strings.Contains(h.String(), "dev_00001_ca_g1_der") {
		t.Fatalf("c-header of a re-issued device names the wrong CA:\n%.600s", h.String())
	}
	h.Reset()
	if err := a.Export(&h, devs[3], FormatPEM); err != nil {
		t.Fatal(err)
	}
	if c, _ := parseCertPEM(h.Bytes()); c == nil || c.CheckSignatureFrom(a.Cert) != nil {
		t.Fatal("a device not yet re-issued exports its G1 certificate")
	}
	err = a.Export(&h, "dev-99999", FormatPEM)
	wantErr(t, err, "dev-99999 was issued by neither CA generation", "G1, G2")

	// revoke reaches both generations' certificates of an id
	if err := a.Revoke(devs[1]); err != nil {
		t.Fatal(err)
	}
	crls, _ := LoadCRLs(p.CRL)
	for _, gen := range []*Authority{a, g2} {
		c := readCert(t, filepath.Join(gen.Dir, clientsDir, devs[1]+".crt"))
		if err := CheckRevocation(crls, []*x509.Certificate{c, gen.Cert}); !errors.Is(err, ErrRevoked) {
			t.Fatalf("%s's %s certificate not revoked: %v", devs[1], GenerationName(gen.Cert), err)
		}
	}
	wantErr(t, a.Revoke("nobody"), "nobody was issued by neither CA generation")

	// promote
	opass := readPass(t, dir, "observer")
	res, err = a.Promote(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changed) != 1 || res.Changed[0] != p.CRL {
		t.Fatalf("promote changed %v: the trust bundle must stay byte-identical, only fresh CRLs", res.Changed)
	}
	if fmt.Sprint(res.Reissued) != "[backend observer]" {
		t.Fatalf("promote re-issued %v, want the operator identities", res.Reissued)
	}
	if readPass(t, dir, "observer") != opass {
		t.Fatal("promote changed the observer's password")
	}
	if readPass(t, dir, devs[3]) != readPass(t, filepath.Join(dir, previousDir), devs[3]) {
		t.Fatal("promote did not keep the password of a device not yet re-issued in <pki>/clients")
	}
	o, err := Open(dir)
	if err != nil || GenerationName(o.Cert) != "G2" || GenerationName(a.Cert) != "G2" {
		t.Fatalf("after promote Open gives %v, %v", o, err)
	}
	if _, err := os.Stat(filepath.Join(dir, nextDir)); !os.IsNotExist(err) {
		t.Fatal("next/ still exists after promote")
	}
	if _, err := os.Stat(filepath.Join(dir, crossCertFile)); err != nil {
		t.Fatal("the cross certificate did not move with the promoted CA")
	}
	// a device not re-issued still loads (from previous/), and its password too
	if c, err := LoadClient(dir, devs[3]); err != nil || GenerationName(mustIssuer(t, c.Leaf, a)) != "G1" {
		t.Fatalf("LoadClient of a G1-only device after promote: %v", err)
	}
	if _, err := ClientPassword(dir, devs[3]); err != nil {
		t.Fatal(err)
	}
	_, err = a.Promote(0)
	wantErr(t, err, "it was promoted", "G2 is the active CA")
	_, err = a.Next(NextOptions{})
	wantErr(t, err, "still trusted", "certs ca retire")
	st, err := a.Status()
	if err != nil || st.Previous == nil || st.Reissued != 4 || st.Pending != 2 {
		// observer, backend, dev-00001, dev-00002 re-issued; dev-00003/4 pending
		t.Fatalf("status %+v %v", st, err)
	}

	// retire: refused for the server certificate, then for old-only devices
	_, err = a.Retire(false, 0)
	wantErr(t, err, "server certificate", "not issued by G2", "certs server renew")
	ren, err := a.RenewServer(RenewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !ren.KeptKey || ren.NewPins.SPKISHA256 != ren.OldPins.SPKISHA256 || ren.NewPins.LeafSHA1 == ren.OldPins.LeafSHA1 || len(ren.Chain) != 2 {
		t.Fatalf("renewal keeping the key: %+v", ren)
	}
	if _, err := a.SwitchServer(); err != nil {
		t.Fatal(err)
	}
	_, err = a.Retire(false, 0)
	var old *OldOnlyError
	if !errors.As(err, &old) || fmt.Sprint(old.IDs) != "[dev-00003 dev-00004]" {
		t.Fatalf("retire with G1-only devices: %v", err)
	}
	wantErr(t, err, "2 identities hold only a G1 certificate and would be locked out: dev-00003, dev-00004", "--force")
	issueIDs(t, a, devs[2])
	res, err = a.Retire(true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.OldOnly) != "[dev-00004]" || len(res.Changed) != 2 || fmt.Sprint(res.Dropped) != "[dev-00004]" {
		t.Fatalf("forced retire: %+v", res)
	}
	if got := bundleCNs(t, p.CACert); fmt.Sprint(got) != fmt.Sprint([]string{DefaultCAName + " G2"}) {
		t.Fatalf("trust bundle after retire %v", got)
	}
	if got := crlIssuers(t, p.CRL); fmt.Sprint(got) != fmt.Sprint([]string{DefaultCAName + " G2"}) {
		t.Fatalf("CRL bundle after retire %v", got)
	}
	if _, err := os.Stat(filepath.Join(res.Archive, caKeyFile)); err != nil {
		t.Fatalf("retired CA not archived: %v", err)
	}
	_, err = a.Retire(false, 0)
	wantErr(t, err, "G2 is the only CA")
	// the next rollover starts from G2
	res, err = a.Next(NextOptions{})
	if err != nil || res.CA.Subject.CommonName != DefaultCAName+" G3" {
		t.Fatalf("second rollover: %v", err)
	}
}

func mustIssuer(t testing.TB, leaf *x509.Certificate, a *Authority) *x509.Certificate {
	t.Helper()
	gens, err := a.Generations()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gens {
		if leaf.CheckSignatureFrom(g.Cert) == nil {
			return g.Cert
		}
	}
	t.Fatalf("%s: issued by no trusted generation", leaf.Subject.CommonName)
	return nil
}

// TestRolloverOldPKI: a PKI written before rollovers (one ca.crt, no
// next/) opens as G1 and starts a rollover without migration.
func TestRolloverOldPKI(t *testing.T) {
	a := newPKI(t, InitOptions{CAName: "acme devices"})
	if GenerationName(a.Cert) != "G1" {
		t.Fatal(GenerationName(a.Cert))
	}
	res, err := a.Next(NextOptions{})
	if err != nil || res.CA.Subject.CommonName != "acme devices G2" || res.Cross != nil {
		t.Fatalf("next: %v", err)
	}
	if _, err := os.Stat(filepath.Join(a.Dir, nextDir, crossCertFile)); !os.IsNotExist(err) {
		t.Fatal("a cross certificate without --cross-sign")
	}
	if subs, err := a.SubCAs(); err != nil || len(subs) != 0 {
		t.Fatalf("next/ counted as a sub-CA: %v %v", subs, err)
	}
}

func TestPinReport(t *testing.T) {
	a := newPKI(t, InitOptions{})
	ren, err := a.RenewServer(RenewOptions{NewKey: true})
	if err != nil {
		t.Fatal(err)
	}
	if ren.KeptKey || ren.NewPins.SPKISHA256 == ren.OldPins.SPKISHA256 {
		t.Fatal("--new-key kept the key")
	}
	got := map[string]bool{}
	for _, v := range ren.Report {
		got[v.Profile+"/"+v.Method+"/"+v.Anchors] = v.After
	}
	want := map[string]bool{
		"esp8266/" + PinFingerprint + "/": false,
		"esp8266/" + PinPublicKey + "/":   false,
		"esp8266/" + PinCAAnchor + "/G1":  true,
		"esp32/" + PinNone + "/":          true,
		"mkr1010-eccx08/ca-anchor/G1":     true,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: after=%v (present %v), want %v", k, g, ok, v)
		}
	}
	// A board whose handshake buffer cannot hold the chain breaks.
	small := []DeviceProfile{{Name: "tiny", Methods: []string{PinCAAnchor}, MaxChain: 100}}
	rep, err := a.PinReport(ren.Chain, ren.Chain, a.now(), small)
	if err != nil || len(rep) != 1 || rep[0].After || !strings.Contains(rep[0].Why, "100-byte buffer") {
		t.Fatalf("chain size: %+v %v", rep, err)
	}
	// Nothing switched yet: server.crt is the old one.
	if c := readCert(t, PathsOf(a.Dir).ServerCert); !c.Equal(ren.Old) {
		t.Fatal("renew replaced server.crt before the switch")
	}
	if _, err := a.SwitchServer(); err != nil {
		t.Fatal(err)
	}
	if c := readCert(t, PathsOf(a.Dir).ServerCert); !c.Equal(ren.New) {
		t.Fatal("switch did not install the staged certificate")
	}
	_, err = a.SwitchServer()
	wantErr(t, err, "nothing staged", "certs server renew")
}

// TestTimelineRollover: during a rollover the timeline lists both CAs, the
// cross certificate, both CRLs with their rule, a staged server
// certificate, and devices of both generations grouped by month; the JSON
// round-trips and --within names what falls inside.
func TestTimelineRollover(t *testing.T) {
	a := newPKI(t, InitOptions{ClientValidity: 40 * 24 * time.Hour})
	issueIDs(t, a, DeviceIDs("dev-", 1, 3)...)
	if _, err := a.Next(NextOptions{CrossSign: true, CRLNextUpdate: 10 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	g2, _ := a.Generation(GenNext)
	issueIDs(t, g2, "dev-00001")
	if _, err := a.RenewServer(RenewOptions{CA: GenNext}); err != nil {
		t.Fatal(err)
	}
	now := a.now()
	es, err := a.Check(45*24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	tl := NewTimeline(es, 45*24*time.Hour, now)
	kinds := map[string]int{}
	for _, e := range tl.Items {
		kinds[e.Kind+"/"+e.Generation]++
		if e.Kind == "crl" && (e.Rule != RuleCRLHalf || e.Due.IsZero()) {
			t.Errorf("CRL %s without its rule", e.Subject)
		}
	}
	want := map[string]int{"ca/G1": 1, "ca/G2": 1, "cross/G2": 1, "server/G1": 1, "server-next/G2": 1, "crl/G1": 1, "crl/G2": 1}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("timeline kinds %v, want %v", kinds, want)
	}
	month := now.Add(40 * 24 * time.Hour).UTC().Format("2006-01")
	// devices: observer+backend+3 devices of G1, 1 of G2
	if len(tl.Devices) != 2 || tl.Devices[0].Month != month || tl.Devices[0].Count != 5 || tl.Devices[1].Count != 1 || tl.Devices[1].Generation != "G2" {
		t.Fatalf("devices by month %+v", tl.Devices)
	}
	if tl.DueKinds["client"] != 6 || tl.DueKinds["crl"] != 0 || tl.DueKinds["ca"] != 0 {
		t.Fatalf("due %v", tl.DueKinds)
	}
	if s := tl.DueSummary(); !strings.Contains(s, "6 client certificate(s): backend, dev-00001") {
		t.Fatalf("due summary %q", s)
	}
	var b bytes.Buffer
	if err := tl.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Timeline
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || len(back.Items) != len(tl.Items) || back.Devices[1].Generation != "G2" {
		t.Fatalf("JSON round trip: %v\n%s", err, b.String())
	}
	// a CRL past half its life is due whatever --within says
	es, _ = a.Check(0, now.Add(6*24*time.Hour))
	if tl := NewTimeline(es, 0, now); tl.DueKinds["crl"] != 2 {
		t.Fatalf("CRLs past half-life: due %v", tl.DueKinds)
	}
}

// TestPromoteInterrupted: a promote that dies between two renames is undone
// by the next Open (the journal), and promoting again succeeds.
func TestPromoteInterrupted(t *testing.T) {
	for _, at := range []int{1, 4, 7} {
		t.Run(fmt.Sprint("crash-before-rename-", at), func(t *testing.T) {
			a := newPKI(t, InitOptions{})
			issueIDs(t, a, "dev-00001")
			if _, err := a.Next(NextOptions{}); err != nil {
				t.Fatal(err)
			}
			promoteCrashAt = at
			_, err := a.Promote(0)
			promoteCrashAt = -1
			if !errors.Is(err, errSimulatedCrash) {
				t.Fatalf("no simulated crash: %v", err)
			}
			if _, err := os.Stat(filepath.Join(a.Dir, promoteJournalFile)); err != nil {
				t.Fatal("no journal left by the crash")
			}
			o, err := Open(a.Dir)
			if err != nil || GenerationName(o.Cert) != "G1" {
				t.Fatalf("Open after the crash: %v", err)
			}
			if _, err := o.Generation(GenNext); err != nil {
				t.Fatalf("next/ not restored: %v", err)
			}
			if _, err := LoadClient(a.Dir, "dev-00001"); err != nil {
				t.Fatal(err)
			}
			if _, err := o.Promote(0); err != nil {
				t.Fatalf("promote after recovery: %v", err)
			}
			if GenerationName(o.Cert) != "G2" {
				t.Fatal(GenerationName(o.Cert))
			}
		})
	}
}

// TestRolloverRSA: an RSA-2048 PKI (boards without ECDSA) rolls over the
// same way; the successor and the cross certificate are RSA too.
func TestRolloverRSA(t *testing.T) {
	a := newPKI(t, InitOptions{Key: RSA2048})
	issueIDs(t, a, "dev-00001")
	res, err := a.Next(NextOptions{CrossSign: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.CA.PublicKeyAlgorithm != x509.RSA || res.Cross.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Fatalf("successor %v, cross signed with %v", res.CA.PublicKeyAlgorithm, res.Cross.SignatureAlgorithm)
	}
	g2, _ := a.Generation(GenNext)
	issueIDs(t, g2, "dev-00001")
	if _, err := a.Promote(0); err != nil {
		t.Fatal(err)
	}
	ren, err := a.RenewServer(RenewOptions{})
	if err != nil || ren.New.PublicKeyAlgorithm != x509.RSA || len(ren.Chain) != 2 {
		t.Fatalf("renew: %v", err)
	}
	if _, err := a.SwitchServer(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Retire(false, 0); err != nil {
		t.Fatal(err)
	}
}
