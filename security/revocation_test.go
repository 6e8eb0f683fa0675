package security

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/host"
)

// TestEndSessions walks the revocation procedure of docs/SECURITY.md §4 on
// a real stack: EndSessions refuses an identity the broker still accepts;
// after revoke + CRL + reload the live session is still there (F10), and
// EndSessions ends it and leaves no usable takeover key behind.
func TestEndSessions(t *testing.T) {
	opts := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const id = "sec-end-a"
	a, err := certs.Open(opts.Target.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.IssueClients(ctx, []string{id}); err != nil {
		t.Fatal(err)
	}
	e, err := newEnv(opts)
	if err != nil {
		t.Fatal(err)
	}
	live, err := e.connect311(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer live.close()
	if _, err := EndSessions(ctx, opts.Target, id); err == nil || !strings.Contains(err.Error(), "still accepts") {
		t.Fatalf("EndSessions of an identity the broker accepts: %v, want a refusal naming the missing revocation", err)
	}
	if err := a.Revoke(id); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteCRL(certs.DefaultCRLNextUpdate); err != nil {
		t.Fatal(err)
	}
	if err := opts.Host.Reload(ctx, host.Mosquitto); err != nil {
		t.Fatal(err)
	}
	if err := live.publish(ctx, "devices/"+id+"/telemetry", 1, false, []byte("after reload")); err != nil {
		t.Fatalf("the live session should survive the reload on 2.0.11 (F10): %v", err)
	}
	if _, err := EndSessions(ctx, opts.Target, id); err != nil {
		t.Fatalf("EndSessions: %v", err)
	}
	select {
	case <-live.lost:
	case <-time.After(3 * time.Second):
		t.Fatal("the revoked identity's live session survived EndSessions")
	}
	if keys, _ := filepath.Glob(filepath.Join(opts.Target.PKIDir, "clients", "sec-evict-*.key")); len(keys) > 0 {
		t.Errorf("takeover keys left behind: %v", keys)
	}
}
