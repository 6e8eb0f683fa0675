package certs

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/mqttstack/mqttstack/internal/atomicfile"
)

// revokedList is revoked.json: what the CRL of one CA lists.
type revokedList struct {
	// CRLNumber is the number of the last CRL written; CRL numbers must
	// grow so that relying parties can tell a newer CRL from an older one.
	CRLNumber int64          `json:"crl_number"`
	Revoked   []revokedEntry `json:"revoked"`
}

type revokedEntry struct {
	ID        string    `json:"id"`
	Serial    string    `json:"serial"` // hex
	RevokedAt time.Time `json:"revoked_at"`
}

func readRevoked(a *Authority) (revokedList, error) { return readRevokedDir(a.Dir) }

// readRevokedDir reads the revoked.json of the CA in dir (none: empty).
func readRevokedDir(dir string) (revokedList, error) {
	p := filepath.Join(dir, revokedFile)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return revokedList{}, nil
	}
	if err != nil {
		return revokedList{}, fmt.Errorf("read %s: %w", p, err)
	}
	var l revokedList
	if err := json.Unmarshal(data, &l); err != nil {
		return revokedList{}, fmt.Errorf("%s: %w (fix the JSON or restore it; it is the list of revoked certificates)", p, err)
	}
	return l, nil
}

