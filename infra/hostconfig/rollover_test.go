package hostconfig

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mqttstack/mqttstack/certs"
)

// vpsPKIFiles renders the TLS files a VPS receives from the PKI in dir.
func vpsPKIFiles(t *testing.T, s Stack, dir string) []File {
	t.Helper()
	p := certs.PathsOf(dir)
	read := func(f string) []byte {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return PKIFiles(s, read(p.CACert), read(p.CRL), read(p.ServerCert), read(p.ServerKey))
}

func changedPaths(before, after []File) []string {
	old := map[string][]byte{}
	for _, f := range before {
		old[f.Path] = f.Content
	}
	var out []string
	for _, f := range after {
		if !bytes.Equal(old[f.Path], f.Content) {
			out = append(out, f.Path)
		}
	}
	return out
}

// TestRolloverTrustFiles: each CA rollover step changes exactly the
// rendered trust files (the CA bundle and the CRL bundle) on a VPS, and a
// server switch exactly the certificate files, so a deploy preview names
// them; both daemons restart for a trust file.
func TestRolloverTrustFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	a, err := certs.Init(certs.InitOptions{Dir: dir, ServerName: "mqtt.example.com", Observers: []string{"observer"}, Backends: []string{"backend"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.IssueClients(context.Background(), []string{"dev-00001"}); err != nil {
		t.Fatal(err)
	}
	s := VPSStack("mqtt.example.com")
	p := s.Paths
	trust := fmt.Sprint([]string{p.CAFile, p.CRLFile})
	files := vpsPKIFiles(t, s, dir)
	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"next", func() error { _, err := a.Next(certs.NextOptions{CrossSign: true}); return err }, trust},
		{"revoke", func() error { return a.Revoke("dev-00001") }, fmt.Sprint([]string{p.CRLFile})},
		{"promote", func() error { _, err := a.Promote(0); return err }, fmt.Sprint([]string{p.CRLFile})},
		{"server renew (staged only)", func() error { _, err := a.RenewServer(certs.RenewOptions{}); return err }, "[]"},
		{"server switch (key kept)", func() error { _, err := a.SwitchServer(); return err }, fmt.Sprint([]string{p.ServerCert, p.NginxCert})},
		{"retire", func() error { _, err := a.Retire(true, 0); return err }, trust},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		next := vpsPKIFiles(t, s, dir)
		if got := fmt.Sprint(changedPaths(files, next)); got != st.want {
			t.Errorf("%s changed %s on the VPS, want %s", st.name, got, st.want)
		}
		files = next
	}
	for _, f := range []string{p.CAFile, p.CRLFile} {
		if flag := changeFlag(s, f); flag != "changed_nginx=1 changed_mosquitto" {
			t.Errorf("%s restarts %q, want both daemons", f, flag)
		}
	}
}
