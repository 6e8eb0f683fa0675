// Package certs is the private device PKI of an mqttstack: a root CA, the
// broker's server certificate, one client certificate per device, observer
// and backend identity, a CRL, expiry checks and the exports a firmware
// developer needs. It uses only the standard library.
//
// Layout on disk (see docs/CONTRACTS.md):
//
//	<pki>/ca.crt  ca.key(0600)  ca.crl  revoked.json
//	<pki>/server.crt  server.key(0600)
//	<pki>/clients/<id>.crt  <id>.key(0600)  <id>.pass(0600)
//	<pki>/<subca>/ca.crt ca.key ca.crl revoked.json clients/...   (CI sub-CAs)
//
// The certificate CN of a client is its id: Mosquitto uses it verbatim as the
// MQTT username and as the ACL key (%u), so ids follow a strict policy
// (ValidateID). Every file is written atomically (temporary file + rename),
// private keys and passwords with mode 0600.
package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mqttstack/mqttstack/internal/atomicfile"
)

// KeyType selects the key algorithm of every key in a PKI.
type KeyType string

const (
	// ECDSAP256 is the default: small keys, fast handshakes, supported by
	// mbedTLS/wolfSSL on every current board.
	ECDSAP256 KeyType = "ecdsa"
	// RSA2048 is for boards whose TLS stack has no ECDSA.
	RSA2048 KeyType = "rsa2048"
)

// Default validity periods and names.
const (
	DefaultCAValidity     = 10 * 365 * 24 * time.Hour
	DefaultServerValidity = 825 * 24 * time.Hour
	// DefaultClientValidity is three years: long enough that a fleet does
	// not need rotation for a release cycle, short enough that a leaked
	// device key does not stay useful for the CA's lifetime.
	DefaultClientValidity = 3 * 365 * 24 * time.Hour
	DefaultCRLNextUpdate  = 30 * 24 * time.Hour
	DefaultServerName     = "mqtt.local.test"
	DefaultCAName         = "mqttstack device CA"
	// backdate tolerates clock skew between the issuing machine and devices.
	backdate = 5 * time.Minute
)

// File names inside a PKI directory.
const (
	caCertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	crlFile        = "ca.crl"
	revokedFile    = "revoked.json"
	serverCertFile = "server.crt"
	serverKeyFile  = "server.key"
	clientsDir     = "clients"
)

// InitOptions configures Init. Zero values select the defaults.
type InitOptions struct {
	Dir        string   // PKI directory, created 0700 (required)
	Key        KeyType  // ECDSAP256 (default) or RSA2048
	CAName     string   // CA common name (default DefaultCAName)
	ServerName string   // broker name, first SAN (default DefaultServerName)
	DNSNames   []string // extra DNS SANs
	IPs        []net.IP // IP SANs
	// Observers and Backends are issued at init. nil selects
	// DefaultObservers()/DefaultBackends(); an empty non-nil slice issues none.
	Observers []string
	Backends  []string
	// Force replaces an existing PKI in Dir (its CA, server, clients and
	// sub-CAs are deleted first: certificates of the old CA would no longer
	// verify).
	Force bool
	Now   func() time.Time // clock (default time.Now)

	CAValidity     time.Duration // default DefaultCAValidity
	ServerValidity time.Duration // default DefaultServerValidity
	ClientValidity time.Duration // default DefaultClientValidity
	CRLNextUpdate  time.Duration // default DefaultCRLNextUpdate
}

// Authority is an opened CA: the root of a PKI directory or a CI sub-CA
// below it. Its methods may be called from several goroutines, but two
// calls must not issue the same id at once, and nothing locks a PKI
// directory against another process (the CLI and `local up` run one at a
// time).
type Authority struct {
	// Dir is the directory holding ca.crt, ca.key and clients/.
	Dir string
	// Cert is the CA certificate.
	Cert *x509.Certificate
	// Key is the key algorithm of the CA and of everything it issues.
	Key KeyType
	// Now is the clock for validity periods and the CRL (default time.Now).
	Now func() time.Time
	// ClientValidity is the lifetime of client certificates issued without
	// an explicit NotAfter (default DefaultClientValidity).
	ClientValidity time.Duration

	signer  crypto.Signer
	certPEM []byte
	// parent is the root when this is a sub-CA; nil for a root.
	parent *Authority
	// chainPEM is appended to every issued client certificate so that a
	// sub-CA's clients present leaf + intermediate; empty for a root.
	chainPEM []byte
	// home is the PKI's active root when this authority is another CA
	// generation of a rollover (<pki>/next or <pki>/previous); nil for the
	// active root and its sub-CAs.
	home *Authority
	// passDirs are other generations' clients/ directories: a re-issue
	// under a new generation keeps the identity's password from there.
	passDirs []string
	// mu serialises revoked.json and CRL writes.
	mu sync.Mutex
}

