package rollovertest

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/infra/broker"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
)

// TestRolloverDeployPlan: on a deployed stack every rollover step reaches
// the VPS as a change of the broker's host plan (what `mqttstack deploy
// preview` diffs file by file). Each step changes exactly the files named
// here, and the trust files make both daemons reload.
func TestRolloverDeployPlan(t *testing.T) {
	const name = "mqtt.example.com"
	dir := filepath.Join(t.TempDir(), "pki")
	a, err := certs.Init(certs.InitOptions{Dir: dir, ServerName: name})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	devs := certs.DeviceIDs("dev-", 1, 3)
	if _, err := a.IssueClients(ctx, devs); err != nil {
		t.Fatal(err)
	}
	s := hostconfig.VPSStack(name)
	p := s.Paths
	plan := func() broker.HostPlan {
		t.Helper()
		pki, err := broker.LoadPKI(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		hp, err := broker.Plan(broker.Args{Stack: s, PKI: pki})
		if err != nil {
			t.Fatal(err)
		}
		return hp
	}
	trust := []string{p.CAFile, p.CRLFile}
	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"ca next --cross-sign", func() error { _, err := a.Next(certs.NextOptions{CrossSign: true}); return err }, trust},
		{"issue --ca next (wave)", func() error {
			g, err := a.Generation(certs.GenNext)
			if err == nil {
				_, err = g.IssueClients(ctx, devs[:2])
			}
			return err
		}, nil},
		// revoked in both generations: its password hash leaves too
		{"revoke", func() error { return a.Revoke(devs[0]) }, []string{p.CRLFile, p.PasswordFile}},
		{"ca promote", func() error { _, err := a.Promote(0); return err }, []string{p.CRLFile}},
		{"server renew (staged)", func() error { _, err := a.RenewServer(certs.RenewOptions{}); return err }, nil},
		{"server switch (key kept)", func() error { _, err := a.SwitchServer(); return err }, []string{p.ServerCert, p.NginxCert}},
		// dev-00003 is locked out: its password hash leaves with its CA
		{"ca retire --force", func() error { _, err := a.Retire(true, 0); return err }, append([]string{p.CAFile, p.CRLFile}, p.PasswordFile)},
	}
	before := plan()
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		after := plan()
		var changed []string
		old := map[string][]byte{}
		for _, f := range before.Files {
			old[f.Path] = f.Content
		}
		for _, f := range after.Files {
			if !bytes.Equal(old[f.Path], f.Content) {
				changed = append(changed, f.Path)
			}
			if slices.Contains(trust, f.Path) && fmt.Sprint(f.Daemons) != "[mosquitto nginx]" {
				t.Errorf("%s reloads %v, want mosquitto and nginx", f.Path, f.Daemons)
			}
		}
		slices.Sort(changed)
		want := slices.Clone(st.want)
		slices.Sort(want)
		if fmt.Sprint(changed) != fmt.Sprint(want) {
			t.Errorf("%s: the deploy plan changes %v, want %v", st.name, changed, want)
		}
		before = after
	}
}
