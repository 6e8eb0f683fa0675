package certs

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mqttstack/mqttstack/internal/atomicfile"
)

// Server certificate renewal in two steps, so firmware can carry the new
// pins before the broker presents the new certificate:
//
//	RenewServer   stages <pki>/server-next/server.crt (+ server.key), issued
//	              by a trusted CA generation, keeping the key or with a new
//	              one, and reports who keeps connecting (PinReport).
//	SwitchServer  moves the staged pair into <pki>/server.crt/.key.

// RenewOptions configures RenewServer.
type RenewOptions struct {
	// NewKey generates a new server key; otherwise the current key is kept
	// (boards pinning the public key keep connecting).
	NewKey bool
	// CA is the generation that signs: "" (current), "next" or "G<n>".
	CA string
	// Validity (default DefaultServerValidity).
	Validity time.Duration
	// Profiles of the pin report (nil: PinProfiles).
	Profiles []DeviceProfile
}

// ServerRenewal is a staged server certificate and its consequences.
type ServerRenewal struct {
	Old, New *x509.Certificate
	// Chain is what the broker will present after the switch (leaf first;
	// a cross certificate follows when the signing CA is newer than a
	// trusted one and was cross-signed).
	Chain   []*x509.Certificate
	KeptKey bool
	Staged  string // directory of the staged pair
	OldPins Pins
	NewPins Pins
	Report  []PinVerdict
}

// Pins are the values a board can pin a server by.
type Pins struct {
	// LeafSHA1 is ESP8266 BearSSL setFingerprint's value: SHA-1 of the
	// server's leaf certificate. Any new certificate changes it.
	LeafSHA1 string
	// LeafSHA256 is the same over SHA-256.
	LeafSHA256 string
	// SPKISHA256 is the SHA-256 of the public key (SubjectPublicKeyInfo), as
	// HPKP-style pins use it; unchanged when the key is kept.
	SPKISHA256 string
	// PublicKeyPEM is what setKnownKey (BearSSL PublicKey) takes.
	PublicKeyPEM string
}

// PinsOf returns the pins of a server certificate.
func PinsOf(c *x509.Certificate) Pins {
	der, _ := x509.MarshalPKIXPublicKey(c.PublicKey)
	s := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return Pins{
		LeafSHA1:     Fingerprint(c.Raw, "sha1"),
		LeafSHA256:   Fingerprint(c.Raw, "sha256"),
		SPKISHA256:   fmt.Sprintf("%X", s[:]),
		PublicKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
	}
}

// Pinning methods of PinVerdict.
const (
	PinFingerprint = "leaf-fingerprint" // ESP8266 setFingerprint (SHA-1 of the leaf)
	PinPublicKey   = "public-key"       // ESP8266 setKnownKey, key pinning
	PinCAAnchor    = "ca-anchor"        // trust anchor(s) + chain verification
	PinNone        = "none"             // setInsecure / VERIFY_OPTIONAL
)

// DeviceProfile is what the pin report needs to know about a board: the
// pinning methods its TLS stack offers and whether it checks dates. The
// facts are in docs/ROLLOVER.md with their sources.
type DeviceProfile struct {
	Name       string
	Stack      string
	Methods    []string
	ChecksDate bool
	// P256Only: the board verifies ECDSA only on P-256/SHA-256 (ECC508/608
	// offload); an RSA chain is still fine.
	P256Only bool
	// MaxChain is the largest Certificate handshake message the board can
	// hold (0 = unknown or streamed): a cross certificate makes the chain
	// one certificate longer.
	MaxChain int
}

// PinProfiles is the small board table of the pin report (see
// docs/ROLLOVER.md for the sources of each row).
var PinProfiles = []DeviceProfile{
	{Name: "esp8266", Stack: "BearSSL WiFiClientSecure", Methods: []string{PinFingerprint, PinPublicKey, PinCAAnchor, PinNone}, ChecksDate: true},
	{Name: "esp32", Stack: "arduino-esp32 / ESP-IDF mbedTLS", Methods: []string{PinCAAnchor, PinNone}, ChecksDate: false},
	{Name: "pico-w", Stack: "lwIP altcp_tls + mbedTLS", Methods: []string{PinCAAnchor, PinNone}, ChecksDate: false},
	{Name: "mkr1010-eccx08", Stack: "ArduinoBearSSL + ECCX08", Methods: []string{PinCAAnchor}, ChecksDate: true, P256Only: true},
}

