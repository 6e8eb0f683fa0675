package certs

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// NegativeSet locates the CI-only identities that SECURITY.md's CRT checks
// present. All but the foreign and self-signed ones come from a CI sub-CA
// below the root (never from the root itself); load each with
// LoadClient(<its dir>, <id>).
type NegativeSet struct {
	SubCADir string // sub-CA directory: LoadClient(SubCADir, id) for the ids below
	// Valid is a valid sub-CA client: the control that shows the sub-CA is
	// trusted at all, so the refusals below mean what they say.
	Valid          string
	Expired        string // CRT-03
	NotYetValid    string // CRT-04
	Revoked        string // CRT-05, listed in the sub-CA's CRL inside ca.crl
	ServerAuthOnly string // CRT-06: EKU serverAuth, no clientAuth
	CNSlash        string // CRT-07: CN "<impersonated>/sub"
	CNPlusHash     string // CRT-07: CN "dev+#"
	CNLong         string // CRT-07: CN of 100 characters (X.509's limit is 64)
	CNNonASCII     string // CRT-07: CN with non-ASCII letters
	// Foreign and self-signed certificates carry the impersonated device's
	// CN (CRT-02): LoadClient(ForeignDir, Impersonated), LoadClient(SelfSignedDir, Impersonated).
	ForeignDir    string
	SelfSignedDir string
	Impersonated  string
}

// IssueNegative creates (or refreshes) the negative identities under the
// sub-CA <pki>/<name>, a foreign CA in <pki>/<name>-foreign and a
// self-signed certificate in <pki>/<name>-selfsigned. impersonate is the
// id of a real device whose name the foreign, self-signed and CN-with-slash
// certificates borrow. It rewrites ca.crl; a running broker must reload
// (SIGHUP) to see the new sub-CA CRL, or it refuses every sub-CA client.
func (a *Authority) IssueNegative(name, impersonate string) (NegativeSet, error) {
	if err := ValidateID(impersonate); err != nil {
		return NegativeSet{}, fmt.Errorf("negative identities: impersonated %w", err)
	}
	sub, err := a.SubCA(name)
	if err != nil {
		return NegativeSet{}, fmt.Errorf("negative identities: %w", err)
	}
	now := a.now()
	p := name + "-"
	n := NegativeSet{
		SubCADir: sub.Dir, Valid: p + "valid", Expired: p + "expired", NotYetValid: p + "notyet",
		Revoked: p + "revoked", ServerAuthOnly: p + "serverauth", CNSlash: p + "cn-slash",
		CNPlusHash: p + "cn-plus-hash", CNLong: p + "cn-long", CNNonASCII: p + "cn-nonascii",
		ForeignDir:    filepath.Join(a.root().Dir, name+"-foreign"),
		SelfSignedDir: filepath.Join(a.root().Dir, name+"-selfsigned"),
		Impersonated:  impersonate,
	}
	issue := []struct {
		id string
		o  ClientOptions
	}{
		{n.Valid, ClientOptions{}},
		{n.Expired, ClientOptions{NotBefore: now.Add(-30 * 24 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}},
		{n.NotYetValid, ClientOptions{NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(30 * 24 * time.Hour)}},
		{n.Revoked, ClientOptions{}},
		{n.ServerAuthOnly, ClientOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}},
		{n.CNSlash, ClientOptions{RawCN: impersonate + "/sub"}},
		{n.CNPlusHash, ClientOptions{RawCN: "dev+#"}},
		{n.CNLong, ClientOptions{RawCN: strings.Repeat("L", 100)}},
		{n.CNNonASCII, ClientOptions{RawCN: "dév-ünïcödé"}},
	}
	for _, c := range issue {
		if err := sub.IssueClient(c.id, c.o); err != nil {
			return NegativeSet{}, fmt.Errorf("negative identities: %w", err)
		}
	}
	if err := sub.Revoke(n.Revoked); err != nil {
		return NegativeSet{}, fmt.Errorf("negative identities: %w", err)
	}
	f, err := NewForeign(n.ForeignDir)
	if err != nil {
		return NegativeSet{}, fmt.Errorf("negative identities: %w", err)
	}
	if err := f.IssueClient(impersonate, ClientOptions{}); err != nil {
		return NegativeSet{}, fmt.Errorf("negative identities: foreign: %w", err)
	}
	if err := os.MkdirAll(n.SelfSignedDir, 0o700); err != nil {
		return NegativeSet{}, fmt.Errorf("negative identities: %w", err)
	}
	if err := SelfSigned(n.SelfSignedDir, impersonate); err != nil {
		return NegativeSet{}, fmt.Errorf("negative identities: %w", err)
	}
	return n, nil
}