func writeRevoked(a *Authority, l revokedList) error {
	if l.Revoked == nil {
		l.Revoked = []revokedEntry{}
	}
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(a.Dir, revokedFile)
	if err := atomicfile.Write(p, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// Revoke adds the current certificate of id to this CA's revoked.json and
// rewrites the CRL (nextUpdate DefaultCRLNextUpdate). The identity's files
// stay, so a test can still present the revoked certificate. Revoking an
// already revoked certificate is a no-op.
//
// Once every trusted generation's certificate of id is revoked, its
// password leaves the broker's password file too: MosquittoPasswordFile
// (and infra/broker) skip the identities RevokedIDs names, so the next
// rendering of the password files (local: `mqttstack local passwords`;
// deployed: `mqttstack deploy up`) drops it.
//
// On the active root of a PKI in a CA rollover, every trusted generation's
// certificate of id is revoked (a device may still present either), and
// an id that neither generation issued is an error.
func (a *Authority) Revoke(id string) error {
	targets := []*Authority{a}
	if a.parent == nil && a.home == nil {
		gens, err := a.Generations()
		if err != nil {
			return fmt.Errorf("revoke %s: %w", id, err)
		}
		targets = gens
	}
	found := 0
	for _, g := range targets {
		ok, err := g.revokeOne(id, len(targets) == 1)
		if err != nil {
			return err
		}
		if ok {
			found++
		}
	}
	if found == 0 {
		_, err := a.locate(id)
		return fmt.Errorf("revoke: %w", err)
	}
	return a.WriteCRL(DefaultCRLNextUpdate)
}

// revokeOne adds id's certificate of this CA to revoked.json. A missing
// certificate is (false, nil) unless must.
func (a *Authority) revokeOne(id string, must bool) (bool, error) {
	p := filepath.Join(a.Dir, clientsDir, id+".crt")
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) && !must {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("revoke %s: %w (is the id right? `mqttstack certs check` lists the identities)", id, err)
	}
	c, err := parseCertPEM(data)
	if err != nil {
		return false, fmt.Errorf("revoke %s: %s: %w", id, p, err)
	}
	if err := c.CheckSignatureFrom(a.Cert); err != nil {
		return false, fmt.Errorf("revoke %s: %s was not issued by the CA in %s: %w", id, p, a.Dir, err)
	}
	a.mu.Lock()
	l, err := readRevoked(a)
	if err == nil {
		serial := c.SerialNumber.Text(16)
		dup := false
		for _, e := range l.Revoked {
			dup = dup || e.Serial == serial
		}
		if !dup {
			l.Revoked = append(l.Revoked, revokedEntry{ID: id, Serial: serial, RevokedAt: a.now().UTC()})
			if err = writeRevoked(a, l); err == nil {
				err = syncPaths(filepath.Join(a.Dir, revokedFile))
			}
		}
	}
	a.mu.Unlock()
	if err != nil {
		return false, fmt.Errorf("revoke %s: %w", id, err)
	}
	return true, nil
}

// WriteCRL signs fresh CRLs valid for nextUpdate (0 selects
// DefaultCRLNextUpdate) for every trusted CA generation (two during a
// rollover) and each one's sub-CAs. Each CA other than the active root
// keeps its own ca.crl; the root's ca.crl is the bundle: every CRL, each
// generation's followed by its sub-CAs'. That one file serves both daemons:
// OpenSSL loads every CRL of a PEM file into the store (Mosquitto 2.0.11's
// crlfile included: TestMosquittoRolloverTrust); Mosquitto's crlfile sets
// CRL_CHECK, which needs the CRL of the leaf's issuer (else "unable to get
// certificate CRL" and the client is refused), and nginx's ssl_crl sets
// CRL_CHECK_ALL, which needs the CRL of every CA in the chain, the root's
// included.
func (a *Authority) WriteCRL(nextUpdate time.Duration) error {
	if nextUpdate <= 0 {
		nextUpdate = DefaultCRLNextUpdate
	}
	h := a.pkiHome()
	gens, err := h.Generations()
	if err != nil {
		return fmt.Errorf("write CRL: %w", err)
	}
	var combined []byte
	for _, g := range gens {
		subs, err := g.SubCAs()
		if err != nil {
			return fmt.Errorf("write CRL: %w", err)
		}
		own, err := g.signCRL(nextUpdate)
		if err != nil {
			return err
		}
		if g != h {
			p := filepath.Join(g.Dir, crlFile)
			if err := atomicfile.Write(p, own, 0o644); err != nil {
				return fmt.Errorf("write CRL %s: %w", p, err)
			}
		}
		combined = append(combined, own...)
		for _, s := range subs {
			one, err := s.signCRL(nextUpdate)
			if err != nil {
				return err
			}
			p := filepath.Join(s.Dir, crlFile)
			if err := atomicfile.Write(p, one, 0o644); err != nil {
				return fmt.Errorf("write CRL %s: %w", p, err)
			}
			combined = append(combined, one...)
		}
	}
	p := filepath.Join(h.Dir, crlFile)
	if err := atomicfile.Write(p, combined, 0o644); err != nil {
		return fmt.Errorf("write CRL %s: %w", p, err)
	}
	return syncPaths(p)
}

// signCRL returns this CA's CRL as PEM and bumps its CRL number.
func (a *Authority) signCRL(nextUpdate time.Duration) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, err := readRevoked(a)
	if err != nil {
		return nil, fmt.Errorf("write CRL: %w", err)
	}
	l.CRLNumber++
	entries := make([]x509.RevocationListEntry, 0, len(l.Revoked))
	for _, e := range l.Revoked {
		n, ok := new(big.Int).SetString(e.Serial, 16)
		if !ok {
			return nil, fmt.Errorf("write CRL: %s: serial %q of %s is not hex (fix or remove the entry)", filepath.Join(a.Dir, revokedFile), e.Serial, e.ID)
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: e.RevokedAt})
	}
	now := a.now()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(l.CRLNumber),
		ThisUpdate:                now.Add(-backdate),
		NextUpdate:                now.Add(nextUpdate),
		RevokedCertificateEntries: entries,
	}, a.Cert, a.signer)
	if err != nil {
		return nil, fmt.Errorf("write CRL for %s: sign: %w", a.Dir, err)
	}
	if err := writeRevoked(a, l); err != nil {
		return nil, fmt.Errorf("write CRL: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), nil
}

// LoadCRLs parses every CRL in a PEM file such as <pki>/ca.crl.
func LoadCRLs(path string) ([]*x509.RevocationList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load CRL: %w", err)
	}
	var out []*x509.RevocationList
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "X509 CRL" {
			continue
		}
		l, err := x509.ParseRevocationList(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("load CRL %s: %w", path, err)
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("load CRL %s: no X509 CRL block (regenerate it with `mqttstack certs crl`)", path)
	}
	return out, nil
}

