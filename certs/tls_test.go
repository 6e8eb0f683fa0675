package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// negativePKI is a root with a valid device (dev-1) and a revoked one
// (dev-2), plus IssueNegative's CI sub-CA, foreign and self-signed
// identities.
type negativePKI struct {
	root *Authority
	set  NegativeSet
	now  time.Time
}

func newNegativePKI(t *testing.T) negativePKI {
	t.Helper()
	clock := fixedClock()
	root := newPKI(t, InitOptions{Now: clock, Observers: []string{}, Backends: []string{}})
	if _, err := root.IssueClients(context.Background(), []string{"dev-1", "dev-2"}); err != nil {
		t.Fatal(err)
	}
	if err := root.Revoke("dev-2"); err != nil {
		t.Fatal(err)
	}
	set, err := root.IssueNegative("ci", "dev-1")
	if err != nil {
		t.Fatal(err)
	}
	return negativePKI{root: root, set: set, now: clock()}
}

// TestTLSHandshake runs real TLS 1.2 and 1.3 handshakes over loopback: the
// server presents server.crt and requires a client certificate from the
// CA, checked against ca.crl as Mosquitto's crlfile would be.
func TestTLSHandshake(t *testing.T) {
	n := newNegativePKI(t)
	p := PathsOf(n.root.Dir)
	pool, err := LoadCAPool(p.CACert)
	if err != nil {
		t.Fatal(err)
	}
	crls, err := LoadCRLs(p.CRL)
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return n.now }

	tests := []struct {
		name    string
		dir, id string
		want    string // server-side error substring; "" = accepted with CN id
	}{
		{"valid", n.root.Dir, "dev-1", ""},
		{"revoked", n.root.Dir, "dev-2", "certificate revoked"},
		{"subca-valid", n.set.SubCADir, n.set.Valid, ""},
		{"subca-revoked", n.set.SubCADir, n.set.Revoked, "certificate revoked"},
		{"foreign-ca", n.set.ForeignDir, "dev-1", "unknown authority"},
		{"self-signed", n.set.SelfSignedDir, "dev-1", "unknown authority"},
		{"expired", n.set.SubCADir, n.set.Expired, "is after"},
		{"not-yet-valid", n.set.SubCADir, n.set.NotYetValid, "is before"},
		{"serverauth-only", n.set.SubCADir, n.set.ServerAuthOnly, "incompatible key usage"},
	}
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, tc := range tests {
			t.Run(tls.VersionName(version)+"/"+tc.name, func(t *testing.T) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				srvCfg := &tls.Config{
					Certificates: []tls.Certificate{serverCert},
					ClientAuth:   tls.RequireAndVerifyClientCert,
					ClientCAs:    pool,
					MinVersion:   version, MaxVersion: version,
					Time: clock,
					VerifyPeerCertificate: func(_ [][]byte, chains [][]*x509.Certificate) error {
						return CheckRevocation(crls, chains[0])
					},
				}
				got := make(chan error, 1)
				go func() {
					c, err := ln.Accept()
					if err != nil {
						got <- err
						return
					}
					defer c.Close()
					tc := tls.Server(c, srvCfg)
					c.SetDeadline(time.Now().Add(10 * time.Second))
					if err := tc.Handshake(); err != nil {
						got <- err
						return
					}
					cn := tc.ConnectionState().PeerCertificates[0].Subject.CommonName
					if _, err := io.WriteString(tc, cn+"\n"); err != nil {
						got <- err
						return
					}
					got <- nil
				}()

				cert, err := LoadClient(tc.dir, tc.id)
				if err != nil {
					t.Fatal(err)
				}
				conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
					RootCAs: pool, ServerName: DefaultServerName,
					// Certificates would let crypto/tls withhold a certificate
					// whose issuer the server did not list, so a foreign
					// identity would never be presented; boards send theirs
					// regardless, and so does this.
					GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
					MinVersion:           version, MaxVersion: version, Time: clock,
				})
				var line string
				if err == nil {
					conn.SetDeadline(time.Now().Add(10 * time.Second))
					buf := make([]byte, 128)
					k, rerr := conn.Read(buf)
					line, err = strings.TrimSpace(string(buf[:k])), rerr
					conn.Close()
				}
				serr := <-got
				if tc.want == "" {
					if serr != nil || err != nil {
						t.Fatalf("server: %v; client: %v; want accepted", serr, err)
					}
					if line != tc.id {
						t.Fatalf("server saw CN %q, want %q", line, tc.id)
					}
					return
				}
				if serr == nil || !strings.Contains(serr.Error(), tc.want) {
					t.Fatalf("server error %v, want %q", serr, tc.want)
				}
				if err == nil {
					t.Fatal("client completed a session the server refused")
				}
				if tc.want == "certificate revoked" && !errors.Is(serr, ErrRevoked) {
					t.Errorf("revocation error %v does not wrap ErrRevoked", serr)
				}
			})
		}
	}
}

// TestServerVerifiesByName checks that a client pinning the CA accepts the
// broker only under one of its names.
func TestServerVerifiesByName(t *testing.T) {
	a := newPKI(t, InitOptions{Observers: []string{}, Backends: []string{}})
	p := PathsOf(a.Dir)
	pool, _ := LoadCAPool(p.CACert)
	cert, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	for name, ok := range map[string]bool{DefaultServerName: true, "localhost": true, "127.0.0.1": true, "evil.example": false} {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name})
		if err == nil {
			c.Close()
		}
		if (err == nil) != ok {
			t.Errorf("dial as %s: err=%v, want ok=%v", name, err, ok)
		}
	}
}
