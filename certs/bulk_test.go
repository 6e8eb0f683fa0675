package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"testing"
	"time"
)

// TestBulkSignerMatchesX509 compares, byte for byte, the TBSCertificate
// the bulk signer encodes with the one crypto/x509 builds from the same
// inputs, across the encodings that vary: string types of the CN,
// UTCTime/GeneralizedTime, serial lengths, root and sub-CA issuers.
func TestBulkSignerMatchesX509(t *testing.T) {
	root := newPKI(t, InitOptions{Observers: []string{}, Backends: []string{}})
	sub, err := root.SubCA("ci")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	big1 := new(big.Int).Lsh(big.NewInt(1), 127) // high bit set: a leading 0x00 in DER
	tests := []struct {
		name   string
		ca     *Authority
		cn     string
		serial *big.Int
		nb, na time.Time
	}{
		{"printable", root, "dev-00001", big.NewInt(1), now, now.Add(time.Hour)},
		{"underscore-utf8", root, "Sensor_7", big1, now, now.Add(time.Hour)},
		{"max-len", root, string(bytes.Repeat([]byte("a"), 64)), big1, now, now.Add(24 * time.Hour)},
		{"generalized-time", root, "dev-2", big.NewInt(255), now, time.Date(2051, 1, 2, 3, 4, 5, 6, time.UTC)},
		{"sub-ca", sub, "ci-dev", big1, now.Add(-time.Minute), now.Add(time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.ca.newBulkSigner()
			if b == nil {
				t.Fatal("bulk signer refused an ECDSA P-256 CA")
			}
			key, err := newKey(ECDSAP256)
			if err != nil {
				t.Fatal(err)
			}
			pub := key.Public().(*ecdsa.PublicKey)
			want, err := x509.CreateCertificate(rand.Reader, clientTemplate(tc.serial, tc.cn, tc.nb, tc.na,
				[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}), tc.ca.Cert, pub, tc.ca.signer)
			if err != nil {
				t.Fatal(err)
			}
			wantCert, _ := x509.ParseCertificate(want)
			der, err := b.sign(tc.serial, tc.cn, tc.nb, tc.na, pub)
			if err != nil {
				t.Fatal(err)
			}
			got, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatalf("bulk certificate does not parse: %v", err)
			}
			if !bytes.Equal(got.RawTBSCertificate, wantCert.RawTBSCertificate) {
				t.Fatalf("TBSCertificate differs from crypto/x509's:\n got %x\nwant %x", got.RawTBSCertificate, wantCert.RawTBSCertificate)
			}
			if err := got.CheckSignatureFrom(tc.ca.Cert); err != nil {
				t.Fatalf("bulk signature does not verify: %v", err)
			}
		})
	}
}

func TestBulkSignerOnlyForECDSAP256(t *testing.T) {
	a := newPKI(t, InitOptions{Key: RSA2048, Observers: []string{}, Backends: []string{}})
	if a.newBulkSigner() != nil {
		t.Fatal("bulk signer used for an RSA CA")
	}
}
