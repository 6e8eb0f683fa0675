package certs

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestIssueNegative(t *testing.T) {
	n := newNegativePKI(t)
	cns := map[string]string{
		n.set.Valid:      n.set.Valid,
		n.set.CNSlash:    "dev-1/sub",
		n.set.CNPlusHash: "dev+#",
		n.set.CNLong:     strings.Repeat("L", 100),
		n.set.CNNonASCII: "dév-ünïcödé",
	}
	for id, want := range cns {
		c, err := LoadClient(n.set.SubCADir, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Leaf.Subject.CommonName; got != want {
			t.Errorf("%s: CN %q, want %q", id, got, want)
		}
		if len(c.Certificate) != 2 {
			t.Errorf("%s: presents %d certificates, want leaf + sub-CA", id, len(c.Certificate))
		}
	}
	if filepath.Dir(n.set.SubCADir) != n.root.Dir {
		t.Errorf("sub-CA %s is not inside the PKI %s", n.set.SubCADir, n.root.Dir)
	}
	// Foreign and self-signed identities impersonate dev-1 but are not
	// sub-CAs of this root (the CRL file must not try to include them).
	for _, dir := range []string{n.set.ForeignDir, n.set.SelfSignedDir} {
		c, err := LoadClient(dir, "dev-1")
		if err != nil || c.Leaf.Subject.CommonName != "dev-1" {
			t.Errorf("%s: %v", dir, err)
		}
	}
	subs, err := n.root.SubCAs()
	if err != nil || len(subs) != 1 {
		t.Fatalf("SubCAs = %d, %v; want only the CI sub-CA", len(subs), err)
	}
	// Running it again refreshes the set without a new sub-CA.
	again, err := n.root.IssueNegative("ci", "dev-1")
	if err != nil || again != n.set {
		t.Fatalf("second IssueNegative: %+v, %v", again, err)
	}
	if _, err := n.root.IssueNegative("ci", "dev/1"); err == nil {
		t.Error("IssueNegative accepted a bad impersonated id")
	}
}
