package certs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mqttstack/mqttstack/internal/atomicfile"
)

// A CA rollover moves a fleet from one root CA ("generation" G1) to its
// successor (G2) without a flag day, in three named steps:
//
//	next     <pki>/next/ holds the successor (own key, own clients/, own
//	         CRL), optionally cross-signed by the active CA. The trust files
//	         <pki>/ca.crt and <pki>/ca.crl now hold both CAs and both CRLs.
//	issue    `--ca next` re-issues devices in waves under the successor,
//	         keeping their ids and passwords.
//	promote  the successor becomes the active CA in <pki>/ (what `certs
//	         issue` uses by default); the old one moves to <pki>/previous/,
//	         still trusted. The trust files keep both CAs.
//	retire   <pki>/previous/ moves to <pki>/retired/ and leaves the trust
//	         files; refused while identities hold only its certificates.
//
// The active CA always lives in <pki>/ itself, so a PKI made before
// rollovers existed is simply generation 1 (no migration) and every reader
// of <pki>/clients, <pki>/ca.crt and <pki>/ca.crl keeps working: ca.crt is
// the trust bundle (Mosquitto cafile, nginx ssl_client_certificate, the
// devices' anchors), ca.crl the CRL bundle (crlfile, ssl_crl).

// Rollover directory and file names inside a PKI.
const (
	nextDir          = "next"
	previousDir      = "previous"
	retiredDir       = "retired"
	pendingServerDir = "server-next"
	// crossCertFile is the successor CA's key certified by the CA that was
	// active when `certs ca next --cross-sign` ran (in next/, then in the
	// PKI root after promote).
	crossCertFile = "ca-cross.crt"
)

// legacyServerCert is the RSA server certificate of a legacy listener
// (certs/legacy.go), checked by Retire and listed by Check when present.
const legacyServerCert = "server-rsa.crt"

// reservedDirs are never sub-CAs.
var reservedDirs = map[string]bool{nextDir: true, previousDir: true, retiredDir: true, pendingServerDir: true}

// Generation names accepted by Authority.Generation (and `--ca`).
const (
	GenCurrent  = "current"
	GenNext     = "next"
	GenPrevious = "previous"
)

// pkiHome returns the PKI's active root for any authority of the PKI.
func (a *Authority) pkiHome() *Authority {
	r := a.root()
	if r.home != nil {
		return r.home
	}
	return r
}

// GenerationName returns "G<n>" for a CA: the number at the end of its
// common name (" G2"), or 1 for a CA without one (every PKI made before
// rollovers, and every fresh one).
func GenerationName(ca *x509.Certificate) string {
	_, n := splitGeneration(ca.Subject.CommonName)
	return "G" + strconv.Itoa(n)
}

var genSuffix = regexp.MustCompile(` G([0-9]+)$`)

func splitGeneration(cn string) (base string, n int) {
	if m := genSuffix.FindStringSubmatch(cn); m != nil {
		if v, err := strconv.Atoi(m[1]); err == nil && v > 0 {
			return strings.TrimSuffix(cn, m[0]), v
		}
	}
	return cn, 1
}

// Generation opens a CA generation of the PKI a belongs to: GenCurrent
// (""), GenNext, GenPrevious, or a name "G<n>" of one of them.
func (a *Authority) Generation(name string) (*Authority, error) {
	h := a.pkiHome()
	switch strings.ToLower(name) {
	case "", GenCurrent, "active":
		return h, nil
	case GenNext, GenPrevious:
		name = strings.ToLower(name)
		dir := filepath.Join(h.Dir, name)
		if _, err := os.Stat(filepath.Join(dir, caCertFile)); err != nil {
			return nil, noGeneration(h, name)
		}
		g, err := openAuthority(dir, nil)
		if err != nil {
			return nil, err
		}
		g.home = h
		g.Now = h.Now
		g.ClientValidity = h.ClientValidity
		g.passDirs = h.otherClientDirs(dir)
		return g, nil
	}
	gens, err := h.Generations()
	if err != nil {
		return nil, err
	}
	var have []string
	for _, g := range gens {
		if strings.EqualFold(GenerationName(g.Cert), name) {
			return g, nil
		}
		have = append(have, GenerationName(g.Cert)+" ("+g.Role()+")")
	}
	return nil, fmt.Errorf("CA %q: no such CA generation in %s; this PKI trusts %s (use --ca current, next or previous)", name, h.Dir, strings.Join(have, ", "))
}

