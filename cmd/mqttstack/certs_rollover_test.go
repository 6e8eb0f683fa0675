package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttstack/mqttstack/certs"
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
