package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxIDLen is the longest client id accepted.
const MaxIDLen = 64

// ValidateID checks a client id against the naming policy: 1–64 letters,
// digits, '-' or '_'. The id becomes the certificate CN, which Mosquitto
// uses verbatim as the MQTT username and the ACL key (%u): a '/' would
// reach into another device's subtree, '+' or '#' make every ACL check
// fail, and anything else is not worth the risk.
func ValidateID(id string) error {
	if id == "" {
		return errors.New("id is empty (use 1-64 letters, digits, '-' or '_')")
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("id %.20q… is %d bytes long (use 1-%d letters, digits, '-' or '_')", id, len(id), MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			continue
		case c == '/':
			return fmt.Errorf("id %q contains '/': the CN is the ACL key devices/%%u/#, so it would reach into another subtree (use letters, digits, '-' or '_')", id)
		case c == '+' || c == '#':
			return fmt.Errorf("id %q contains MQTT wildcard %q: Mosquitto denies every topic to such a username (use letters, digits, '-' or '_')", id, string(c))
		case c == 0:
			return fmt.Errorf("id %q contains a NUL byte (use letters, digits, '-' or '_')", id)
		default:
			return fmt.Errorf("id %q contains %q at byte %d (use letters, digits, '-' or '_')", id, string([]byte{c}), i)
		}
	}
	return nil
}

// DeviceIDs returns n device ids prefix+number for the numbers from,
// from+1, … zero-padded to width max(5, digits(from+n-1)): with from=1
// that is dev-00001 … dev-N. The CLI (`certs issue --count N --prefix`) and
// the fleet both use it, so they agree on names. A shard that takes a
// slice of a larger fleet must use DeviceIDsWidth with the fleet's total.
func DeviceIDs(prefix string, from, n int) []string {
	return DeviceIDsWidth(prefix, from, n, from+n-1)
}

// DeviceIDsWidth is DeviceIDs with the padding width taken from total (the
// largest number in the whole fleet), so every shard names devices alike.
func DeviceIDsWidth(prefix string, from, n, total int) []string {
	if n <= 0 {
		return nil
	}
	w := max(5, len(strconv.Itoa(max(total, from+n-1))))
	ids := make([]string, n)
	for i := range n {
		s := strconv.Itoa(from + i)
		for len(s) < w {
			s = "0" + s
		}
		ids[i] = prefix + s
	}
	return ids
}

// ClientOptions overrides what IssueClient puts in one certificate. Zero
// values select the defaults (valid from now for ClientValidity, EKU
// clientAuth, CN = id).
type ClientOptions struct {
	NotBefore   time.Time
	NotAfter    time.Time
	ExtKeyUsage []x509.ExtKeyUsage
	// RawCN replaces the CN without ValidateID. Only for negative test
	// identities (CN "devA/sub", "dev+#"); the files are still named by the
	// (validated) id.
	RawCN string
	// Key is the client key's type; "" is the CA's own type. A board whose
	// TLS stack has no ECDSA (modems, BearSSL "less secure") gets an RSA-2048
	// key under an ECDSA CA this way (package devices).
	Key KeyType
}

func (o ClientOptions) isDefault() bool {
	return o.NotBefore.IsZero() && o.NotAfter.IsZero() && o.ExtKeyUsage == nil && o.RawCN == "" && o.Key == ""
}

// IssueResult says which ids IssueClients created and which already existed.
type IssueResult struct {
	Issued []string
	Kept   []string
}

// IssueClients issues a client certificate, key and password for every id
// that does not have a valid one from this CA yet. It validates every id
// before issuing any, runs GOMAXPROCS workers, and stops early when ctx is
// cancelled (identities already written stay valid).
func (a *Authority) IssueClients(ctx context.Context, ids []string) (IssueResult, error) {
	var bad []error
	for _, id := range ids {
		if err := ValidateID(id); err != nil {
			bad = append(bad, err)
		}
	}
	if len(bad) > 0 {
		if len(bad) > 10 {
			bad = append(bad[:10], fmt.Errorf("… and %d more", len(bad)-10))
		}
		return IssueResult{}, fmt.Errorf("issue clients: nothing issued: %w", errors.Join(bad...))
	}
	return a.issueMany(ctx, ids, ClientOptions{})
}

// IssueClient issues (or re-issues, replacing the files) one client
// identity with overrides, e.g. an expired or serverAuth-only certificate
// for a negative test. The id names the files and must pass ValidateID.
func (a *Authority) IssueClient(id string, o ClientOptions) error {
	if err := ValidateID(id); err != nil {
		return fmt.Errorf("issue client: %w", err)
	}
	if o.Key != "" && o.Key != ECDSAP256 && o.Key != RSA2048 {
		return fmt.Errorf("issue client %s: key type %q not supported (use %q or %q)", id, o.Key, ECDSAP256, RSA2048)
	}
	if err := os.MkdirAll(filepath.Join(a.Dir, clientsDir), 0o700); err != nil {
		return fmt.Errorf("issue client %s: %w", id, err)
	}
	if err := a.issueOne(id, o, nil); err != nil {
		return fmt.Errorf("issue client %s: %w", id, err)
	}
	return nil
}