// DefaultObservers returns the read-only identities issued at init:
// observer, observer-1 … observer-8 (one per concurrent watcher, because
// use_username_as_clientid makes two connections of one identity kick each
// other).
func DefaultObservers() []string { return numbered("observer", 8) }

// DefaultBackends returns the backend identities issued at init: backend,
// backend-1 … backend-8.
func DefaultBackends() []string { return numbered("backend", 8) }

func numbered(base string, n int) []string {
	out := []string{base}
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("%s-%d", base, i))
	}
	return out
}

// Init creates a new PKI in opts.Dir: root CA, broker server certificate,
// observer and backend identities and an empty CRL. It refuses to overwrite
// an existing CA unless opts.Force.
func Init(opts InitOptions) (*Authority, error) {
	if opts.Dir == "" {
		return nil, errors.New("certs init: no PKI directory given (set --dir)")
	}
	if opts.Key == "" {
		opts.Key = ECDSAP256
	}
	if opts.Key != ECDSAP256 && opts.Key != RSA2048 {
		return nil, fmt.Errorf("certs init: key type %q not supported (use %q or %q)", opts.Key, ECDSAP256, RSA2048)
	}
	if opts.CAName == "" {
		opts.CAName = DefaultCAName
	}
	if opts.ServerName == "" {
		opts.ServerName = DefaultServerName
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CAValidity <= 0 {
		opts.CAValidity = DefaultCAValidity
	}
	if opts.ServerValidity <= 0 {
		opts.ServerValidity = DefaultServerValidity
	}
	if opts.ClientValidity <= 0 {
		opts.ClientValidity = DefaultClientValidity
	}
	if opts.CRLNextUpdate <= 0 {
		opts.CRLNextUpdate = DefaultCRLNextUpdate
	}
	if opts.Observers == nil {
		opts.Observers = DefaultObservers()
	}
	if opts.Backends == nil {
		opts.Backends = DefaultBackends()
	}
	ids := append(append([]string{}, opts.Observers...), opts.Backends...)
	for _, id := range ids {
		if err := ValidateID(id); err != nil {
			return nil, fmt.Errorf("certs init: observer/backend %w", err)
		}
	}

	caPath := filepath.Join(opts.Dir, caCertFile)
	if _, err := os.Stat(caPath); err == nil {
		if !opts.Force {
			return nil, fmt.Errorf("certs init: %s already holds a CA (%s); refusing to overwrite it, every issued certificate would stop verifying (use --force to replace the whole PKI)", opts.Dir, caPath)
		}
		if err := removePKI(opts.Dir); err != nil {
			return nil, fmt.Errorf("certs init --force: clear %s: %w", opts.Dir, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, clientsDir), 0o700); err != nil {
		return nil, fmt.Errorf("certs init: create %s: %w", opts.Dir, err)
	}
	// MkdirAll leaves an existing directory's mode alone; the PKI holds
	// private keys, so make it private either way.
	if err := os.Chmod(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs init: chmod %s: %w", opts.Dir, err)
	}

	now := opts.Now()
	key, err := newKey(opts.Key)
	if err != nil {
		return nil, fmt.Errorf("certs init: CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("certs init: %w", err)
	}
	tmpl := caTemplate(serial, pkix.Name{CommonName: opts.CAName, Organization: []string{"mqttstack"}}, now, opts.CAValidity)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("certs init: sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs init: parse CA: %w", err)
	}
	a := &Authority{
		Dir: opts.Dir, Cert: cert, Key: opts.Key, Now: opts.Now,
		ClientValidity: opts.ClientValidity, signer: key, certPEM: pemCert(der),
	}
	// The key goes first: a ca.crt without its key would make the next Init
	// refuse and Open fail with a confusing error.
	if err := writeKey(filepath.Join(opts.Dir, caKeyFile), key); err != nil {
		return nil, fmt.Errorf("certs init: %w", err)
	}
	if err := writeRevoked(a, revokedList{}); err != nil {
		return nil, fmt.Errorf("certs init: %w", err)
	}
	if err := atomicfile.Write(caPath, a.certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("certs init: write %s: %w", caPath, err)
	}
	if err := a.issueServer(opts.ServerName, opts.DNSNames, opts.IPs, opts.ServerValidity); err != nil {
		return nil, fmt.Errorf("certs init: %w", err)
	}
	if err := a.WriteCRL(opts.CRLNextUpdate); err != nil {
		return nil, fmt.Errorf("certs init: %w", err)
	}
	p := PathsOf(opts.Dir)
	if err := syncPaths(p.CAKey, p.CACert, p.ServerKey, p.ServerCert, p.CRL, filepath.Join(opts.Dir, revokedFile)); err != nil {
		return nil, fmt.Errorf("certs init: %w", err)
	}
	if _, err := a.issueMany(context.Background(), ids, ClientOptions{}); err != nil {
		return nil, fmt.Errorf("certs init: %w", err)
	}
	return a, nil
}

// removePKI deletes what Init creates, and CI sub-CA directories, but
// leaves anything else in dir alone.
func removePKI(dir string) error {
	for _, f := range []string{caCertFile, caKeyFile, crlFile, revokedFile, serverCertFile, serverKeyFile, crossCertFile, promoteJournalFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	for _, d := range []string{clientsDir, nextDir, previousDir, retiredDir, pendingServerDir} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			return err
		}
	}
	subs, err := subCADirs(dir)
	if err != nil {
		return err
	}
	for _, s := range subs {
		if err := os.RemoveAll(s); err != nil {
			return err
		}
	}
	return nil
}

// Open opens an existing PKI directory (a root or a CI sub-CA directory).
// A CA promote that was interrupted (the process died between two
// renames) is undone first, from its journal.
func Open(dir string) (*Authority, error) {
	if _, err := recoverPromote(dir); err != nil {
		return nil, fmt.Errorf("open PKI: %w", err)
	}
	return openAuthority(dir, nil)
}

func openAuthority(dir string, parent *Authority) (*Authority, error) {
	certPath := filepath.Join(dir, caCertFile)
	keyPath := filepath.Join(dir, caKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open PKI: %s does not exist (create the PKI with `mqttstack certs init --dir %s`)", certPath, dir)
		}
		return nil, fmt.Errorf("open PKI: read %s: %w (check the path and that this user may read it)", certPath, err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("open PKI: read %s: %w (the CA key is needed to issue and revoke; check that this user may read it, mode 0600)", keyPath, err)
	}
	signer, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("open PKI: %s: %w (restore the CA key from a backup)", keyPath, err)
	}
	// ca.crt is the trust bundle during a CA rollover (every trusted
	// generation, oldest first); this CA is the certificate of ca.key.
	certs, err := parseCertsPEM(certPEM)
	if err != nil || len(certs) == 0 {
		if err == nil {
			err = errors.New("no PEM CERTIFICATE block")
		}
		return nil, fmt.Errorf("open PKI: %s: %w (the file is damaged; restore it from a backup or recreate the PKI with `mqttstack certs init --force`)", certPath, err)
	}
	var cert *x509.Certificate
	for _, c := range certs {
		if publicKeysEqual(signer.Public(), c.PublicKey) {
			cert = c
			break
		}
	}
	if cert == nil {
		return nil, fmt.Errorf("open PKI: %s does not belong to %s (restore the matching pair)", keyPath, certPath)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("open PKI: %s is not a CA certificate (point --dir at the PKI directory)", certPath)
	}
	certPEM = pemCert(cert.Raw)
	kt := ECDSAP256
	if _, ok := signer.(*rsa.PrivateKey); ok {
		kt = RSA2048
	}
	a := &Authority{
		Dir: dir, Cert: cert, Key: kt, Now: time.Now,
		ClientValidity: DefaultClientValidity, signer: signer, certPEM: certPEM,
	}
	if parent == nil && !bytes.Equal(cert.RawIssuer, cert.RawSubject) {
		// A sub-CA opened by its own path: its parent is the directory above.
		p, perr := Open(filepath.Dir(dir))
		if perr != nil {
			return nil, fmt.Errorf("open PKI: %s is a sub-CA, but its root above could not be opened: %w", dir, perr)
		}
		parent = p
	}
	if parent != nil {
		if err := cert.CheckSignatureFrom(parent.Cert); err != nil {
			return nil, fmt.Errorf("open PKI: sub-CA %s is not signed by %s: %w", certPath, filepath.Join(parent.Dir, caCertFile), err)
		}
		a.parent = parent
		a.Now = parent.Now
		a.chainPEM = certPEM
	}
	return a, nil
}

