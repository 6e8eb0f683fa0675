package certs

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mqttstack/mqttstack/internal/atomicfile"
)

// SubCA opens, or creates on first use, the CI sub-CA <pki>/<name>/: an
// intermediate CA signed by the root, for negative test identities
// (SECURITY.md §2: never issue those from the production CA). A broker
// that trusts the root accepts its clients, which present leaf +
// intermediate (LoadClient(<pki>/<name>, id)). Its CRL is part of the
// root's ca.crl.
func (a *Authority) SubCA(name string) (*Authority, error) {
	if a.parent != nil {
		return nil, fmt.Errorf("sub-CA %s: %s is itself a sub-CA; create sub-CAs from the root", name, a.Dir)
	}
	if err := ValidateID(name); err != nil || name == clientsDir || reservedDirs[name] {
		return nil, fmt.Errorf("sub-CA name %q: must be letters, digits, '-' or '_' and not %q, %q, %q, %q or %q", name, clientsDir, nextDir, previousDir, retiredDir, pendingServerDir)
	}
	dir := filepath.Join(a.Dir, name)
	if _, err := os.Stat(filepath.Join(dir, caCertFile)); err == nil {
		return openAuthority(dir, a)
	}
	if err := os.MkdirAll(filepath.Join(dir, clientsDir), 0o700); err != nil {
		return nil, fmt.Errorf("sub-CA %s: %w", name, err)
	}
	key, err := newKey(a.Key)
	if err != nil {
		return nil, fmt.Errorf("sub-CA %s: key: %w", name, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := a.now()
	na := now.Add(DefaultCAValidity / 2)
	if na.After(a.Cert.NotAfter) {
		na = a.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: a.Cert.Subject.CommonName + " " + name, Organization: []string{"mqttstack"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, key.Public(), a.signer)
	if err != nil {
		return nil, fmt.Errorf("sub-CA %s: sign: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sub-CA %s: %w", name, err)
	}
	s := &Authority{
		Dir: dir, Cert: cert, Key: a.Key, Now: a.Now, ClientValidity: a.ClientValidity,
		signer: key, certPEM: pemCert(der), parent: a,
	}
	s.chainPEM = s.certPEM
	if err := writeKey(filepath.Join(dir, caKeyFile), key); err != nil {
		return nil, fmt.Errorf("sub-CA %s: %w", name, err)
	}
	if err := writeRevoked(s, revokedList{}); err != nil {
		return nil, fmt.Errorf("sub-CA %s: %w", name, err)
	}
	if err := atomicfile.Write(filepath.Join(dir, caCertFile), s.certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("sub-CA %s: %w", name, err)
	}
	if err := syncPaths(filepath.Join(dir, caKeyFile), filepath.Join(dir, caCertFile)); err != nil {
		return nil, fmt.Errorf("sub-CA %s: %w", name, err)
	}
	// The broker's crlfile must now hold this sub-CA's CRL too, or OpenSSL
	// rejects every client it issues ("unable to get certificate CRL").
	if err := a.WriteCRL(DefaultCRLNextUpdate); err != nil {
		return nil, fmt.Errorf("sub-CA %s: %w", name, err)
	}
	return s, nil
}

// SubCAs opens every sub-CA below the root, sorted by directory name.
func (a *Authority) SubCAs() ([]*Authority, error) {
	r := a.root()
	dirs, err := subCADirs(r.Dir)
	if err != nil {
		return nil, err
	}
	out := make([]*Authority, 0, len(dirs))
	for _, d := range dirs {
		// A foreign test CA kept inside the PKI directory is not ours.
		data, err := os.ReadFile(filepath.Join(d, caCertFile))
		if err != nil {
			return nil, fmt.Errorf("sub-CA %s: %w", d, err)
		}
		if c, err := parseCertPEM(data); err != nil || !bytes.Equal(c.RawIssuer, r.Cert.RawSubject) {
			continue
		}
		s, err := openAuthority(d, r)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// subCADirs lists the sub-directories of dir that hold a ca.crt.
func subCADirs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() || e.Name() == clientsDir || reservedDirs[e.Name()] || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		d := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(d, caCertFile)); err == nil {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out, nil
}

// NewForeign creates a throwaway CA in dir that no broker trusts, for the
// foreign-CA negative test: issue a client with its IssueClient and present
// it with LoadClient(dir, id). It has no server certificate and no default
// identities. An existing foreign CA in dir is opened instead.
func NewForeign(dir string) (*Authority, error) {
	if _, err := os.Stat(filepath.Join(dir, caCertFile)); err == nil {
		return Open(dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, clientsDir), 0o700); err != nil {
		return nil, fmt.Errorf("foreign CA: %w", err)
	}
	key, err := newKey(ECDSAP256)
	if err != nil {
		return nil, fmt.Errorf("foreign CA: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mqttstack foreign CA (untrusted)"},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(DefaultCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("foreign CA: sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := writeKey(filepath.Join(dir, caKeyFile), key); err != nil {
		return nil, fmt.Errorf("foreign CA: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, caCertFile), pemCert(der), 0o644); err != nil {
		return nil, fmt.Errorf("foreign CA: %w", err)
	}
	return &Authority{Dir: dir, Cert: cert, Key: ECDSAP256, Now: time.Now, ClientValidity: DefaultClientValidity, signer: key, certPEM: pemCert(der)}, nil
}

// SelfSigned writes a self-signed client certificate with CN id (e.g. a
// valid device's name) to dir/clients/<id>.{crt,key,pass}, for the
// self-signed negative test; load it with LoadClient(dir, id).
func SelfSigned(dir, id string) error {
	if err := ValidateID(id); err != nil {
		return fmt.Errorf("self-signed: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, clientsDir), 0o700); err != nil {
		return fmt.Errorf("self-signed %s: %w", id, err)
	}
	key, err := newKey(ECDSAP256)
	if err != nil {
		return err
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: id},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(DefaultClientValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("self-signed %s: %w", id, err)
	}
	base := filepath.Join(dir, clientsDir, id)
	if err := writeKey(base+".key", key); err != nil {
		return err
	}
	pw, err := newPassword()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(base+".pass", []byte(pw+"\n"), 0o600); err != nil {
		return fmt.Errorf("self-signed %s: %w", id, err)
	}
	if err := atomicfile.Write(base+".crt", pemCert(der), 0o644); err != nil {
		return fmt.Errorf("self-signed %s: %w", id, err)
	}
	return nil
}