func (a *Authority) issueMany(ctx context.Context, ids []string, o ClientOptions) (IssueResult, error) {
	if err := os.MkdirAll(filepath.Join(a.Dir, clientsDir), 0o700); err != nil {
		return IssueResult{}, fmt.Errorf("issue clients: %w", err)
	}
	// Duplicates would race two workers on one file name.
	seen := make(map[string]bool, len(ids))
	uniq := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	// One directory listing instead of three stats per id: on a fresh
	// PKI most ids have no files at all.
	present, err := clientFiles(a.Dir)
	if err != nil {
		return IssueResult{}, fmt.Errorf("issue clients: %w", err)
	}
	var bulk *bulkSigner
	if o.isDefault() {
		bulk = a.newBulkSigner()
	}
	issued := make([]bool, len(uniq))
	errs := make([]error, len(uniq))
	work := make(chan int)
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(uniq))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				id := uniq[i]
				if present[id+".crt"] && a.hasClient(id) {
					continue
				}
				if err := a.issueOne(id, o, bulk); err != nil {
					errs[i] = fmt.Errorf("client %s: %w", id, err)
					continue
				}
				issued[i] = true
			}
		}()
	}
	var ctxErr error
feed:
	for i := range uniq {
		select {
		case work <- i:
		case <-ctx.Done():
			ctxErr = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()

	var res IssueResult
	var failed []error
	for i, id := range uniq {
		switch {
		case issued[i]:
			res.Issued = append(res.Issued, id)
		case errs[i] != nil:
			failed = append(failed, errs[i])
		case ctxErr == nil || a.hasClient(id):
			res.Kept = append(res.Kept, id)
		}
	}
	sort.Strings(res.Kept)
	if len(failed) > 0 {
		n := len(failed)
		if n > 5 {
			failed = append(failed[:5], fmt.Errorf("… and %d more", n-5))
		}
		return res, fmt.Errorf("issue clients: %d failed: %w", n, errors.Join(failed...))
	}
	if ctxErr != nil {
		return res, fmt.Errorf("issue clients: stopped after %d issued: %w", len(res.Issued), ctxErr)
	}
	return res, nil
}

// hasClient reports whether id already has a complete identity issued by
// this CA. A certificate of another CA (left over from an older PKI) or a
// missing key or password counts as absent, so it is re-issued.
func (a *Authority) hasClient(id string) bool {
	base := filepath.Join(a.Dir, clientsDir, id)
	for _, ext := range []string{".key", ".pass"} {
		if _, err := os.Stat(base + ext); err != nil {
			return false
		}
	}
	data, err := os.ReadFile(base + ".crt")
	if err != nil {
		return false
	}
	c, err := parseCertPEM(data)
	if err != nil {
		return false
	}
	return bytes.Equal(c.RawIssuer, a.Cert.RawSubject) &&
		(len(a.Cert.SubjectKeyId) == 0 || bytes.Equal(c.AuthorityKeyId, a.Cert.SubjectKeyId))
}

// issueOne writes key, password and certificate of id. The certificate is
// written last: its presence marks a complete identity (hasClient).
func (a *Authority) issueOne(id string, o ClientOptions, bulk *bulkSigner) error {
	kt := a.Key
	if o.Key != "" {
		kt = o.Key
	}
	key, err := newKey(kt)
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	now := a.now()
	nb, na := o.NotBefore, o.NotAfter
	if nb.IsZero() {
		nb = now.Add(-backdate)
	}
	if na.IsZero() {
		v := a.ClientValidity
		if v <= 0 {
			v = DefaultClientValidity
		}
		na = now.Add(v)
	}
	eku := o.ExtKeyUsage
	if eku == nil {
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	cn := id
	if o.RawCN != "" {
		cn = o.RawCN
	}
	var der []byte
	if bulk != nil && o.isDefault() {
		der, err = bulk.sign(serial, cn, nb, na, key.Public().(*ecdsa.PublicKey))
	} else {
		der, err = x509.CreateCertificate(rand.Reader, clientTemplate(serial, cn, nb, na, eku), a.Cert, key.Public(), a.signer)
	}
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	base := filepath.Join(a.Dir, clientsDir, id)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	if err := writeFileAtomic(base+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	pw, err := a.password(id)
	if err != nil {
		return err
	}
	// The key goes through a temporary file and a rename. The password and
	// the certificate are written in place, which saves a third of the
	// directory operations of a bulk issue: that is safe because the
	// certificate is written last and hasClient parses it, so a crash
	// that leaves a partial .pass or .crt leads to a re-issue, never to a
	// kept half identity.
	if err := writeFileInPlace(base+".pass", []byte(pw+"\n"), 0o600); err != nil {
		return err
	}
	crt := append(pemCert(der), a.chainPEM...)
	return writeFileInPlace(base+".crt", crt, 0o644)
}

// password returns the identity's password from another CA generation
// (a re-issue keeps it: the password file on the broker stays valid), or a
// new one.
func (a *Authority) password(id string) (string, error) {
	for _, d := range a.passDirs {
		if b, err := os.ReadFile(filepath.Join(d, id+".pass")); err == nil {
			if pw := strings.TrimSpace(string(b)); pw != "" {
				return pw, nil
			}
		}
	}
	return newPassword()
}

// clientFiles returns the set of file names in dir/clients.
func clientFiles(dir string) (map[string]bool, error) {
	f, err := os.Open(filepath.Join(dir, clientsDir))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	return set, nil
}

// newPassword returns 24 random bytes, base64url: 192 bits, and safe in a
// Mosquitto password file, a shell and a URL.
func newPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// clientIDs lists the ids with a certificate in dir/clients, sorted.
func clientIDs(dir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(dir, clientsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		n := e.Name()
		if filepath.Ext(n) == ".crt" && n[0] != '.' {
			ids = append(ids, n[:len(n)-len(".crt")])
		}
	}
	sort.Strings(ids)
	return ids, nil
}