// root returns the root authority of a (itself for a root).
func (a *Authority) root() *Authority {
	if a.parent != nil {
		return a.parent
	}
	return a
}

func (a *Authority) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// issueServer writes server.crt/server.key for the broker (and nginx).
func (a *Authority) issueServer(name string, dns []string, ips []net.IP, validity time.Duration) error {
	names := []string{name}
	for _, d := range dns {
		if d != "" && d != name {
			names = append(names, d)
		}
	}
	if len(dns) == 0 && len(ips) == 0 {
		// The local stack listens on loopback; devices and tools that dial
		// 127.0.0.1 without SNI must still verify the name.
		names = append(names, "localhost")
		ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	key, err := newKey(a.Key)
	if err != nil {
		return fmt.Errorf("server key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	now := a.now()
	ku := x509.KeyUsageDigitalSignature
	if a.Key == RSA2048 {
		// TLS 1.2 RSA key exchange encrypts to the server key.
		ku |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"mqttstack"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(validity),
		KeyUsage:     ku,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, key.Public(), a.signer)
	if err != nil {
		return fmt.Errorf("sign server certificate: %w", err)
	}
	if err := writeKey(filepath.Join(a.Dir, serverKeyFile), key); err != nil {
		return err
	}
	p := filepath.Join(a.Dir, serverCertFile)
	if err := atomicfile.Write(p, pemCert(der), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

func newKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	default:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
}

var serialLimit = new(big.Int).Lsh(big.NewInt(1), 128)

// caTemplate is the self-signed certificate of a CA generation, the first
// (Init) and every successor (Next) alike: it signs certificates and CRLs,
// valid from now (backdated) for validity. One level below it is allowed:
// the CI sub-CA for negative test identities.
func caTemplate(serial *big.Int, subject pkix.Name, now time.Time, validity time.Duration) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
}

// newSerial returns a random positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	for {
		n, err := rand.Int(rand.Reader, serialLimit)
		if err != nil {
			return nil, fmt.Errorf("serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// writeKey writes key as PKCS#8 PEM with mode 0600.
func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key for %s: %w", path, err)
	}
	if err := atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// parseCertPEM returns the first certificate of a PEM file.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

func parseKeyPEM(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	var k any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", b.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key type %T cannot sign", k)
	}
	return s, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// Paths are the files of a PKI directory that configuration refers to.
type Paths struct {
	CACert     string // trust anchor for devices, mosquitto cafile, nginx ssl_client_certificate
	CAKey      string
	CRL        string // root CRL followed by every sub-CA's CRL: mosquitto crlfile, nginx ssl_crl
	ServerCert string
	ServerKey  string
	Clients    string // directory of <id>.crt/.key/.pass
}

// PKIDir is the directory of the PKI a belongs to (the active CA's, whose
// ca.crt and ca.crl the daemons read), for an authority of any generation
// or sub-CA.
func (a *Authority) PKIDir() string { return a.pkiHome().Dir }

// PathsOf returns the file paths inside the PKI directory dir.
func PathsOf(dir string) Paths {
	return Paths{
		CACert:     filepath.Join(dir, caCertFile),
		CAKey:      filepath.Join(dir, caKeyFile),
		CRL:        filepath.Join(dir, crlFile),
		ServerCert: filepath.Join(dir, serverCertFile),
		ServerKey:  filepath.Join(dir, serverKeyFile),
		Clients:    filepath.Join(dir, clientsDir),
	}
}

// syncPaths flushes files and then their directories to disk. Bulk device
// files are not synced (a lost one is re-issued on the next run), but the
// CA key and the revocation list are: losing the CA means re-issuing the
// fleet, and losing a revocation silently un-revokes a device.
func syncPaths(paths ...string) error {
	dirs := map[string]bool{}
	for _, p := range paths {
		if err := syncOne(p); err != nil {
			return err
		}
		dirs[filepath.Dir(p)] = true
	}
	for d := range dirs {
		if err := syncOne(d); err != nil {
			return err
		}
	}
	return nil
}

func syncOne(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}
