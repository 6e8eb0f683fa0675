package broker

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mqttstack/mqttstack/certs"
)

// PKI is what a broker host needs from the operator's PKI directory. The CA
// private key is deliberately not a field: LoadPKI never opens it, so it
// cannot reach the Pulumi state, the provider or the host.
type PKI struct {
	CACert     []byte // PEM, the private device CA (also served at /ca.crt)
	CRL        []byte // PEM, ca.crl
	ServerCert []byte // PEM, the broker's certificate (private CA)
	// ServerKey is PEM. The component hands it to Pulumi only wrapped in
	// pulumi.ToSecret, so the state stores it encrypted.
	ServerKey []byte
	// Passwords maps every client id with a <id>.pass to its password, for
	// the WebSocket listener's password file, except revoked identities
	// (certs.RevokedIDs). Only hashes leave the machine.
	Passwords map[string]string
}

// LoadPKI reads a PKI directory laid out by package certs and checks that
// the server certificate names serverName (devices verify it). Every
// problem is reported at once.
func LoadPKI(dir, serverName string) (PKI, error) {
	var p PKI
	var errs []error
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w (create the PKI with `mqttstack certs init --dir %s --name %s`)", filepath.Join(dir, name), err, dir, serverName))
		}
		return b
	}
	p.CACert = read("ca.crt")
	p.CRL = read("ca.crl")
	p.ServerCert = read("server.crt")
	p.ServerKey = read("server.key")
	if len(p.ServerCert) > 0 {
		if err := certNames(p.ServerCert, serverName); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Join(dir, "server.crt"), err))
		}
	}
	if len(p.ServerKey) > 0 {
		if blk, _ := pem.Decode(p.ServerKey); blk == nil || !strings.Contains(blk.Type, "PRIVATE KEY") {
			errs = append(errs, fmt.Errorf("%s: not a PEM private key", filepath.Join(dir, "server.key")))
		}
	}
	ids, err := passwordIDs(dir)
	if err != nil {
		errs = append(errs, err)
	}
	// A revoked identity's password must not open the host's password
	// listeners: it gets no line (the rule of certs.MosquittoPasswordFile).
	revoked, err := certs.RevokedIDs(dir, ids)
	if err != nil {
		errs = append(errs, err)
	}
	p.Passwords = make(map[string]string, len(ids))
	for _, id := range ids {
		if revoked[id] {
			continue
		}
		pw, err := certs.ClientPassword(dir, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.Passwords[id] = pw
	}
	return p, errors.Join(errs...)
}

// certNames checks that the first certificate in pemBytes is valid for
// serverName.
func certNames(pemBytes []byte, serverName string) error {
	blk, _ := pem.Decode(pemBytes)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return errors.New("not a PEM certificate")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return err
	}
	if err := c.VerifyHostname(serverName); err != nil {
		return fmt.Errorf("does not name %q (its names: %v); set mqttstack:serverName to one of them (a new PKI with `certs init --name %s` would mean new device certificates)", serverName, c.DNSNames, serverName)
	}
	return nil
}

// passwordIDs lists the ids that have a password file, sorted.
func passwordIDs(dir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(dir, "clients"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "clients"), err)
	}
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".pass"); ok && !e.IsDir() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// passwordFile renders Mosquitto's password file for p.Passwords in
// "$7$" (PBKDF2-SHA512) form, one "id:hash" line per identity, sorted.
//
// The salt is derived, not random: HMAC-SHA256 keyed with the server key
// over the id. The file is part of the provisioning input, and a fresh
// random salt on every `pulumi up` would make every preview show a change
// and re-provision the host for nothing. The salt stays unpredictable to
// anyone without the server key and distinct per identity, which is what a
// salt is for; the passwords themselves are random (see package certs).
func passwordFile(p PKI) ([]byte, error) {
	ids := make([]string, 0, len(p.Passwords))
	for id := range p.Passwords {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b strings.Builder
	for _, id := range ids {
		if err := certs.ValidateID(id); err != nil {
			return nil, fmt.Errorf("password file: %w", err)
		}
		mac := hmac.New(sha256.New, p.ServerKey)
		mac.Write([]byte("mqttstack mosquitto passwd salt\x00" + id))
		hash, err := certs.MosquittoPasswordHashSalt(p.Passwords[id], mac.Sum(nil)[:certs.MosquittoSaltLen])
		if err != nil {
			return nil, fmt.Errorf("password file: %s: %w", id, err)
		}
		b.WriteString(id + ":" + hash + "\n")
	}
	return []byte(b.String()), nil
}
