package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/internal/mqttwire"
	"github.com/mqttstack/mqttstack/internal/stacktest"
)

// TestCertsCLI drives `mqttstack certs` end to end through the command tree and the
// exit-code mapping, as a user would.
func TestCertsCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	out := t.TempDir()
	steps := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{"no-subcommand", []string{"certs"}, exitUsage, "", "name a subcommand: ca, check, crl, export, init, issue, negative, revoke, server"},
		{"unknown-subcommand", []string{"certs", "frobnicate"}, exitUsage, "", `unknown subcommand "frobnicate"`},
		{"open-before-init", []string{"certs", "check", "--dir", dir}, exitUsage, "", "mqttstack certs init"},
		{"init", []string{"certs", "init", "--dir", dir, "--san", "mqtt.example.com,203.0.113.5"}, exitOK, "created PKI", ""},
		{"init-again", []string{"certs", "init", "--dir", dir}, exitUsage, "", "--force"},
		{"init-bad-key", []string{"certs", "init", "--dir", dir, "--key", "dsa"}, exitUsage, "", "ecdsa or rsa2048"},
		{"init-bad-san", []string{"certs", "init", "--dir", dir, "--force", "--san", "bad name"}, exitUsage, "", `"bad name"`},
		{"issue-count", []string{"certs", "issue", "--dir", dir, "--count", "3"}, exitOK, "issued 3, kept 0", ""},
		{"issue-again", []string{"certs", "issue", "--dir", dir, "--count", "3", "--id", "extra-1"}, exitOK, "issued 1, kept 3", ""},
		{"issue-bad-id", []string{"certs", "issue", "--dir", dir, "--id", "devA/sub"}, exitUsage, "", `"devA/sub"`},
		{"issue-nothing", []string{"certs", "issue", "--dir", dir}, exitUsage, "", "nothing to issue"},
		{"revoke", []string{"certs", "revoke", "dev-00002", "--dir", dir}, exitOK, "password files: dev-00002 leaves the broker's password files", ""},
		{"revoke-unknown", []string{"certs", "revoke", "nobody", "--dir", dir}, exitUsage, "", "nobody"},
		{"check-ok", []string{"certs", "check", "--dir", dir, "--within", "30d"}, exitOK, "22 client certificates", ""},
		{"check-inside", []string{"certs", "check", "--dir", dir, "--within", "1200d"}, exitFailed, "EXPIRES SOON", "item(s) due ("},
		// a CRL is judged by its own rule, which check prints, not by --within
		{"check-crl-rule", []string{"certs", "check", "--dir", dir, "--within", "4000d"}, exitFailed, "when less than half of its 30d lifetime is left (its own rule, not --within)", "re-issue the certificates"},
		{"check-bad-window", []string{"certs", "check", "--dir", dir, "--within", "soon"}, exitUsage, "", "--within"},
		{"crl", []string{"certs", "crl", "--dir", dir, "--next-update", "10d"}, exitOK, "wrote", ""},
		{"export-pem", []string{"certs", "export", "dev-00001", "--dir", dir, "--format", "pem", "--out", filepath.Join(out, "dev.pem")}, exitOK, "wrote", ""},
		{"export-header", []string{"certs", "export", "dev-00001", "--dir", dir, "--format", "c-header"}, exitOK, "dev_00001_cert_der[]", ""},
		{"export-fingerprint", []string{"certs", "export", "--dir", dir, "--format", "fingerprint"}, exitOK, "SHA-256", ""},
		{"export-der", []string{"certs", "export", "dev-00001", "--dir", dir, "--format", "der", "--out", filepath.Join(out, "der")}, exitOK, "ca.der", ""},
		{"export-der-no-out", []string{"certs", "export", "dev-00001", "--dir", dir, "--format", "der"}, exitUsage, "", "--out DIR"},
		{"export-bad-format", []string{"certs", "export", "dev-00001", "--dir", dir, "--format", "zip"}, exitUsage, "", "pem, der, c-header or fingerprint"},
		{"negative", []string{"certs", "negative", "--dir", dir, "--impersonate", "dev-00001"}, exitOK, "CRT-05 revoked", ""},
		{"negative-bad-name", []string{"certs", "negative", "--dir", dir, "--name", "a/b"}, exitUsage, "", "--name"},
		{"check-after-negative", []string{"certs", "check", "--dir", dir, "--within", "30d"}, exitOK, "sub-ca", ""},
		{"export-unknown-id", []string{"certs", "export", "nobody", "--dir", dir}, exitUsage, "", "nobody"},
	}
	for _, s := range steps {
		stdout, stderr, code := runCLI(s.args...)
		if code != s.code || !strings.Contains(stdout, s.stdout) || !strings.Contains(stderr, s.stderr) {
			t.Errorf("%s: %v\nexit %d (want %d)\nstdout: %s\nstderr: %s\nwant stdout ~%q stderr ~%q",
				s.name, s.args, code, s.code, stdout, stderr, s.stdout, s.stderr)
		}
	}
	if st, err := os.Stat(filepath.Join(out, "dev.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("exported PEM with the key: %v, mode %v; want 0600", err, st.Mode())
	}
	crls, err := certs.LoadCRLs(certs.PathsOf(dir).CRL)
	if err != nil || len(crls[0].RevokedCertificateEntries) != 1 {
		t.Errorf("CRL after revoke: %v", err)
	}
}

