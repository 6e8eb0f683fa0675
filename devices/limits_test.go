package devices

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"testing"
	"time"
)

// testPKI is a CA and a server certificate for "broker.test", the CA on
// caCurve (signing with the matching hash) and the server certificate
// padded with pad bytes of a private extension (a long chain).
func testPKI(t *testing.T, caCurve elliptic.Curve, pad int) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(caCurve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker.test"}, DNSNames: []string{"broker.test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if pad > 0 {
		leaf.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1}, Value: make([]byte, pad)}}
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return pool, tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}
}

// goBroker is a crypto/tls server on loopback. Unlike OpenSSL it ignores
// max_fragment_length and sends whole 16 KiB records: the server the
// boards' record limits are about (Mosquitto cannot be made to do that).
func goBroker(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for range 64 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if err := c.(*tls.Conn).Handshake(); err == nil {
					c.Read(make([]byte, 1))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestBoardLimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		profile string
		caCurve elliptic.Curve
		pad     int
		want    Reason // "" = the handshake works
	}{
		{"esp8266 takes 16 KiB records", "esp8266-bearssl", elliptic.P256(), 9000, ""},
		{"SAMD buffer under an MFLN-ignoring server", "arduino-bearssl-eccx08", elliptic.P256(), 9000, ReasonRecordTooLarge},
		{"SAMD with a small chain", "arduino-bearssl-eccx08", elliptic.P256(), 0, ""},
		{"ECCX08 cannot verify a P-384 CA", "arduino-bearssl-eccx08", elliptic.P384(), 0, ReasonSignature},
		{"mbedTLS holds the chain in 16 KiB", "esp32-arduino-3", elliptic.P256(), 20000, ReasonChainTooLarge},
		{"mbedTLS with a normal chain", "esp32-arduino-3", elliptic.P256(), 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, cert := testPKI(t, tc.caCurve, tc.pad)
			addr := goBroker(t, cert)
			p, err := Lookup(tc.profile)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, st, err := Handshake(ctx, raw, p, Board{ServerName: "broker.test", RootCAs: pool})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				c.Close()
				if p.MFLN > 0 && st.ServerMFLN != 0 {
					t.Errorf("Go's server agreed to MFLN %d; it is expected to ignore it", st.ServerMFLN)
				}
				return
			}
			r, ok := err.(*Refusal)
			if !ok {
				t.Fatalf("want refusal %q, got %v", tc.want, err)
			}
			if r.Reason != tc.want || r.By != "board" {
				t.Fatalf("refusal %q by %s (%s), want %q by the board", r.Reason, r.By, r.Detail, tc.want)
			}
			t.Logf("%s: %s", r.Reason, r.Detail)
		})
	}
}

// TestOwnChainTooLarge: an mbedTLS board whose own certificate chain does
// not fit its output buffer fails when the broker asks for it.
func TestOwnChainTooLarge(t *testing.T) {
	pool, srv := testPKI(t, elliptic.P256(), 0)
	_, big := testPKI(t, elliptic.P256(), 3000) // a 3 KB client chain
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srv}, ClientAuth: tls.RequireAnyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	p, _ := Lookup("pico-w-mbedtls-3.6") // 2048-byte output buffer
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, st, err := Handshake(context.Background(), raw, p, Board{ServerName: "broker.test", RootCAs: pool, Cert: &big})
	r, ok := err.(*Refusal)
	if !ok || r.Reason != ReasonClientChainTooLarge {
		t.Fatalf("want %q, got %v", ReasonClientChainTooLarge, err)
	}
	if st.ClientChain <= p.HandshakeOut {
		t.Errorf("client chain %d bytes reported, buffer %d", st.ClientChain, p.HandshakeOut)
	}
}
