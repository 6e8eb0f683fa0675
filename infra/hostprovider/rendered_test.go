package hostprovider

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/infra/broker"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
)

// TestValidatesRenderedVPSConfig stages exactly what the Broker component
// ships to a VPS (infra/broker.Plan over infra/hostconfig, a real PKI) and
// runs the provider's validation on it: the throwaway Mosquitto must accept
// the production mosquitto.conf (mTLS listener, CRL, 18 WebSocket listeners,
// per-identity password files) and nginx -t the production nginx.conf.
// Nothing binds the production ports: the check moves every listener to a
// free loopback port and nginx -t binds nothing. A broken server
// certificate must then be refused with Mosquitto's own message.
func TestValidatesRenderedVPSConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sshd and throwaway daemons in a mount namespace")
	}
	const name = "mqtt.example.test"
	pkiDir := filepath.Join(t.TempDir(), "pki")
	if _, err := certs.Init(certs.InitOptions{Dir: pkiDir, ServerName: name}); err != nil {
		t.Fatal(err)
	}
	pki, err := broker.LoadPKI(pkiDir, name)
	if err != nil {
		t.Fatal(err)
	}
	stack := hostconfig.VPSStack(name)
	stack.AdminCIDR = "203.0.113.7/32"
	bp, err := broker.Plan(broker.Args{Stack: stack, PKI: pki})
	if err != nil {
		t.Fatal(err)
	}
	// The test host has temporary /etc/mosquitto, /etc/nginx,
	// /etc/systemd/system and /var/www; files elsewhere (/etc/nftables.conf)
	// are left out so that nothing is staged on this machine's /etc.
	mounted := []string{"/etc/mosquitto/", "/etc/nginx/", "/etc/systemd/system/", "/var/www/"}
	var plan Plan
	plan.MosquittoConfig, plan.NginxConfig = bp.MosquittoConfig, bp.NginxConfig
	for _, f := range bp.Files {
		keep := false
		for _, m := range mounted {
			keep = keep || strings.HasPrefix(f.Path, m)
		}
		if !keep {
			continue
		}
		owner := f.Owner
		if owner == "" {
			owner = "root:root"
		}
		plan.Files = append(plan.Files, FileSpec{Path: f.Path, Content: f.Content, Mode: fmt.Sprintf("%04o", f.Mode.Perm()), Owner: owner, Daemons: f.Daemons, Secret: f.Secret})
	}
	if len(plan.Files) < 20 {
		t.Fatalf("only %d rendered files under the test mounts", len(plan.Files))
	}

	h := startHost(t)
	hst := &host{r: h.c, log: func(string) {}}
	validate := func(p Plan) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		defer func() { _, _ = hst.run(ctx, "finish", nil, strings.NewReader(pathList(p.Files))) }()
		for _, f := range p.Files {
			if _, err := hst.run(ctx, "stage", []string{f.Path, f.Mode, f.Owner, f.Sum()}, strings.NewReader(string(f.Content))); err != nil {
				return err
			}
		}
		return hst.validate(ctx, p, p.Files)
	}
	// The test host shares this machine's network: a local stack the user
	// left up (make demo does) may listen on 8883 already. The check must
	// add no listener there.
	listening := func() string { return h.sh(t, "ss -Hltn 2>/dev/null | grep -c ':8883 ' || true") }
	before := listening()
	if err := validate(plan); err != nil {
		t.Fatalf("the shipped configuration does not validate: %v", err)
	}
	if after := listening(); after != before {
		t.Errorf("listeners on 8883: %s before the check, %s after", before, after)
	}

	broken := plan
	broken.Files = append([]FileSpec(nil), plan.Files...)
	for i, f := range broken.Files {
		if f.Path == stack.Paths.ServerCert {
			broken.Files[i].Content = []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
		}
	}
	err = validate(broken)
	var ae *ApplyError
	if !errors.As(err, &ae) || ae.Step != "validate mosquitto" || !strings.Contains(ae.Msg, "Unable to load server certificate") {
		t.Fatalf("a broken server certificate: want Mosquitto's refusal, got %v", err)
	}
	t.Logf("refused: %v", err)
}
