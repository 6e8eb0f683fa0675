package certs

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCRLContents(t *testing.T) {
	clock := fixedClock()
	now := clock()
	a := newPKI(t, InitOptions{Now: clock, Observers: []string{}, Backends: []string{}, CRLNextUpdate: 7 * 24 * time.Hour})
	p := PathsOf(a.Dir)

	crls, err := LoadCRLs(p.CRL)
	if err != nil {
		t.Fatal(err)
	}
	if len(crls) != 1 || len(crls[0].RevokedCertificateEntries) != 0 {
		t.Fatalf("fresh PKI: %d CRLs, want one empty CRL", len(crls))
	}
	if err := crls[0].CheckSignatureFrom(a.Cert); err != nil {
		t.Fatalf("CRL not signed by the CA: %v", err)
	}
	if got := crls[0].NextUpdate; !got.Equal(now.Add(7 * 24 * time.Hour)) {
		t.Errorf("nextUpdate %v, want now+7d", got)
	}
	firstNumber := crls[0].Number.Int64()

	if _, err := a.IssueClients(context.Background(), []string{"dev-1", "dev-2", "dev-3"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"dev-1", "dev-3", "dev-3"} { // revoking twice is a no-op
		if err := a.Revoke(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Revoke("nobody"); err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("Revoke(nobody) = %v, want an error naming it", err)
	}

	crls, err = LoadCRLs(p.CRL)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range crls[0].RevokedCertificateEntries {
		got[e.SerialNumber.Text(16)] = true
		if !e.RevocationTime.Equal(now) {
			t.Errorf("revocation time %v, want %v", e.RevocationTime, now)
		}
	}
	for id, want := range map[string]bool{"dev-1": true, "dev-2": false, "dev-3": true} {
		s := readCert(t, filepath.Join(p.Clients, id+".crt")).SerialNumber.Text(16)
		if got[s] != want {
			t.Errorf("%s listed in CRL = %v, want %v", id, got[s], want)
		}
	}
	if len(crls[0].RevokedCertificateEntries) != 2 {
		t.Errorf("CRL lists %d entries, want 2", len(crls[0].RevokedCertificateEntries))
	}
	if crls[0].Number.Int64() <= firstNumber {
		t.Errorf("CRL number %v did not grow from %d", crls[0].Number, firstNumber)
	}

	var l revokedList
	data, _ := os.ReadFile(filepath.Join(a.Dir, revokedFile))
	if err := json.Unmarshal(data, &l); err != nil || len(l.Revoked) != 2 || l.Revoked[0].ID != "dev-1" {
		t.Errorf("revoked.json = %s (%v)", data, err)
	}

	// The revoked identity stays loadable: negative tests present it.
	if _, err := LoadClient(a.Dir, "dev-1"); err != nil {
		t.Errorf("revoked identity not loadable: %v", err)
	}
}

// TestCRLWithSubCA checks that ca.crl carries the root's and each
// sub-CA's CRL, each signed by its own CA, and that a sub-CA opened by
// path knows its root.
func TestCRLWithSubCA(t *testing.T) {
	n := newNegativePKI(t)
	crls, err := LoadCRLs(PathsOf(n.root.Dir).CRL)
	if err != nil {
		t.Fatal(err)
	}
	if len(crls) != 2 {
		t.Fatalf("ca.crl holds %d CRLs, want root + sub-CA", len(crls))
	}
	if err := crls[0].CheckSignatureFrom(n.root.Cert); err != nil {
		t.Errorf("first CRL not the root's: %v", err)
	}
	sub, err := Open(n.set.SubCADir)
	if err != nil {
		t.Fatal(err)
	}
	if err := crls[1].CheckSignatureFrom(sub.Cert); err != nil {
		t.Errorf("second CRL not the sub-CA's: %v", err)
	}
	if len(crls[0].RevokedCertificateEntries) != 1 || len(crls[1].RevokedCertificateEntries) != 1 {
		t.Errorf("entries root=%d sub=%d, want 1 each", len(crls[0].RevokedCertificateEntries), len(crls[1].RevokedCertificateEntries))
	}
	own, err := LoadCRLs(filepath.Join(sub.Dir, crlFile))
	if err != nil || len(own) != 1 {
		t.Fatalf("sub-CA's own ca.crl: %v (%d CRLs)", err, len(own))
	}
	if sub.parent == nil || sub.root().Dir != n.root.Dir {
		t.Fatal("sub-CA opened by path does not know its root")
	}
	if sub.Cert.MaxPathLen != 0 || !sub.Cert.MaxPathLenZero || !sub.Cert.IsCA {
		t.Errorf("sub-CA constraints: IsCA=%v MaxPathLen=%d", sub.Cert.IsCA, sub.Cert.MaxPathLen)
	}
	again, err := n.root.SubCA("ci")
	if err != nil || !again.Cert.Equal(sub.Cert) {
		t.Errorf("SubCA(ci) a second time made a new CA (%v)", err)
	}
	if _, err := sub.SubCA("deeper"); err == nil {
		t.Error("a sub-CA created a sub-CA")
	}
	cert, err := LoadClient(sub.Dir, n.set.Valid)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.Certificate) != 2 {
		t.Errorf("sub-CA client presents %d certificates, want leaf + intermediate", len(cert.Certificate))
	}
}

func TestCheckWindow(t *testing.T) {
	clock := fixedClock()
	now := clock()
	a := newPKI(t, InitOptions{Now: clock, Observers: []string{}, Backends: []string{}})
	if err := a.IssueClient("short", ClientOptions{NotAfter: now.Add(10 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := a.IssueClient("gone", ClientOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.IssueClients(context.Background(), DeviceIDs("dev-", 1, 50)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		within time.Duration
		at     time.Time
		inside []string // kind/subject
	}{
		{"7d", 7 * 24 * time.Hour, now, []string{"client/gone"}},
		{"30d", 30 * 24 * time.Hour, now, []string{"client/gone", "client/short"}},
		// 16 days on, more than half of the 30-day CRL is gone: the CRL's
		// window is capped at half its lifetime (15d < 30d).
		{"30d-later", 30 * 24 * time.Hour, now.Add(16 * 24 * time.Hour), []string{"client/gone", "client/short", "crl/" + DefaultCAName}},
		// The CRL's rule does not depend on the window: past its half-life
		// it is due under a short window too, and a fresh one is not due
		// under a long one (the 4y case).
		{"7d-later", 7 * 24 * time.Hour, now.Add(16 * 24 * time.Hour), []string{"client/gone", "client/short", "crl/" + DefaultCAName}},
		{"4y", 4 * 365 * 24 * time.Hour, now, nil}, // all but the CA and the fresh CRL
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es, err := a.Check(tc.within, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 3+52 {
				t.Fatalf("%d entries, want ca, server, crl + 52 clients", len(es))
			}
			var inside []string
			for i, e := range es {
				if i > 0 && e.NotAfter.Before(es[i-1].NotAfter) {
					t.Fatal("entries not sorted by NotAfter")
				}
				if e.Inside {
					inside = append(inside, e.Kind+"/"+e.Subject)
				}
			}
			if tc.inside == nil {
				if len(inside) != len(es)-2 {
					t.Errorf("inside %d, want all but the CA and the CRL", len(inside))
				}
				return
			}
			if strings.Join(inside, ",") != strings.Join(tc.inside, ",") {
				t.Errorf("inside %v, want %v", inside, tc.inside)
			}
		})
	}
}