// Expiry is one line of the expiry report.
type Expiry struct {
	// Kind is "ca" (a trusted CA generation), "cross" (a cross
	// certificate), "sub-ca", "server", "server-next" (a staged renewal),
	// "crl" or "client".
	Kind    string `json:"kind"`
	Subject string `json:"subject"` // CN (client id), or the CA's name for a CRL
	Path    string `json:"path"`
	// Generation is the CA generation ("G1", "G2") the item belongs to.
	Generation string    `json:"generation,omitempty"`
	NotAfter   time.Time `json:"not_after"` // for a CRL: its nextUpdate
	// Inside is true when the entry is due: a certificate when NotAfter is
	// before now+within (already expired included); a CRL from Due on.
	Inside bool `json:"due"`
	// Due is set for a CRL only: the middle of its lifetime (thisUpdate to
	// nextUpdate). A CRL is judged by this refresh rule, not by within.
	Due time.Time `json:"due_from,omitzero"`
	// Rule says which rule decides Inside.
	Rule string `json:"rule"`
}

// Rules of Expiry.Rule.
const (
	RuleWithin  = "expires within --within"
	RuleCRLHalf = "refresh once half its lifetime is gone (not --within): the broker refuses every client after nextUpdate"
)

// Check reports the expiry of every trusted CA generation (two during a
// rollover) and its cross certificate, the server certificate (and a
// staged renewal), each CRL's next update, each sub-CA and every client
// certificate of every generation (not the sub-CAs' test clients), sorted
// by NotAfter. Client files are parsed in parallel.
func (a *Authority) Check(within time.Duration, now time.Time) ([]Expiry, error) {
	h := a.pkiHome()
	limit := now.Add(within)
	var out []Expiry
	add := func(kind, subject, path, gen string, na time.Time) {
		out = append(out, Expiry{Kind: kind, Subject: subject, Path: path, Generation: gen, NotAfter: na, Inside: na.Before(limit), Rule: RuleWithin})
	}
	gens, err := h.Generations()
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	genOf := func(c *x509.Certificate) string {
		for _, g := range gens {
			if c.CheckSignatureFrom(g.Cert) == nil {
				return GenerationName(g.Cert)
			}
		}
		return ""
	}
	for _, g := range gens {
		gn := GenerationName(g.Cert)
		add("ca", g.Cert.Subject.CommonName, filepath.Join(g.Dir, caCertFile), gn, g.Cert.NotAfter)
		if c := g.crossCert(); c != nil {
			add("cross", c.Subject.CommonName+" (by "+c.Issuer.CommonName+")", filepath.Join(g.Dir, crossCertFile), gn, c.NotAfter)
		}
		subs, err := g.SubCAs()
		if err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		for _, s := range subs {
			// A sub-CA's own certificate matters (its clients stop
			// verifying when it expires); its clients are CI test
			// material, deliberately expired or not yet valid, and would
			// fail every check.
			add("sub-ca", s.Cert.Subject.CommonName, filepath.Join(s.Dir, caCertFile), gn, s.Cert.NotAfter)
		}
		cl, err := checkClients(g.Dir, limit)
		if err != nil {
			return nil, err
		}
		for i := range cl {
			cl[i].Generation = gn
		}
		out = append(out, cl...)
	}
	for _, sv := range []struct{ kind, path string }{
		{"server", filepath.Join(h.Dir, serverCertFile)},
		{"server-next", filepath.Join(h.Dir, pendingServerDir, serverCertFile)},
		{"server-legacy", filepath.Join(h.Dir, legacyServerCert)},
	} {
		c, err := readCertFile(sv.path)
		if errors.Is(err, fs.ErrNotExist) && sv.kind != "server" {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("check: %w (recreate the PKI with `mqttstack certs init --force`)", err)
		}
		add(sv.kind, c.Subject.CommonName, sv.path, genOf(c), c.NotAfter)
	}
	crlPath := filepath.Join(h.Dir, crlFile)
	crls, err := LoadCRLs(crlPath)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	for _, l := range crls {
		// A CRL is short-lived by design (30 days by default) and must be
		// refreshed long before nextUpdate: once it expires OpenSSL rejects
		// every client. It is due once half its lifetime is gone, whatever
		// within says: a window shorter than that would let it run out
		// unnoticed, a longer one would flag a CRL the moment it is
		// written.
		due := l.NextUpdate.Add(-l.NextUpdate.Sub(l.ThisUpdate) / 2)
		gen := ""
		for _, g := range gens {
			if l.CheckSignatureFrom(g.Cert) == nil {
				gen = GenerationName(g.Cert)
			}
		}
		out = append(out, Expiry{Kind: "crl", Subject: l.Issuer.CommonName, Path: crlPath, Generation: gen, NotAfter: l.NextUpdate, Due: due, Inside: !now.Before(due), Rule: RuleCRLHalf})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].NotAfter.Before(out[j].NotAfter) })
	return out, nil
}

