package main

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/internal/mqttwire"
	"github.com/mqttstack/mqttstack/internal/stacktest"
)

// TestSecurityEndSessions: `security --end-sessions ID` refuses (exit 3)
// while the broker still accepts ID's certificate, and after revoke + CRL
// + reload ends ID's live session, which the reload alone left up (F10).
func TestSecurityEndSessions(t *testing.T) {
	const id = "dev-end"
	s := stacktest.Start(t, stacktest.WithPrivatePKI(), stacktest.WithDeviceIDs(id))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := tls.Dialer{Config: s.ClientTLS(id)}
	conn, err := d.DialContext(ctx, "tcp", s.Target.MQTTSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(mqttwire.Connect{ClientID: id, KeepAlive: 60}.Encode()); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if p, err := mqttwire.ReadPacket(conn, 16); err != nil || p.Type != 2 {
		t.Fatalf("live session: no CONNACK: %v", err)
	}

	_, errOut, code := runCLI("security", "--target", s.TargetPath, "--end-sessions", id)
	if code != exitCouldNotRun || !strings.Contains(errOut, "still accepts") {
		t.Fatalf("--end-sessions before the revocation: exit %d, want %d naming the missing revocation: %s", code, exitCouldNotRun, errOut)
	}
	a := s.Authority()
	if err := a.Revoke(id); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteCRL(certs.DefaultCRLNextUpdate); err != nil {
		t.Fatal(err)
	}
	s.Reload()
	out, errOut, code := runCLI("security", "--target", s.TargetPath, "--end-sessions", id)
	if code != exitOK || !strings.Contains(out, "live sessions ended") {
		t.Fatalf("--end-sessions after revoke + reload: exit %d\n%s%s", code, out, errOut)
	}
	// the broker closed the live session: the read ends with EOF, not a timeout
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := mqttwire.ReadPacket(conn, 16); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("the revoked identity's live session is still open: %v", err)
	}
}
