package security

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/host/sshhost"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/internal/sshconn"
	"github.com/mqttstack/mqttstack/internal/sshconn/sshdtest"
	"github.com/mqttstack/mqttstack/internal/stacktest"
)

// TestHostSideOverSSH runs every check that reads the host with the host
// reached over a real sshd (host/sshhost, pinned host key) instead of
// infra/local's: the configuration, the loaded ACL, the CRL files, the
// listening sockets and the CRL reload all travel over SSH, as against a
// deployed target with an ssh section. None may be skipped, and each must
// pass on the rendered stack.
func TestHostSideOverSSH(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithOpsPort(), stacktest.WithPrivatePKI())
	srv := sshdtest.Start(t, sshdtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := sshconn.Dial(ctx, srv.Config())
	if err != nil {
		t.Fatalf("dial sshd: %v\n%s", err, srv.Log())
	}
	h := sshhost.New(c, srv.User, hostconfig.LocalPaths(s.StateDir, s.PKIDir))
	defer h.Close()
	var ids []string
	for _, c := range Catalog() {
		if c.Host && c.Tier == 1 {
			ids = append(ids, c.ID)
		}
	}
	// the checks that read the host for part of their verdict, and the
	// ones whose identities need the CRL reload over SSH
	ids = append(ids, "AUTH-01", "ACL-09", "WEB-04", "CRT-05", "WEB-08")
	checks, err := Select(Catalog(), 1, ids)
	if err != nil {
		t.Fatal(err)
	}
	rs := runLogged(t, Options{Target: s.Target, Host: h}, checks)
	for _, r := range rs {
		if r.Outcome.Status != Pass {
			t.Errorf("%s over ssh: %s, want PASS: %s", r.Check.ID, r.Outcome.Status, r.Outcome.Evidence)
		}
		if strings.Contains(r.Outcome.Evidence, "not run") || strings.Contains(r.Outcome.Evidence, "no host access") {
			t.Errorf("%s over ssh did not read the host: %s", r.Check.ID, r.Outcome.Evidence)
		}
		if r.Check.Host && !strings.Contains(r.Outcome.Evidence, "ssh ") {
			t.Errorf("%s: evidence does not name the ssh host it read: %s", r.Check.ID, r.Outcome.Evidence)
		}
	}
}

// TestHostSideWithoutHost: with no host access the host-side checks are
// SKIPPED, saying why, never passed.
func TestHostSideWithoutHost(t *testing.T) {
	opts := startStack(t)
	opts.Host = nil
	checks, err := Select(Catalog(), 1, []string{"NET-01", "NET-02", "OPS-02", "ACL-14", "CRT-09"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runLogged(t, opts, checks) {
		if r.Outcome.Status != Skipped || !strings.Contains(r.Outcome.Evidence, "needs host access") {
			t.Errorf("%s without a host: %s %q, want SKIPPED naming the missing host access", r.Check.ID, r.Outcome.Status, r.Outcome.Evidence)
		}
	}
}
