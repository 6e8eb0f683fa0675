package main

import (
	"crypto/tls"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/internal/stacktest"
)

// TestCertsRolloverCLI drives a whole CA rollover through the command
// tree: every step, every refusal with its exit code and fix, and the
// timeline JSON.
func TestCertsRolloverCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	js := filepath.Join(t.TempDir(), "expiry.json")
	steps := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{"init", []string{"certs", "init", "--dir", dir}, exitOK, "created PKI", ""},
		{"issue", []string{"certs", "issue", "--dir", dir, "--count", "4"}, exitOK, "issued 4", ""},
		{"retire-only-ca", []string{"certs", "ca", "retire", "--dir", dir}, exitUsage, "", "G1 is the only CA"},
		{"promote-nothing", []string{"certs", "ca", "promote", "--dir", dir}, exitUsage, "", "certs ca next"},
		{"issue-next-missing", []string{"certs", "issue", "--dir", dir, "--ca", "next", "--count", "1"}, exitUsage, "", "no successor CA"},
		{"next", []string{"certs", "ca", "next", "--dir", dir, "--cross-sign"}, exitOK, "trust files changed: " + filepath.Join(dir, "ca.crt") + ", " + filepath.Join(dir, "ca.crl"), ""},
		{"next-twice", []string{"certs", "ca", "next", "--dir", dir}, exitUsage, "", "already holds G2"},
		{"wave-1", []string{"certs", "issue", "--dir", dir, "--ca", "next", "--from", "1", "--count", "2"}, exitOK, "issued 2", ""},
		{"wave-typo", []string{"certs", "issue", "--dir", dir, "--ca", "next", "--from", "3", "--count", "3"}, exitUsage, "", "1 id(s) were issued by neither CA generation: dev-00005"},
		{"issue-unknown-ca", []string{"certs", "issue", "--dir", dir, "--ca", "G9", "--count", "1"}, exitUsage, "", `CA "G9"`},
		{"export-follows", []string{"certs", "export", "dev-00001", "--dir", dir, "--format", "c-header"}, exitOK, "G2", ""},
		{"export-neither", []string{"certs", "export", "nobody", "--dir", dir}, exitUsage, "", "issued by neither CA generation"},
		{"status-overlap", []string{"certs", "ca", "status", "--dir", dir}, exitOK, "still only on the older: 20", ""},
		{"promote", []string{"certs", "ca", "promote", "--dir", dir}, exitOK, "G2 \"mqttstack device CA G2\" is the active CA", ""},
		{"promote-twice", []string{"certs", "ca", "promote", "--dir", dir}, exitUsage, "", "it was promoted"},
		{"retire-server", []string{"certs", "ca", "retire", "--dir", dir}, exitUsage, "", "certs server renew"},
		{"renew", []string{"certs", "server", "renew", "--dir", dir}, exitOK, "BREAKS", ""},
		{"pins", []string{"certs", "server", "pins", "--dir", dir}, exitOK, "staged   setKnownKey public key", ""},
		{"pins-header", []string{"certs", "server", "pins", "--dir", dir, "--format", "c-header"}, exitOK, "static const uint8_t mqtt_server_sha1_staged[20]", ""},
		{"switch", []string{"certs", "server", "switch", "--dir", dir}, exitOK, "server files changed", ""},
		{"retire-refused", []string{"certs", "ca", "retire", "--dir", dir}, exitFailed, "", "2 identities hold only a G1 certificate and would be locked out: dev-00003, dev-00004"},
		{"check-json", []string{"certs", "check", "--dir", dir, "--within", "1200d", "--json", js}, exitFailed, "DEVICES EXPIRE IN", "client certificate(s): backend"},
		{"retire-force", []string{"certs", "ca", "retire", "--dir", dir, "--force"}, exitOK, "2 identities locked out: dev-00003 dev-00004", ""},
		{"status-done", []string{"certs", "ca", "status", "--dir", dir}, exitOK, "none in progress", ""},
	}
	for _, s := range steps {
		stdout, stderr, code := runCLI(s.args...)
		if code != s.code || !strings.Contains(stdout, s.stdout) || !strings.Contains(stderr, s.stderr) {
			t.Fatalf("%s: %v\nexit %d (want %d)\nstdout: %s\nstderr: %s\nwant stdout ~%q stderr ~%q",
				s.name, s.args, code, s.code, stdout, stderr, s.stdout, s.stderr)
		}
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var tl certs.Timeline
	if err := json.Unmarshal(b, &tl); err != nil || len(tl.Due) == 0 || len(tl.Devices) == 0 {
		t.Fatalf("timeline JSON: %v\n%s", err, b)
	}
}

