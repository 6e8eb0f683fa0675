package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/target"
)

// stackOutputJSON is what `pulumi stack output --json --show-secrets` prints
// for the program in infra/ (see exportTarget there), for a PKI in pkiDir.
func stackOutputJSON(t *testing.T, pkiDir string) []byte {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(pkiDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(map[string]any{
		"backend":    "backend",
		"caCertPem":  string(ca),
		"configHash": "5f1e9a0c6d4b2e8f7a3c1d0e9b8a7f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6",
		"host":       "203.0.113.10",
		"httpsUrl":   "https://mqtt.example.com/",
		"mqttsPort":  8883,
		"name":       "prod",
		"observer":   "observer",
		"pkiDir":     pkiDir,
		"provider":   "hcloud",
		"serverName": "mqtt.example.com",
		"wssUrl":     "wss://mqtt.example.com/mqtt",
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newTestPKI(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	if _, err := certs.Init(certs.InitOptions{Dir: dir, ServerName: "mqtt.example.com", Observers: []string{"observer"}, Backends: []string{"backend"}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTargetFromStack(t *testing.T) {
	pki := newTestPKI(t)
	work := t.TempDir()
	in := filepath.Join(work, "outputs.json")
	if err := os.WriteFile(in, stackOutputJSON(t, pki), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(work, "targets", "prod.json")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"target", "from-stack", "--stack-output", in, "-o", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	tg, err := target.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	want := target.Target{
		Name: "prod", Host: "203.0.113.10", ServerName: "mqtt.example.com", MQTTSPort: 8883,
		WSSURL: "wss://mqtt.example.com/mqtt", HTTPSURL: "https://mqtt.example.com/",
		CACert: filepath.Join(work, "targets", "prod-ca.crt"), PKIDir: pki,
		Observer: "observer", Backend: "backend",
	}
	if *tg != want {
		t.Errorf("target = %+v\nwant     %+v", *tg, want)
	}
	ca, _ := os.ReadFile(tg.CACert)
	local, _ := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if !bytes.Equal(ca, local) {
		t.Errorf("%s is not the stack's CA certificate", tg.CACert)
	}
	if _, err := certs.LoadCAPool(tg.CACert); err != nil {
		t.Errorf("written CA does not load: %v", err)
	}
	// The target names its CA relatively, so the pair can be moved together.
	raw, _ := os.ReadFile(out)
	if !strings.Contains(string(raw), `"ca_cert": "prod-ca.crt"`) {
		t.Errorf("ca_cert is not relative to the target:\n%s", raw)
	}
}

func TestTargetFromStackStdinAndPKIOverride(t *testing.T) {
	pki := newTestPKI(t)
	out := filepath.Join(t.TempDir(), "t.json")
	// The stack was deployed from another checkout: its pkiDir does not
	// exist here, --pki-dir points at the local copy.
	raw := bytes.Replace(stackOutputJSON(t, pki), []byte(pki), []byte("/elsewhere/pki"), 1)
	if _, stderr, code := runIn(bytes.NewReader(raw), "target", "from-stack", "--pki-dir", pki, "-o", out); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	tg, err := target.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if tg.PKIDir != pki {
		t.Errorf("pki_dir = %s, want the override %s", tg.PKIDir, pki)
	}
}

func TestTargetFromStackRefuses(t *testing.T) {
	pki := newTestPKI(t)
	other := newTestPKI(t)
	good := stackOutputJSON(t, pki)
	tests := []struct {
		name  string
		input []byte
		args  []string
		want  []string
	}{
		{"not json", []byte("Current stack outputs (3):"), nil, []string{"not the JSON of `pulumi stack output --json --show-secrets`"}},
		{"hidden secrets", bytes.Replace(good, []byte(`"host": "203.0.113.10"`), []byte(`"host": "[secret]"`), 1), nil, []string{"output host is hidden", "--show-secrets"}},
		{"another CA", good, []string{"--pki-dir", other}, []string{"is not the CA the stack trusts"}},
		{"missing fields", []byte(`{"name":"x"}`), []string{"--pki-dir", pki}, []string{"caCertPem: missing", "host: required", "mqtts_port: 0 is not a port"}},
		{"no -o", good, []string{"-o", ""}, []string{"--out is required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "t.json")
			args := append([]string{"target", "from-stack", "-o", out}, tc.args...)
			_, stderr, code := runIn(bytes.NewReader(tc.input), args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d (%s)", code, exitUsage, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %s does not contain %q", stderr, w)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a target was written despite the error")
			}
		})
	}
}
