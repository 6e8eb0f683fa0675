package certs

import (
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mqttstack/mqttstack/internal/atomicfile"
)

// Files of the legacy server certificate: an RSA-2048 server certificate
// for a second broker listener that admits boards without ECDSA (RSA-only
// modems, BearSSL "less secure": see docs/DEVICES.md and
// hostconfig.LegacyTLS). The main listener keeps server.crt.
const (
	LegacyServerCertFile = "server-rsa.crt"
	LegacyServerKeyFile  = "server-rsa.key"
)

// IssueLegacyServer writes server-rsa.crt and server-rsa.key (0600) in the
// PKI directory: the names of server.crt, an RSA-2048 key usable for RSA
// key exchange (keyEncipherment), signed by this CA. validity 0 is
// DefaultServerValidity. It returns the two paths.
func (a *Authority) IssueLegacyServer(validity time.Duration) (certPath, keyPath string, err error) {
	if validity <= 0 {
		validity = DefaultServerValidity
	}
	data, err := os.ReadFile(filepath.Join(a.Dir, serverCertFile))
	if err != nil {
		return "", "", fmt.Errorf("legacy server certificate: read the names of %s: %w", serverCertFile, err)
	}
	main, err := parseCertPEM(data)
	if err != nil {
		return "", "", fmt.Errorf("legacy server certificate: %s: %w", serverCertFile, err)
	}
	key, err := newKey(RSA2048)
	if err != nil {
		return "", "", fmt.Errorf("legacy server key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return "", "", err
	}
	now := a.now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      main.Subject,
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(validity),
		// TLS 1.2 RSA key exchange encrypts the premaster secret to this key.
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    main.DNSNames,
		IPAddresses: main.IPAddresses,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, key.Public(), a.signer)
	if err != nil {
		return "", "", fmt.Errorf("sign legacy server certificate: %w", err)
	}
	certPath = filepath.Join(a.Dir, LegacyServerCertFile)
	keyPath = filepath.Join(a.Dir, LegacyServerKeyFile)
	if err := writeKey(keyPath, key); err != nil {
		return "", "", err
	}
	if err := atomicfile.Write(certPath, pemCert(der), 0o644); err != nil {
		return "", "", fmt.Errorf("write %s: %w", certPath, err)
	}
	return certPath, keyPath, nil
}