// PinVerdict says whether boards of Profile pinning by Method (with
// Anchors, for ca-anchor) verify the server before and after the switch.
type PinVerdict struct {
	Profile string `json:"profile"`
	Method  string `json:"method"`
	// Anchors names the CA generations the board trusts (ca-anchor only).
	Anchors string `json:"anchors,omitempty"`
	Before  bool   `json:"before"`
	After   bool   `json:"after"`
	Why     string `json:"why"`
}

// RenewServer stages a new server certificate in <pki>/server-next with
// the names of the current one, and reports who keeps connecting.
func (a *Authority) RenewServer(o RenewOptions) (*ServerRenewal, error) {
	h := a.pkiHome()
	signer, err := h.Generation(o.CA)
	if err != nil {
		return nil, fmt.Errorf("server renew: %w", err)
	}
	if o.Validity <= 0 {
		o.Validity = DefaultServerValidity
	}
	oldChain, err := readChainFile(filepath.Join(h.Dir, serverCertFile))
	if err != nil {
		return nil, fmt.Errorf("server renew: %w (recreate it with `mqttstack certs init --force`)", err)
	}
	old := oldChain[0]
	keyPath := filepath.Join(h.Dir, serverKeyFile)
	var key crypto.Signer
	if o.NewKey {
		if key, err = newKey(signer.Key); err != nil {
			return nil, fmt.Errorf("server renew: key: %w", err)
		}
	} else {
		kb, err := os.ReadFile(keyPath)
		if err != nil {
			return nil, fmt.Errorf("server renew: %w (or pass --new-key)", err)
		}
		if key, err = parseKeyPEM(kb); err != nil {
			return nil, fmt.Errorf("server renew: %s: %w (pass --new-key)", keyPath, err)
		}
		if !publicKeysEqual(key.Public(), old.PublicKey) {
			return nil, fmt.Errorf("server renew: %s does not match %s (pass --new-key)", keyPath, filepath.Join(h.Dir, serverCertFile))
		}
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := h.now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      old.Subject,
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(o.Validity),
		KeyUsage:     old.KeyUsage,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     old.DNSNames,
		IPAddresses:  old.IPAddresses,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer.Cert, key.Public(), signer.signer)
	if err != nil {
		return nil, fmt.Errorf("server renew: sign: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("server renew: %w", err)
	}
	chain := []*x509.Certificate{leaf}
	// A cross certificate of the signer lets devices that trust only the
	// older CA verify the new leaf: present it while that CA is trusted.
	if cross := signer.crossCert(); cross != nil {
		if gens, err := h.Generations(); err == nil {
			for _, g := range gens {
				if cross.CheckSignatureFrom(g.Cert) == nil {
					chain = append(chain, cross)
					break
				}
			}
		}
	}
	dir := filepath.Join(h.Dir, pendingServerDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("server renew: %w", err)
	}
	// The key goes first: a staged certificate without its key is never
	// switched (SwitchServer checks the pair).
	if err := writeKey(filepath.Join(dir, serverKeyFile), key); err != nil {
		return nil, fmt.Errorf("server renew: %w", err)
	}
	var b bytes.Buffer
	for _, c := range chain {
		b.Write(pemCert(c.Raw))
	}
	if err := atomicfile.Write(filepath.Join(dir, serverCertFile), b.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("server renew: %w", err)
	}
	r := &ServerRenewal{Old: old, New: leaf, Chain: chain, KeptKey: !o.NewKey, Staged: dir, OldPins: PinsOf(old), NewPins: PinsOf(leaf)}
	r.Report, err = h.PinReport(oldChain, chain, now, o.Profiles)
	if err != nil {
		return nil, fmt.Errorf("server renew: %w", err)
	}
	return r, nil
}

// crossCert returns the cross certificate of this CA generation, if any.
func (a *Authority) crossCert() *x509.Certificate {
	c, err := readCertFile(filepath.Join(a.Dir, crossCertFile))
	if err != nil || !publicKeysEqual(c.PublicKey, a.Cert.PublicKey) {
		return nil
	}
	return c
}

// SwitchServer moves the staged server certificate and key into place
// and returns the files that changed (on a VPS the broker's and nginx's
// copies of them). The old pair is restored if a step fails.
func (a *Authority) SwitchServer() ([]string, error) {
	h := a.pkiHome()
	dir := filepath.Join(h.Dir, pendingServerDir)
	chain, err := readChainFile(filepath.Join(dir, serverCertFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("server switch: nothing staged in %s (stage a certificate with `mqttstack certs server renew` first)", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("server switch: %w", err)
	}
	kb, err := os.ReadFile(filepath.Join(dir, serverKeyFile))
	if err != nil {
		return nil, fmt.Errorf("server switch: %w (stage again with `mqttstack certs server renew`)", err)
	}
	key, err := parseKeyPEM(kb)
	if err != nil || !publicKeysEqual(key.Public(), chain[0].PublicKey) {
		return nil, fmt.Errorf("server switch: the staged key in %s does not match the staged certificate (stage again with `mqttstack certs server renew`)", dir)
	}
	crt, keyPath := filepath.Join(h.Dir, serverCertFile), filepath.Join(h.Dir, serverKeyFile)
	_, err1 := os.ReadFile(crt)
	oldKey, err2 := os.ReadFile(keyPath)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("server switch: %w", err)
	}
	var changed []string
	if !bytes.Equal(oldKey, kb) {
		if err := atomicfile.Write(keyPath, kb, 0o600); err != nil {
			return nil, fmt.Errorf("server switch: %w", err)
		}
		changed = append(changed, keyPath)
	}
	newCrt, _ := os.ReadFile(filepath.Join(dir, serverCertFile))
	if err := atomicfile.Write(crt, newCrt, 0o644); err != nil {
		if rerr := atomicfile.Write(keyPath, oldKey, 0o600); rerr != nil {
			err = fmt.Errorf("%w (restoring %s failed too: %v)", err, keyPath, rerr)
		}
		return nil, fmt.Errorf("server switch: %w", err)
	}
	changed = append([]string{crt}, changed...)
	if err := syncPaths(crt, keyPath); err != nil {
		return nil, fmt.Errorf("server switch: %w", err)
	}
	os.RemoveAll(dir)
	return changed, nil
}

// PinReport evaluates, per device profile and pinning method, whether a
// board that verified the old chain verifies the new one. For ca-anchor it
// evaluates every anchor set a fleet can hold during a rollover: each
// trusted generation alone, and all of them (the trust bundle).
func (a *Authority) PinReport(oldChain, newChain []*x509.Certificate, now time.Time, profiles []DeviceProfile) ([]PinVerdict, error) {
	if profiles == nil {
		profiles = PinProfiles
	}
	gens, err := a.pkiHome().Generations()
	if err != nil {
		return nil, err
	}
	type anchorSet struct {
		name string
		cas  []*x509.Certificate
	}
	var sets []anchorSet
	var all []*x509.Certificate
	allName := ""
	for _, g := range gens {
		sets = append(sets, anchorSet{GenerationName(g.Cert), []*x509.Certificate{g.Cert}})
		all = append(all, g.Cert)
		if allName != "" {
			allName += "+"
		}
		allName += GenerationName(g.Cert)
	}
	if len(gens) > 1 {
		sets = append(sets, anchorSet{allName, all})
	}
	oldLeaf, newLeaf := oldChain[0], newChain[0]
	var out []PinVerdict
	for _, p := range profiles {
		for _, m := range p.Methods {
			switch m {
			case PinFingerprint:
				same := bytes.Equal(oldLeaf.Raw, newLeaf.Raw)
				out = append(out, PinVerdict{Profile: p.Name, Method: m, Before: true, After: same,
					Why: "the SHA-1 of the leaf changes with every new certificate: flash the new fingerprint (or both) before the switch"})
			case PinPublicKey:
				same := publicKeysEqual(oldLeaf.PublicKey, newLeaf.PublicKey)
				why := "the key was kept"
				if !same {
					why = "a new key: flash the new public key (or both) before the switch"
				}
				out = append(out, PinVerdict{Profile: p.Name, Method: m, Before: true, After: same, Why: why})
			case PinNone:
				out = append(out, PinVerdict{Profile: p.Name, Method: m, Before: true, After: true,
					Why: "no server verification (setInsecure, or mbedTLS VERIFY_OPTIONAL as Pico W's default): keeps connecting, and so would an impostor"})
			case PinCAAnchor:
				for _, s := range sets {
					before, _ := verifyChain(oldChain, s.cas, now, p)
					after, why := verifyChain(newChain, s.cas, now, p)
					out = append(out, PinVerdict{Profile: p.Name, Method: m, Anchors: s.name, Before: before, After: after, Why: why})
				}
			}
		}
	}
	return out, nil
}

// verifyChain verifies chain against anchors the way a board would:
// with its dates (or, for a board that ignores dates, at a moment inside
// the leaf's validity) and, for a P-256-only verifier, refusing other
// ECDSA curves.
func verifyChain(chain, anchors []*x509.Certificate, now time.Time, p DeviceProfile) (bool, string) {
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range anchors {
		roots.AddCert(c)
	}
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	at := now
	if !p.ChecksDate {
		at = chain[0].NotBefore.Add(backdate + time.Second)
	}
	paths, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return false, fmt.Sprintf("the chain does not verify: %v", err)
	}
	if size := chainMessageSize(chain); p.MaxChain > 0 && size > p.MaxChain {
		return false, fmt.Sprintf("the chain's Certificate message is %d bytes, more than the board's %d-byte buffer", size, p.MaxChain)
	}
	if p.P256Only {
		for _, c := range paths[0] {
			if c.PublicKeyAlgorithm == x509.ECDSA && c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
				return false, "the ECC508/608 offload verifies P-256/SHA-256 signatures only"
			}
		}
	}
	via := ""
	for _, c := range paths[0][1:] {
		if via != "" {
			via += " -> "
		}
		via += c.Subject.CommonName
		if !bytes.Equal(c.RawIssuer, c.RawSubject) {
			via += " (cross-signed by " + c.Issuer.CommonName + ")"
		}
	}
	date := ""
	if !p.ChecksDate {
		date = "; dates not checked by this board"
	}
	return true, "verifies via " + via + date
}