func TestParseDays(t *testing.T) {
	for in, want := range map[string]string{"30d": "720h0m0s", "1.5d": "36h0m0s", "720h": "720h0m0s", "90m": "1h30m0s"} {
		d, err := parseDays(in)
		if err != nil || d.String() != want {
			t.Errorf("parseDays(%q) = %v, %v; want %s", in, d, err, want)
		}
	}
	for _, in := range []string{"d", "xd", "30 days", ""} {
		if _, err := parseDays(in); err == nil {
			t.Errorf("parseDays(%q) accepted", in)
		}
	}
}

// opsLogin sends a 3.1.1 CONNECT with id's password from the PKI to the
// stack's ops (password) listener and returns the CONNACK code, or an
// error when the broker closed the connection without one.
func opsLogin(t *testing.T, s *stacktest.Stack, id string) (byte, error) {
	t.Helper()
	pw, err := certs.ClientPassword(s.PKIDir, id)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(s.Target.Local.OpsPort)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(mqttwire.Connect{ClientID: id, Username: &id, Password: &pw, KeepAlive: 30}.Encode()); err != nil {
		return 0, err
	}
	p, err := mqttwire.ReadPacket(c, 64)
	if err != nil {
		return 0, err
	}
	code, _, err := mqttwire.ConnackCode(p)
	return code, err
}

// TestCertsRevokeReloadLocal: after `certs revoke ID --reload-local` the
// running local stack refuses ID's correct password on its ops listener
// (the password file was rewritten without it), and a valid identity's
// password still logs in there.
func TestCertsRevokeReloadLocal(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithOpsPort(), stacktest.WithPrivatePKI())
	a, err := certs.Open(s.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.IssueClients(t.Context(), []string{"dev-revoked", "dev-kept"}); err != nil {
		t.Fatal(err)
	}
	s.RefreshPasswords()
	for _, id := range []string{"dev-revoked", "dev-kept"} {
		if code, err := opsLogin(t, s, id); err != nil || code != 0 {
			t.Fatalf("%s before the revocation: CONNACK %d %v, want 0", id, code, err)
		}
	}
	stdout, stderr, code := runCLI("certs", "revoke", "dev-revoked", "--dir", s.PKIDir, "--reload-local", "--state-dir", s.StateDir)
	if code != exitOK || !strings.Contains(stdout, "password files rewritten without dev-revoked") {
		t.Fatalf("revoke --reload-local: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if code, err := opsLogin(t, s, "dev-revoked"); err == nil && code == 0 {
		t.Errorf("revoked dev-revoked logged in with its password on the ops listener (CONNACK 0)")
	}
	if code, err := opsLogin(t, s, "dev-kept"); err != nil || code != 0 {
		t.Errorf("dev-kept after the revocation of another identity: CONNACK %d %v, want 0", code, err)
	}
}