func checkClients(dir string, limit time.Time) ([]Expiry, error) {
	ids, err := clientIDs(dir)
	if err != nil {
		return nil, fmt.Errorf("check: list %s: %w", filepath.Join(dir, clientsDir), err)
	}
	out := make([]Expiry, len(ids))
	errs := make([]error, len(ids))
	forEachParallel(len(ids), func(i int) {
		p := filepath.Join(dir, clientsDir, ids[i]+".crt")
		data, err := os.ReadFile(p)
		if err != nil {
			errs[i] = err
			return
		}
		c, err := parseCertPEM(data)
		if err != nil {
			errs[i] = fmt.Errorf("%s: %w (re-issue it: remove the file and run `mqttstack certs issue --id %s`)", p, err, ids[i])
			return
		}
		out[i] = Expiry{Kind: "client", Subject: c.Subject.CommonName, Path: p, NotAfter: c.NotAfter, Inside: c.NotAfter.Before(limit), Rule: RuleWithin}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	return out, nil
}

// ErrRevoked is returned (wrapped) by CheckRevocation for a revoked leaf.
var ErrRevoked = errors.New("certificate revoked")

// CheckRevocation checks the leaf of a verified chain (leaf first, then its
// issuer) against crls the way OpenSSL's X509_V_FLAG_CRL_CHECK does, which
// is what Mosquitto sets for crlfile: the CRL of the leaf's issuer must be
// present and signed by that issuer, else the leaf is refused ("unable to
// get certificate CRL"); the leaf must not be listed. Intermediates are not
// checked (that would be CRL_CHECK_ALL, which nginx's ssl_crl uses).
func CheckRevocation(crls []*x509.RevocationList, chain []*x509.Certificate) error {
	if len(chain) < 2 {
		return errors.New("check revocation: need the leaf and its issuer")
	}
	leaf, issuer := chain[0], chain[1]
	found := false
	for _, l := range crls {
		if l.CheckSignatureFrom(issuer) != nil {
			continue
		}
		found = true
		for _, e := range l.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
				return fmt.Errorf("%w: %q serial %x since %s", ErrRevoked, leaf.Subject.CommonName, leaf.SerialNumber, e.RevocationTime.UTC().Format(time.RFC3339))
			}
		}
	}
	if !found {
		return fmt.Errorf("check revocation: no CRL of %q in the CRL file (regenerate it with `mqttstack certs crl`)", issuer.Subject.CommonName)
	}
	return nil
}