func noGeneration(h *Authority, name string) error {
	cur := GenerationName(h.Cert)
	switch name {
	case GenNext:
		if _, err := os.Stat(filepath.Join(h.Dir, previousDir, caCertFile)); err == nil {
			return fmt.Errorf("CA next: there is no successor CA in %s: it was promoted and %s is the active CA now (issue under it with --ca current, or leave --ca out)", h.Dir, cur)
		}
		return fmt.Errorf("CA next: there is no successor CA in %s (create one with `mqttstack certs ca next --dir %s`)", h.Dir, h.Dir)
	default:
		return fmt.Errorf("CA previous: %s has no previous CA generation: %s is the only trusted CA or its successor is not promoted yet (`mqttstack certs ca status`)", h.Dir, cur)
	}
}

// Role says which generation a is: "current", "next", "previous", or
// "sub-CA".
func (a *Authority) Role() string {
	switch {
	case a.parent != nil:
		return "sub-CA"
	case a.home == nil:
		return GenCurrent
	default:
		return filepath.Base(a.Dir)
	}
}

// Generations returns every trusted CA generation of the PKI, oldest
// first: the previous one (after promote), the current one, the next one
// (after `ca next`).
func (a *Authority) Generations() ([]*Authority, error) {
	h := a.pkiHome()
	out := []*Authority{}
	for _, name := range []string{GenPrevious, GenCurrent, GenNext} {
		if name != GenCurrent {
			if _, err := os.Stat(filepath.Join(h.Dir, name, caCertFile)); errors.Is(err, fs.ErrNotExist) {
				continue
			}
		}
		g, err := h.Generation(name)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

func (a *Authority) otherClientDirs(except string) []string {
	var out []string
	for _, d := range []string{a.Dir, filepath.Join(a.Dir, nextDir), filepath.Join(a.Dir, previousDir)} {
		if d != except {
			out = append(out, filepath.Join(d, clientsDir))
		}
	}
	return out
}

// TrustBundle returns what <pki>/ca.crt holds: the certificate of every
// trusted CA generation, oldest first (one during normal operation, two
// during a rollover). Mosquitto's cafile and nginx's ssl_client_certificate
// read every certificate of this one file, as do the devices' anchors.
func (a *Authority) TrustBundle() ([]byte, error) {
	gens, err := a.Generations()
	if err != nil {
		return nil, fmt.Errorf("trust bundle: %w", err)
	}
	var b bytes.Buffer
	for _, g := range gens {
		b.Write(pemCert(g.Cert.Raw))
	}
	return b.Bytes(), nil
}

// CRLBundle returns what <pki>/ca.crl holds: the CRL of every trusted CA
// generation and of each one's sub-CAs (WriteCRL writes it).
func (a *Authority) CRLBundle() ([]byte, error) {
	p := filepath.Join(a.pkiHome().Dir, crlFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("CRL bundle: %w (write it with `mqttstack certs crl`)", err)
	}
	return b, nil
}

// TrustFiles are the files of a PKI that the broker and nginx read as
// trust configuration (ca.crt and ca.crl). A rollover step changes only
// these (and `certs server switch` the server certificate): on a VPS,
// `mqttstack deploy` shows them as the files that change.
func TrustFiles(pkiDir string) []string {
	return []string{filepath.Join(pkiDir, caCertFile), filepath.Join(pkiDir, crlFile)}
}

func (a *Authority) writeTrustBundle() error {
	b, err := a.TrustBundle()
	if err != nil {
		return err
	}
	p := filepath.Join(a.pkiHome().Dir, caCertFile)
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err := atomicfile.Write(p, b, 0o644); err != nil {
		return fmt.Errorf("write trust bundle %s: %w", p, err)
	}
	return syncPaths(p)
}

// NextOptions configures Authority.Next.
type NextOptions struct {
	// CrossSign also writes next/ca-cross.crt: the successor's name and key
	// certified by the active CA, so that a device that trusts only the
	// active CA can verify a server certificate issued by the successor
	// (the server presents leaf + cross certificate).
	CrossSign bool
	// Validity of the successor (default DefaultCAValidity).
	Validity time.Duration
	// CRLNextUpdate of the CRLs written afterwards (default DefaultCRLNextUpdate).
	CRLNextUpdate time.Duration
}

// StepResult says what a rollover step did and which trust files it
// rewrote: on a deployed stack exactly these change on the VPS.
type StepResult struct {
	CA      *x509.Certificate // the CA the step created, promoted or retired
	Cross   *x509.Certificate // Next with CrossSign
	Changed []string          // trust files whose bytes changed
	// Reissued are the operator identities (observers, backends) that
	// Promote re-issued under the new CA, keeping their passwords.
	Reissued []string
	// OldOnly are the identities that held only a certificate of the
	// retired CA (Retire with force).
	OldOnly []string
	// Archive is where Retire moved the retired CA (key included, 0600).
	Archive string
	// Dropped are the identities whose password Retire removed from
	// <pki>/clients (no certificate of the active CA: locked out).
	Dropped []string
}

// Next creates the successor CA in <pki>/next (key, certificate, empty CRL,
// clients/), optionally cross-signed, and adds it and its CRL to the trust
// files. The successor's key never leaves this machine. Refused while a
// successor exists or a previous generation is still trusted.
func (a *Authority) Next(o NextOptions) (StepResult, error) {
	h := a.pkiHome()
	cur := GenerationName(h.Cert)
	if _, err := os.Stat(filepath.Join(h.Dir, nextDir, caCertFile)); err == nil {
		g, _ := h.Generation(GenNext)
		name := "a successor"
		if g != nil {
			name = GenerationName(g.Cert)
		}
		return StepResult{}, fmt.Errorf("ca next: %s already holds %s CA in %s (issue under it with `certs issue --ca next`, promote it with `certs ca promote`, or remove %s to start over)", h.Dir, name, filepath.Join(h.Dir, nextDir), filepath.Join(h.Dir, nextDir))
	}
	if _, err := os.Stat(filepath.Join(h.Dir, previousDir, caCertFile)); err == nil {
		return StepResult{}, fmt.Errorf("ca next: the previous CA generation in %s is still trusted; finish that rollover first with `mqttstack certs ca retire` (three CAs at once would widen who can mint device identities)", filepath.Join(h.Dir, previousDir))
	}
	if o.Validity <= 0 {
		o.Validity = DefaultCAValidity
	}
	base, n := splitGeneration(h.Cert.Subject.CommonName)
	cn := fmt.Sprintf("%s G%d", base, n+1)
	now := h.now()
	key, err := newKey(h.Key)
	if err != nil {
		return StepResult{}, fmt.Errorf("ca next: key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return StepResult{}, fmt.Errorf("ca next: %w", err)
	}
	tmpl := caTemplate(serial, pkix.Name{CommonName: cn, Organization: h.Cert.Subject.Organization}, now, o.Validity)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return StepResult{}, fmt.Errorf("ca next: sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return StepResult{}, fmt.Errorf("ca next: %w", err)
	}
	res := StepResult{CA: cert}
	// Everything is written into a temporary directory that is renamed to
	// next/ in one step: a crash leaves no half successor.
	tmp, err := os.MkdirTemp(h.Dir, ".next.tmp-")
	if err != nil {
		return StepResult{}, fmt.Errorf("ca next: %w", err)
	}
	defer os.RemoveAll(tmp)
	g := &Authority{Dir: tmp, Cert: cert, Key: h.Key, Now: h.Now, ClientValidity: h.ClientValidity, signer: key, certPEM: pemCert(der), home: h}
	if err := os.MkdirAll(filepath.Join(tmp, clientsDir), 0o700); err != nil {
		return StepResult{}, fmt.Errorf("ca next: %w", err)
	}
	if err := writeKey(filepath.Join(tmp, caKeyFile), key); err != nil {
		return StepResult{}, fmt.Errorf("ca next: %w", err)
	}
	if err := writeRevoked(g, revokedList{}); err != nil {
		return StepResult{}, fmt.Errorf("ca next: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(tmp, caCertFile), g.certPEM, 0o644); err != nil {
		return StepResult{}, fmt.Errorf("ca next: %w", err)
	}
	if o.CrossSign {
		// Valid no longer than the active CA: a cross certificate cannot
		// make the old root trusted beyond its own lifetime.
		ct := *tmpl
		ct.SerialNumber, err = newSerial()
		if err != nil {
			return StepResult{}, fmt.Errorf("ca next: %w", err)
		}
		if ct.NotAfter.After(h.Cert.NotAfter) {
			ct.NotAfter = h.Cert.NotAfter
		}
		cder, err := x509.CreateCertificate(rand.Reader, &ct, h.Cert, key.Public(), h.signer)
		if err != nil {
			return StepResult{}, fmt.Errorf("ca next: cross-sign with %s: %w", cur, err)
		}
		if res.Cross, err = x509.ParseCertificate(cder); err != nil {
			return StepResult{}, fmt.Errorf("ca next: %w", err)
		}
		if err := atomicfile.Write(filepath.Join(tmp, crossCertFile), pemCert(cder), 0o644); err != nil {
			return StepResult{}, fmt.Errorf("ca next: %w", err)
		}
	}
	if err := syncPaths(filepath.Join(tmp, caKeyFile), filepath.Join(tmp, caCertFile), filepath.Join(tmp, revokedFile)); err != nil {
		return StepResult{}, fmt.Errorf("ca next: %w", err)
	}
	nd := filepath.Join(h.Dir, nextDir)
	if err := os.Rename(tmp, nd); err != nil {
		return StepResult{}, fmt.Errorf("ca next: %w", err)
	}
	undo := func(err error) (StepResult, error) {
		if rerr := os.RemoveAll(nd); rerr != nil {
			err = fmt.Errorf("%w (and removing %s failed: %v; remove it by hand)", err, nd, rerr)
		}
		return StepResult{}, err
	}
	res.Changed, err = h.rewriteTrust(o.CRLNextUpdate)
	if err != nil {
		// The trust files are as before (each write is atomic; a failed
		// rewrite is undone by rewriteTrust) once next/ is gone.
		return undo(fmt.Errorf("ca next: %w", err))
	}
	return res, nil
}

// rewriteTrust writes the trust bundle and fresh CRLs of every generation
// and reports which of the two trust files changed. On failure the trust
// files are restored.
func (h *Authority) rewriteTrust(crlNext time.Duration) ([]string, error) {
	files := TrustFiles(h.Dir)
	old := make([][]byte, len(files))
	for i, f := range files {
		old[i], _ = os.ReadFile(f)
	}
	err := h.writeTrustBundle()
	if err == nil {
		err = h.WriteCRL(crlNext)
	}
	if err != nil {
		for i, f := range files {
			if old[i] != nil {
				atomicfile.Write(f, old[i], 0o644)
			}
		}
		return nil, err
	}
	var changed []string
	for i, f := range files {
		if now, _ := os.ReadFile(f); !bytes.Equal(now, old[i]) {
			changed = append(changed, f)
		}
	}
	return changed, nil
}

// operatorID reports whether id is one of the PKI's own tools (observers,
// backends) rather than a device: promote re-issues those at once.
func operatorID(id string) bool {
	return slices.Contains(DefaultObservers(), id) || slices.Contains(DefaultBackends(), id)
}

// moves records renames so that a failed step can put everything back.
type moves [][2]string

func (m *moves) mv(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return err
	}
	*m = append(*m, [2]string{from, to})
	return nil
}

func (m *moves) undo() error {
	var errs []error
	for i := len(*m) - 1; i >= 0; i-- {
		if err := os.Rename((*m)[i][1], (*m)[i][0]); err != nil {
			errs = append(errs, err)
		}
	}
	*m = nil
	return errors.Join(errs...)
}

// Promote makes the successor the active CA: its key, revocation list and
// clients move into <pki>/, the old CA (key, clients, sub-CAs) into
// <pki>/previous/, still trusted. The trust bundle keeps both CAs, so
// nothing the broker reads changes but fresh CRLs. Operator identities
// (observers, backends) are re-issued under the new CA with their
// passwords; devices keep their old certificates until re-issued. The
// server certificate is left alone (`certs server renew --ca current`
// moves it). Promoting twice, or with no successor, is refused.
func (a *Authority) Promote(crlNext time.Duration) (StepResult, error) {
	h := a.pkiHome()
	if _, err := os.Stat(filepath.Join(h.Dir, nextDir, caCertFile)); err != nil {
		return StepResult{}, fmt.Errorf("ca promote: %w", noGeneration(h, GenNext))
	}
	if _, err := os.Stat(filepath.Join(h.Dir, previousDir)); err == nil {
		return StepResult{}, fmt.Errorf("ca promote: %s exists: the previous rollover is not finished (retire it with `mqttstack certs ca retire`)", filepath.Join(h.Dir, previousDir))
	}
	next, err := h.Generation(GenNext)
	if err != nil {
		return StepResult{}, fmt.Errorf("ca promote: %w", err)
	}
	subs, err := h.SubCAs()
	if err != nil {
		return StepResult{}, fmt.Errorf("ca promote: %w", err)
	}
	stage, err := os.MkdirTemp(h.Dir, ".previous.tmp-")
	if err != nil {
		return StepResult{}, fmt.Errorf("ca promote: %w", err)
	}
	var m moves
	fail := func(err error) (StepResult, error) {
		if uerr := m.undo(); uerr != nil {
			err = fmt.Errorf("%w; putting the files back failed too: %v (the next `mqttstack certs` command retries from %s)", err, uerr, filepath.Join(h.Dir, promoteJournalFile))
		} else {
			os.RemoveAll(stage)
			os.Remove(filepath.Join(h.Dir, promoteJournalFile))
		}
		return StepResult{}, fmt.Errorf("ca promote: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(stage, caCertFile), pemCert(h.Cert.Raw), 0o644); err != nil {
		return fail(err)
	}
	nd := filepath.Join(h.Dir, nextDir)
	steps := [][2]string{
		{filepath.Join(h.Dir, caKeyFile), filepath.Join(stage, caKeyFile)},
		{filepath.Join(h.Dir, revokedFile), filepath.Join(stage, revokedFile)},
		{filepath.Join(h.Dir, clientsDir), filepath.Join(stage, clientsDir)},
	}
	if _, err := os.Stat(filepath.Join(h.Dir, crossCertFile)); err == nil {
		// a cross certificate of an earlier rollover belongs to the old CA
		steps = append(steps, [2]string{filepath.Join(h.Dir, crossCertFile), filepath.Join(stage, crossCertFile)})
	}
	for _, s := range subs {
		steps = append(steps, [2]string{s.Dir, filepath.Join(stage, filepath.Base(s.Dir))})
	}
	steps = append(steps,
		[2]string{filepath.Join(nd, caKeyFile), filepath.Join(h.Dir, caKeyFile)},
		[2]string{filepath.Join(nd, revokedFile), filepath.Join(h.Dir, revokedFile)},
		[2]string{filepath.Join(nd, clientsDir), filepath.Join(h.Dir, clientsDir)},
	)
	if _, err := os.Stat(filepath.Join(nd, crossCertFile)); err == nil {
		steps = append(steps, [2]string{filepath.Join(nd, crossCertFile), filepath.Join(h.Dir, crossCertFile)})
	}
	// what is left of next/ (its certificate and CRL) goes aside until the
	// step succeeds
	done := filepath.Join(h.Dir, ".next.promoted-tmp")
	os.RemoveAll(done)
	steps = append(steps, [2]string{nd, done}, [2]string{stage, filepath.Join(h.Dir, previousDir)})
	// The journal lets the next Open put the files back if this process
	// dies between two renames (recoverPromote).
	jp := filepath.Join(h.Dir, promoteJournalFile)
	j := promoteJournal{Stage: rel(h.Dir, stage)}
	for _, s := range steps {
		j.Moves = append(j.Moves, [2]string{rel(h.Dir, s[0]), rel(h.Dir, s[1])})
	}
	jb, err := json.Marshal(j)
	if err != nil {
		return fail(err)
	}
	if err := atomicfile.Write(jp, jb, 0o600); err != nil {
		return fail(err)
	}
	if err := syncPaths(jp); err != nil {
		return fail(err)
	}
	for i, s := range steps {
		if i == promoteCrashAt {
			return StepResult{}, errSimulatedCrash
		}
		if err := m.mv(s[0], s[1]); err != nil {
			return fail(err)
		}
	}
	// <pki>/ now holds the successor's key; ca.crt already holds both
	// certificates (Open picks the one of the key).
	nh, err := openAuthority(h.Dir, nil) // not Open: that would undo this promote
	if err != nil {
		return fail(err)
	}
	nh.Now, nh.ClientValidity = h.Now, h.ClientValidity
	if !nh.Cert.Equal(next.Cert) {
		return fail(fmt.Errorf("after the moves %s opens as %q, not the successor %q", h.Dir, nh.Cert.Subject.CommonName, next.Cert.Subject.CommonName))
	}
	changed, err := nh.rewriteTrust(crlNext)
	if err != nil {
		return fail(err)
	}
	// From here the promotion stands; what remains is tidying up.
	if err := os.Remove(jp); err != nil {
		return fail(err)
	}
	res := StepResult{CA: nh.Cert, Changed: changed}
	os.RemoveAll(done)
	ids, err := clientIDs(filepath.Join(h.Dir, previousDir))
	if err != nil {
		return res, fmt.Errorf("ca promote: promoted, but listing the old identities failed: %w", err)
	}
	var ops []string
	for _, id := range ids {
		if operatorID(id) {
			ops = append(ops, id)
		}
	}
	// Every identity still trusted keeps its password in <pki>/clients,
	// so the broker's password files (rendered from <pki>/clients/*.pass
	// by the local stack and the Pulumi program) do not change at promote.
	if err := copyPasswords(filepath.Join(h.Dir, previousDir, clientsDir), filepath.Join(h.Dir, clientsDir)); err != nil {
		return res, fmt.Errorf("ca promote: promoted, but copying the passwords of the identities not yet re-issued failed (run promote's tidy-up again with `mqttstack certs issue --id ID`): %w", err)
	}
	nh.passDirs = nh.otherClientDirs(h.Dir)
	ir, err := nh.issueMany(context.Background(), ops, ClientOptions{})
	res.Reissued = ir.Issued
	if err != nil {
		return res, fmt.Errorf("ca promote: promoted, but re-issuing the operator identities failed (run `mqttstack certs issue --id observer …` again): %w", err)
	}
	*a = Authority{Dir: nh.Dir, Cert: nh.Cert, Key: nh.Key, Now: nh.Now, ClientValidity: nh.ClientValidity, signer: nh.signer, certPEM: nh.certPEM}
	return res, nil
}

// OldOnlyError is Retire's refusal: identities that hold only a
// certificate of the CA being retired.
type OldOnlyError struct {
	Retiring, Active string
	IDs              []string
}

func (e *OldOnlyError) Error() string {
	show := e.IDs
	more := ""
	if len(show) > 10 {
		show, more = show[:10], fmt.Sprintf(" … and %d more", len(e.IDs)-10)
	}
	return fmt.Sprintf("ca retire: %d identities hold only a %s certificate and would be locked out: %s%s (re-issue them under %s with `mqttstack certs issue --id ID` or `--from N --count K` and deliver the files, or pass --force to lock them out)",
		len(e.IDs), e.Retiring, strings.Join(show, ", "), more, e.Active)
}

// oldOnly lists the identities of the previous generation prev that have
// no certificate from the active CA h (the PKI home), sorted. Revoked
// identities are left out: they are locked out already. Retire passes
// the generation it opened for its other checks.
func (h *Authority) oldOnly(prev *Authority) ([]string, error) {
	ids, err := clientIDs(prev.Dir)
	if err != nil {
		return nil, err
	}
	rl, err := readRevoked(prev)
	if err != nil {
		return nil, err
	}
	revoked := map[string]bool{}
	for _, e := range rl.Revoked {
		revoked[e.ID] = true
	}
	var out []string
	for _, id := range ids {
		if !revoked[id] && !h.hasClient(id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// Retire removes the previous CA generation from the trust files and moves
// it to <pki>/retired/<name>-<time>/ (kept for audit). Refused when there
// is no previous generation (the only CA, or a successor not yet promoted),
// when the server certificate is still issued by the old CA, and, unless
// force, while identities hold only old certificates (*OldOnlyError).
func (a *Authority) Retire(force bool, crlNext time.Duration) (StepResult, error) {
	h := a.pkiHome()
	prev, err := h.Generation(GenPrevious)
	if err != nil {
		if _, serr := os.Stat(filepath.Join(h.Dir, nextDir, caCertFile)); serr == nil {
			return StepResult{}, fmt.Errorf("ca retire: %s is still the active CA; promote its successor first (`mqttstack certs ca promote`), then retire", GenerationName(h.Cert))
		}
		return StepResult{}, fmt.Errorf("ca retire: %s is the only CA of %s: retiring it would lock out every device and the server (start a rollover with `mqttstack certs ca next`)", GenerationName(h.Cert), h.Dir)
	}
	oldName, newName := GenerationName(prev.Cert), GenerationName(h.Cert)
	if sc, err := readCertFile(filepath.Join(h.Dir, serverCertFile)); err != nil {
		return StepResult{}, fmt.Errorf("ca retire: %w", err)
	} else if sc.CheckSignatureFrom(h.Cert) != nil {
		return StepResult{}, fmt.Errorf("ca retire: the server certificate %s is not issued by %s: devices that trust only %s could not verify the broker (renew it first: `mqttstack certs server renew --dir %s` then `certs server switch`)", filepath.Join(h.Dir, serverCertFile), newName, newName, h.Dir)
	}
	// the RSA certificate of a legacy listener, when there is one
	if lc, err := readCertFile(filepath.Join(h.Dir, legacyServerCert)); err == nil && lc.CheckSignatureFrom(h.Cert) != nil {
		return StepResult{}, fmt.Errorf("ca retire: the legacy listener's server certificate %s is not issued by %s: re-issue it under %s first", filepath.Join(h.Dir, legacyServerCert), newName, newName)
	}
	old, err := h.oldOnly(prev)
	if err != nil {
		return StepResult{}, fmt.Errorf("ca retire: %w", err)
	}
	if len(old) > 0 && !force {
		return StepResult{}, &OldOnlyError{Retiring: oldName, Active: newName, IDs: old}
	}
	if err := os.MkdirAll(filepath.Join(h.Dir, retiredDir), 0o700); err != nil {
		return StepResult{}, fmt.Errorf("ca retire: %w", err)
	}
	arch := filepath.Join(h.Dir, retiredDir, oldName+"-"+h.now().UTC().Format("20060102T150405Z"))
	var m moves
	if err := m.mv(prev.Dir, arch); err != nil {
		return StepResult{}, fmt.Errorf("ca retire: %w", err)
	}
	changed, err := h.rewriteTrust(crlNext)
	if err != nil {
		if uerr := m.undo(); uerr != nil {
			err = fmt.Errorf("%w; moving %s back failed too: %v", err, arch, uerr)
		}
		return StepResult{}, fmt.Errorf("ca retire: %w", err)
	}
	// The passwords promote kept for identities never re-issued go: those
	// identities are locked out (revoked, or --force).
	dropped, err := dropOrphanPasswords(filepath.Join(h.Dir, clientsDir))
	res := StepResult{CA: prev.Cert, Changed: changed, OldOnly: old, Archive: arch, Dropped: dropped}
	if err != nil {
		return res, fmt.Errorf("ca retire: retired, but removing the passwords of locked-out identities failed: %w", err)
	}
	return res, nil
}

// RolloverStatus describes where a PKI is in a rollover.
type RolloverStatus struct {
	Active   *x509.Certificate
	Next     *x509.Certificate // nil unless `ca next` ran
	Previous *x509.Certificate // nil unless promoted and not retired
	Cross    *x509.Certificate // the cross certificate, if any
	// Reissued counts identities of the other generation that already
	// have a certificate of the newer CA; Pending those that do not.
	Reissued, Pending int
	// Step is the next command of the rollover.
	Step string
}

// Status reports the rollover state of the PKI a belongs to.
func (a *Authority) Status() (RolloverStatus, error) {
	h := a.pkiHome()
	st := RolloverStatus{Active: h.Cert}
	gens, err := h.Generations()
	if err != nil {
		return st, err
	}
	var older, newer *Authority
	for _, g := range gens {
		switch g.Role() {
		case GenNext:
			st.Next, older, newer = g.Cert, h, g
		case GenPrevious:
			st.Previous, older, newer = g.Cert, g, h
		}
	}
	for _, d := range []string{h.Dir, filepath.Join(h.Dir, nextDir)} {
		if c, err := readCertFile(filepath.Join(d, crossCertFile)); err == nil {
			st.Cross = c
		}
	}
	switch {
	case older == nil:
		st.Step = "none in progress (start one with `certs ca next [--cross-sign]`)"
		return st, nil
	case st.Next != nil:
		st.Step = "re-issue devices in waves (`certs issue --ca next --from N --count K`), then `certs ca promote`"
	default:
		st.Step = "re-issue the remaining devices (`certs issue --from N --count K`), move the server certificate (`certs server renew`), then `certs ca retire`"
	}
	ids, err := clientIDs(older.Dir)
	if err != nil {
		return st, err
	}
	for _, id := range ids {
		if newer.hasClient(id) {
			st.Reissued++
		} else {
			st.Pending++
		}
	}
	return st, nil
}

// locate returns the newest trusted generation holding a certificate of id
// (next, then current, then previous), so exports follow a re-issue.
func (a *Authority) locate(id string) (*Authority, error) {
	if a.parent != nil || a.home != nil {
		return a, nil
	}
	gens, err := a.Generations()
	if err != nil {
		return nil, err
	}
	var names []string
	for i := len(gens) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(gens[i].Dir, clientsDir, id+".crt")); err == nil {
			return gens[i], nil
		}
		names = append(names, GenerationName(gens[i].Cert))
	}
	sort.Strings(names)
	return nil, fmt.Errorf("%s was issued by neither CA generation of %s (%s): check the id (`mqttstack certs check` lists every identity) or issue it with `mqttstack certs issue --id %s`", id, a.Dir, strings.Join(names, ", "), id)
}

func readCertFile(p string) (*x509.Certificate, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	c, err := parseCertPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return c, nil
}

// parseCertsPEM returns every certificate of a PEM file.
func parseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// UnknownIDs returns the ids, in order, that no trusted CA generation of
// the PKI has issued: a re-issue wave (`certs issue --ca next`) refuses
// them, since a typo in --prefix/--from/--count would otherwise mint new
// identities instead of moving existing ones.
func (a *Authority) UnknownIDs(ids []string) ([]string, error) {
	gens, err := a.Generations()
	if err != nil {
		return nil, err
	}
	var sets []map[string]bool
	for _, g := range gens {
		s, err := clientFiles(g.Dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		sets = append(sets, s)
	}
	var out []string
	for _, id := range ids {
		known := false
		for _, s := range sets {
			known = known || s[id+".crt"]
		}
		if !known {
			out = append(out, id)
		}
	}
	return out, nil
}

// promoteJournalFile records an unfinished promote's renames (relative to
// the PKI directory).
const promoteJournalFile = ".promote-journal.json"

type promoteJournal struct {
	Stage string      `json:"stage"`
	Moves [][2]string `json:"moves"`
}

// promoteCrashAt is a test hook: Promote stops (as if the process died)
// before this rename. -1 = never.
var promoteCrashAt = -1

var errSimulatedCrash = errors.New("simulated crash")

func rel(base, p string) string {
	r, err := filepath.Rel(base, p)
	if err != nil {
		return p
	}
	return r
}

// recoverPromote undoes the renames of a promote that did not finish (the
// process died): every move whose target exists and whose source does not
// is reversed, newest first, so the PKI is as before the promote. Run
// `certs ca promote` again afterwards.
func recoverPromote(dir string) (bool, error) {
	jp := filepath.Join(dir, promoteJournalFile)
	b, err := os.ReadFile(jp)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var j promoteJournal
	if err := json.Unmarshal(b, &j); err != nil {
		return false, fmt.Errorf("%s: %w (an interrupted promote left it; compare %s with %s/next and %s/previous by hand)", jp, err, dir, dir, dir)
	}
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	for i := len(j.Moves) - 1; i >= 0; i-- {
		from, to := filepath.Join(dir, j.Moves[i][0]), filepath.Join(dir, j.Moves[i][1])
		if exists(to) && !exists(from) {
			if err := os.Rename(to, from); err != nil {
				return false, fmt.Errorf("undo the interrupted promote (%s): %w", jp, err)
			}
		}
	}
	if j.Stage != "" && !strings.Contains(j.Stage, "..") {
		os.RemoveAll(filepath.Join(dir, j.Stage))
	}
	if err := os.Remove(jp); err != nil {
		return false, err
	}
	return true, syncPaths(dir)
}

// copyPasswords copies <id>.pass from src to dst for every id that has
// none in dst (0600, atomically).
func copyPasswords(src, dst string) error {
	have, err := clientFiles(filepath.Dir(dst))
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".pass") || strings.HasPrefix(n, ".") || have[n] {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(dst, n), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// dropOrphanPasswords removes <id>.pass files without an <id>.crt in dir
// and returns their ids, sorted.
func dropOrphanPasswords(dir string) ([]string, error) {
	have, err := clientFiles(filepath.Dir(dir))
	if err != nil {
		return nil, err
	}
	var out []string
	for n := range have {
		id, ok := strings.CutSuffix(n, ".pass")
		if !ok || strings.HasPrefix(n, ".") || have[id+".crt"] {
			continue
		}
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			return out, err
		}
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}
