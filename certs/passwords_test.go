package certs

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// passwordUsers renders the password file the way the local stack does
// (every <pki>/clients/<id>.pass, MosquittoPasswordFile) and returns its
// users, sorted.
func passwordUsers(t testing.TB, pkiDir string) []string {
	t.Helper()
	passes, err := filepath.Glob(filepath.Join(pkiDir, clientsDir, "*.pass"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range passes {
		ids = append(ids, strings.TrimSuffix(filepath.Base(p), ".pass"))
	}
	sort.Strings(ids)
	file, err := MosquittoPasswordFile(pkiDir, ids)
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, l := range strings.Split(strings.TrimSpace(string(file)), "\n") {
		if l == "" {
			continue
		}
		u, h, ok := strings.Cut(l, ":")
		if !ok || !strings.HasPrefix(h, "$7$") {
			t.Fatalf("password file line %q is not user:$7$hash", l)
		}
		users = append(users, u)
	}
	sort.Strings(users)
	return users
}

// TestPasswordFileSkipsRevoked walks one PKI through revocations before,
// during and after a CA rollover: an identity's password stays in the
// broker's password file exactly while it holds an unrevoked certificate
// of a trusted generation. Each step's table says who is in the file.
func TestPasswordFileSkipsRevoked(t *testing.T) {
	a := newPKI(t, InitOptions{})
	dir := a.Dir
	issueIDs(t, a, "dev-1", "dev-2", "dev-3", "dev-4", "dev-5")
	revoke := func(ca *Authority, id string) {
		t.Helper()
		if err := ca.Revoke(id); err != nil {
			t.Fatalf("revoke %s in %s: %v", id, ca.Dir, err)
		}
	}
	var g2 *Authority
	steps := []struct {
		name string
		do   func()
		want []string // users of the password file afterwards
	}{
		{"fresh", func() {}, []string{"backend", "dev-1", "dev-2", "dev-3", "dev-4", "dev-5", "observer"}},
		{"revoked identity skipped, the others kept", func() { revoke(a, "dev-2") },
			[]string{"backend", "dev-1", "dev-3", "dev-4", "dev-5", "observer"}},
		{"re-issued after its revocation (new serial): back", func() {
			revoke(a, "dev-3")
			for _, ext := range []string{".crt", ".key"} {
				if err := os.Remove(filepath.Join(dir, clientsDir, "dev-3"+ext)); err != nil {
					t.Fatal(err)
				}
			}
			issueIDs(t, a, "dev-3")
		}, []string{"backend", "dev-1", "dev-3", "dev-4", "dev-5", "observer"}},
		{"a sub-CA's revoked certificate with the CN of a root identity does not touch it", func() {
			sub, err := a.SubCA("ci")
			if err != nil {
				t.Fatal(err)
			}
			if err := sub.IssueClient("ci-observer", ClientOptions{RawCN: "observer"}); err != nil {
				t.Fatal(err)
			}
			revoke(sub, "ci-observer")
		}, []string{"backend", "dev-1", "dev-3", "dev-4", "dev-5", "observer"}},
		{"rollover next: revoked in both generations skipped, in one only kept", func() {
			if _, err := a.Next(NextOptions{}); err != nil {
				t.Fatal(err)
			}
			var err error
			if g2, err = a.Generation(GenNext); err != nil {
				t.Fatal(err)
			}
			issueIDs(t, g2, "dev-1", "dev-4", "dev-5")
			revoke(a, "dev-1")  // the root revokes every generation's certificate
			revoke(g2, "dev-4") // G2's only: its G1 certificate still works
		}, []string{"backend", "dev-3", "dev-4", "dev-5", "observer"}},
		{"promoted: an identity not yet re-issued is judged by its previous certificate", func() {
			if _, err := a.Promote(0); err != nil {
				t.Fatal(err)
			}
			revoke(a, "dev-3") // G1 only (now previous); its password was copied into clients/
			if _, err := os.Stat(filepath.Join(dir, clientsDir, "dev-3.pass")); err != nil {
				t.Fatalf("promote did not copy dev-3's password: %v", err)
			}
		}, []string{"backend", "dev-4", "dev-5", "observer"}},
	}
	for _, st := range steps {
		st.do()
		if got := passwordUsers(t, dir); strings.Join(got, " ") != strings.Join(st.want, " ") {
			t.Fatalf("%s: password file users %v, want %v", st.name, got, st.want)
		}
	}
	// Revoke keeps the identity's files: its certificate and password can
	// still be presented (the security suite proves both refused).
	if _, err := LoadClient(dir, "dev-2"); err != nil {
		t.Errorf("revoked dev-2's certificate: %v", err)
	}
	if _, err := ClientPassword(dir, "dev-2"); err != nil {
		t.Errorf("revoked dev-2's password: %v", err)
	}
	got, err := RevokedIDs(dir, []string{"dev-1", "dev-2", "dev-3", "dev-4", "dev-5", "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got["dev-1"] || !got["dev-2"] || !got["dev-3"] {
		t.Errorf("RevokedIDs = %v, want dev-1, dev-2, dev-3", got)
	}
}

// TestRevokedIDsBadInput: a revoked.json or certificate that cannot be
// read is an error naming the file, never a password file that silently
// keeps (or drops) an identity.
func TestRevokedIDsBadInput(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(dir string) error
		want    []string
	}{
		{"revoked.json not JSON", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, revokedFile), []byte("{"), 0o644)
		}, []string{revokedFile, "fix the JSON"}},
		{"serial not hex", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, revokedFile), []byte(`{"revoked":[{"id":"dev-1","serial":"xyz"}]}`), 0o644)
		}, []string{revokedFile, `serial "xyz" of dev-1 is not hex`}},
		{"certificate of a revoked identity unreadable", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, clientsDir, "dev-1.crt"), []byte("not PEM"), 0o644)
		}, []string{"dev-1.crt", "certs issue --id dev-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newPKI(t, InitOptions{})
			issueIDs(t, a, "dev-1")
			if err := a.Revoke("dev-1"); err != nil {
				t.Fatal(err)
			}
			if err := tc.breakIt(a.Dir); err != nil {
				t.Fatal(err)
			}
			_, err := MosquittoPasswordFile(a.Dir, []string{"dev-1", "observer"})
			wantErr(t, err, tc.want...)
		})
	}
}