func readChainFile(p string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	cs, err := parseCertsPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", p)
	}
	return cs, nil
}

// ServerPins returns the pins of the server certificate in place and of a
// staged renewal (nil when none is staged).
func (a *Authority) ServerPins() (Pins, *Pins, error) {
	h := a.pkiHome()
	cur, err := readCertFile(filepath.Join(h.Dir, serverCertFile))
	if err != nil {
		return Pins{}, nil, fmt.Errorf("server pins: %w", err)
	}
	st, err := readCertFile(filepath.Join(h.Dir, pendingServerDir, serverCertFile))
	if errors.Is(err, fs.ErrNotExist) {
		return PinsOf(cur), nil, nil
	}
	if err != nil {
		return Pins{}, nil, fmt.Errorf("server pins: %w", err)
	}
	p := PinsOf(st)
	return PinsOf(cur), &p, nil
}

// WritePinsCHeader writes the server pins as C for firmware that carries
// the current and the staged pins side by side until `certs server
// switch`: the leaf's SHA-1 as bytes (BearSSL setFingerprint) and the
// public key PEM (BearSSL::PublicKey for setKnownKey).
func WritePinsCHeader(w io.Writer, cur Pins, staged *Pins) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "/* Server pins, written by `mqttstack certs server pins --format c-header`.\n")
	fmt.Fprintf(bw, " * Carry both sets until the broker switches certificates, then drop the old one. */\n")
	fmt.Fprintf(bw, "#ifndef MQTTSTACK_SERVER_PINS_H\n#define MQTTSTACK_SERVER_PINS_H\n\n")
	write := func(name string, p Pins) {
		raw, _ := hex.DecodeString(strings.ReplaceAll(p.LeafSHA1, ":", ""))
		fmt.Fprintf(bw, "/* setFingerprint: SHA-1 of the server's leaf certificate (%s) */\n", p.LeafSHA1)
		fmt.Fprintf(bw, "static const uint8_t mqtt_server_sha1_%s[20] = {", name)
		for i, c := range raw {
			if i > 0 {
				bw.WriteString(",")
			}
			fmt.Fprintf(bw, " 0x%02x", c)
		}
		fmt.Fprintf(bw, " };\n/* setKnownKey: the server's public key */\nstatic const char mqtt_server_pubkey_%s[] =\n", name)
		for _, line := range strings.SplitAfter(p.PublicKeyPEM, "\n") {
			if line != "" {
				fmt.Fprintf(bw, "  %q\n", line)
			}
		}
		bw.WriteString(";\n\n")
	}
	write("current", cur)
	if staged != nil {
		write("staged", *staged)
	}
	bw.WriteString("#endif /* MQTTSTACK_SERVER_PINS_H */\n")
	return bw.Flush()
}

// chainMessageSize is the size of the TLS Certificate handshake message
// that carries chain (TLS 1.2: header, list length, each length + DER).
func chainMessageSize(chain []*x509.Certificate) int {
	n := 4 + 3
	for _, c := range chain {
		n += 3 + len(c.Raw)
	}
	return n
}