// TestCertsRolloverReloadLocal: --reload-local makes the running local
// stack load the trust files a step wrote, and refuses a stack that runs
// on another PKI.
func TestCertsRolloverReloadLocal(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithPrivatePKI())
	other := filepath.Join(t.TempDir(), "pki")
	if _, _, code := runCLI("certs", "init", "--dir", other); code != exitOK {
		t.Fatal("init")
	}
	steps := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"other-pki", []string{"certs", "ca", "next", "--dir", other, "--reload-local", "--state-dir", s.StateDir}, exitUsage, "", "runs on the PKI"},
		{"next", []string{"certs", "ca", "next", "--dir", s.PKIDir, "--reload-local", "--state-dir", s.StateDir}, exitOK, "local stack in " + s.StateDir + " reloaded (mosquitto, nginx)", ""},
	}
	for _, st := range steps {
		stdout, stderr, code := runCLI(st.args...)
		if code != st.code || !strings.Contains(stdout, st.stdout) || !strings.Contains(stderr, st.stderr) {
			t.Fatalf("%s: exit %d (want %d)\nstdout: %s\nstderr: %s", st.name, code, st.code, stdout, stderr)
		}
	}
	// the broker now trusts G2: a G2 identity completes the handshake
	a, err := certs.Open(s.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := a.Generation(certs.GenNext)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g2.IssueClients(t.Context(), []string{"dev-g2"}); err != nil {
		t.Fatal(err)
	}
	c, err := certs.LoadClient(g2.Dir, "dev-g2")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.ClientTLS("observer")
	cfg.Certificates = []tls.Certificate{c}
	cfg.MaxVersion = tls.VersionTLS12
	conn, err := tls.Dial("tcp", s.Target.MQTTSAddr(), cfg)
	if err != nil {
		t.Fatalf("a G2 device after next --reload-local: %v", err)
	}
	conn.Close()
}

// TestCertsRetireNamesDroppedPasswords: a retire that locks identities out
// says that their passwords leave the broker's password files and how to
// load that, and their password files are gone from the PKI.
func TestCertsRetireNamesDroppedPasswords(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	for _, args := range [][]string{
		{"certs", "init", "--dir", dir},
		{"certs", "issue", "--dir", dir, "--count", "4"},
		{"certs", "ca", "next", "--dir", dir},
		{"certs", "issue", "--dir", dir, "--ca", "next", "--from", "1", "--count", "2"},
		{"certs", "ca", "promote", "--dir", dir},
		{"certs", "server", "renew", "--dir", dir},
		{"certs", "server", "switch", "--dir", dir},
	} {
		if stdout, stderr, code := runCLI(args...); code != exitOK {
			t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, code, stdout, stderr)
		}
	}
	stdout, stderr, code := runCLI("certs", "ca", "retire", "--dir", dir, "--force")
	if code != exitOK || !strings.Contains(stdout, "password files: dev-00003 dev-00004 leave the broker's password files") || !strings.Contains(stdout, "--reload-local") {
		t.Fatalf("retire --force: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	for id, want := range map[string]bool{"dev-00001": true, "dev-00003": false, "dev-00004": false} {
		_, err := os.Stat(filepath.Join(dir, "clients", id+".pass"))
		if got := err == nil; got != want {
			t.Errorf("%s.pass present: %v, want %v", id, got, want)
		}
	}
}
