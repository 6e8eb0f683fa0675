package security

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/host"
)

// NegativeKind names a CI-only client identity that a hardened broker must
// refuse (or, for CN policy checks, must neutralise).
type NegativeKind string

// The negative identities (docs/SECURITY.md §2).
const (
	NegForeign NegativeKind = "foreign" // CN of a real device, signed by a throwaway CA
	// NegForeignWSS has the CN of a WSS identity (the password identity),
	// signed by a throwaway CA: nginx's CN map would route it to that
	// identity's listener if nginx did not verify it (WEB-05 (b)).
	NegForeignWSS NegativeKind = "foreign-wss"
	NegSelfSigned NegativeKind = "selfsigned" // CN of a real device, self-signed
	NegExpired    NegativeKind = "expired"
	NegNotYet     NegativeKind = "notyet"
	NegRevoked    NegativeKind = "revoked"
	NegServerAuth NegativeKind = "serverauth" // EKU serverAuth only
	NegWildcardCN NegativeKind = "cn-plus-hash"
	NegSlashCN    NegativeKind = "cn-slash" // CN "<device>/sub" (CRT-07)
	// NegRevokedWSS has the CN of a WSS identity and is revoked (WEB-08);
	// NegWSSGood is its valid twin (not negative: WEB-08's control).
	NegRevokedWSS NegativeKind = "revoked-wss"
	NegWSSGood    NegativeKind = "wss-good"
	// NegRevokedPassword is revokedPwID, an identity of the root CA (not
	// the CI sub-CA: only the root's identities have their password in the
	// broker's password file) whose certificate is revoked, with its
	// valid twin goodPwID (AUTH-05).
	NegRevokedPassword NegativeKind = "revoked-password"
)

// AUTH-05's identities of the root CA: the revoked one and its valid twin,
// issued together, so the twin's line in the broker's password file shows
// that the file was rendered after both existed.
const (
	revokedPwID = "sec-ci-revoked-pw"
	goodPwID    = "sec-ci-pw-good"
)

// passwordRefresher is a Host that rewrites the broker's password files
// from the PKI and reloads the broker (infra/local's Host does).
type passwordRefresher interface {
	RefreshPasswords(ctx context.Context) error
}

// preparePasswordNegatives issues revokedPwID and goodPwID under the root
// CA (idempotent) and revokes revokedPwID in every trusted generation
// unless it is already. On the local stack the stack itself then rewrites
// the broker's password files from the PKI (the Host's RefreshPasswords,
// which reloads mosquitto): what they hold is the product's rule, not the
// suite's. A deployed broker holds the files the last `deploy up` rendered,
// so the identities must exist before it (the suite's preparation pass);
// an identity already revoked is reused as it is, since revoking it again
// would only rewrite the CRL.
func (e *Env) preparePasswordNegatives(ctx context.Context) error {
	if _, err := e.root.IssueClients(ctx, []string{revokedPwID, goodPwID}); err != nil {
		return fmt.Errorf("issue: %w", err)
	}
	rv, err := certs.RevokedIDs(e.T.PKIDir, []string{revokedPwID})
	if err != nil {
		return err
	}
	if !rv[revokedPwID] {
		if err := e.root.Revoke(revokedPwID); err != nil {
			return fmt.Errorf("revoke %s: %w", revokedPwID, err)
		}
	}
	if e.T.Local == nil {
		return nil
	}
	r, ok := e.host.(passwordRefresher)
	if !ok {
		// not fatal: AUTH-05's control shows whether the files already
		// hold the twin
		fmt.Fprintf(e.opts.Log, "security: the local stack's password files cannot be rewritten here: %v\n", errNoHost)
		return nil
	}
	if err := r.RefreshPasswords(ctx); err != nil {
		return fmt.Errorf("rewrite the local stack's password files: %w", err)
	}
	return nil
}

// ciSubCA is the name of the sub-CA the suite's negative identities come
// from: never the production CA itself (docs/SECURITY.md §2).
const ciSubCA = "sec-ci"

// prepareNegatives makes the negative identities. Failures are kept per
// kind; the checks that need them report Inconclusive.
func (e *Env) prepareNegatives(ctx context.Context, kinds map[NegativeKind]bool) error {
	victim := actorName("CRT-02", "victim")
	if _, err := e.root.IssueClients(ctx, []string{victim}); err != nil {
		return fmt.Errorf("security: issue %s: %w", victim, err)
	}
	if kinds[NegForeign] {
		if c, err := foreignCert(victim, false); err != nil {
			e.negErr[NegForeign] = err
		} else {
			e.neg[NegForeign] = c
		}
	}
	if kinds[NegSelfSigned] {
		if c, err := foreignCert(victim, true); err != nil {
			e.negErr[NegSelfSigned] = err
		} else {
			e.neg[NegSelfSigned] = c
		}
	}
	if kinds[NegForeignWSS] {
		if c, err := foreignCert(e.opts.PasswordIdentity, false); err != nil {
			e.negErr[NegForeignWSS] = err
		} else {
			e.neg[NegForeignWSS] = c
		}
	}
	if kinds[NegRevokedPassword] {
		if err := e.preparePasswordNegatives(ctx); err != nil {
			e.negErr[NegRevokedPassword] = err
		}
	}
	// inMemory: kinds that need no CI sub-CA
	inMemory := func(k NegativeKind) bool {
		return k == NegForeign || k == NegSelfSigned || k == NegForeignWSS || k == NegRevokedPassword
	}
	needSub := false
	for k := range kinds {
		needSub = needSub || !inMemory(k)
	}
	if !needSub {
		return nil
	}
	sub, err := e.negAuthority()
	if err != nil {
		for k := range kinds {
			if !inMemory(k) {
				e.negErr[k] = err
			}
		}
		return nil
	}
	e.subCADir = sub.Dir
	// The sub-CA's own valid identity is the positive control of every
	// CA-issued negative: if it is refused, a refusal of the negative proves
	// nothing about the property under test.
	e.subCAGood = "sec-ci-good"
	if err := sub.IssueClient(e.subCAGood, certs.ClientOptions{}); err != nil {
		return fmt.Errorf("security: issue %s under the CI sub-CA: %w", e.subCAGood, err)
	}
	now := time.Now()
	issue := func(k NegativeKind, id string, o certs.ClientOptions) {
		if !kinds[k] {
			return
		}
		if err := sub.IssueClient(id, o); err != nil {
			e.negErr[k] = err
			return
		}
		c, err := e.loadPair(filepath.Join(sub.Dir, "clients"), id)
		if err != nil {
			e.negErr[k] = err
			return
		}
		e.neg[k] = c
	}
	issue(NegExpired, "sec-ci-expired", certs.ClientOptions{NotBefore: now.Add(-72 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
	issue(NegNotYet, "sec-ci-notyet", certs.ClientOptions{NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(72 * time.Hour)})
	issue(NegServerAuth, "sec-ci-serverauth", certs.ClientOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	issue(NegWildcardCN, "sec-ci-wild", certs.ClientOptions{RawCN: "sec+#"})
	issue(NegSlashCN, "sec-ci-slash", certs.ClientOptions{RawCN: actorName("CRT-07", "a") + "/sub"})
	// A deployed broker cannot be made to reload here: its CRL is the one
	// deployed after the preparation pass. Re-issuing a revoked identity
	// would give it a new serial that CRL has never seen, so an existing
	// one is reused as it is.
	revoked := func(k NegativeKind, id string, o certs.ClientOptions) {
		if !kinds[k] {
			return
		}
		crt := filepath.Join(sub.Dir, "clients", id+".crt")
		if _, err := os.Stat(crt); e.T.Local == nil && err == nil {
			if c, err := e.loadPair(filepath.Join(sub.Dir, "clients"), id); err != nil {
				e.negErr[k] = err
			} else {
				e.neg[k] = c
			}
			return
		}
		issue(k, id, o)
		if e.negErr[k] == nil {
			if err := sub.Revoke(id); err != nil {
				e.negErr[k] = fmt.Errorf("revoke: %w", err)
			}
		}
	}
	revoked(NegRevoked, "sec-ci-revoked", certs.ClientOptions{})
	// WEB-08: a revoked certificate whose CN is a WSS identity (the
	// password identity), and its valid twin, the control that nginx
	// accepts the sub-CA's chain for that CN at all.
	revoked(NegRevokedWSS, "sec-ci-revoked-wss", certs.ClientOptions{RawCN: e.opts.PasswordIdentity})
	issue(NegWSSGood, "sec-ci-wss-good", certs.ClientOptions{RawCN: e.opts.PasswordIdentity})
	// The broker's crlfile must hold a CRL for every issuer it sees
	// (OpenSSL CRL_CHECK fails a leaf whose issuer has no CRL, with the
	// alert unknown_ca), so the combined CRL is rewritten for the sub-CA and
	// the broker reloads it before any check runs.
	if err := sub.WriteCRL(certs.DefaultCRLNextUpdate); err != nil {
		return fmt.Errorf("security: write CRL: %w", err)
	}
	good, err := e.loadPair(filepath.Join(sub.Dir, "clients"), e.subCAGood)
	if err != nil {
		return err
	}
	return e.reloadCRL(ctx, good, e.neg[NegRevoked], kinds[NegRevoked] && e.negErr[NegRevoked] == nil)
}

// reloadCRL has the broker re-read its CRL (SIGHUP reloads cert, key and
// CRL on 2.0.11) and waits until the sub-CA's valid identity is accepted
// and, when asked, the revoked one refused, so that checks measure the CRL
// and not the race with the reload.
func (e *Env) reloadCRL(ctx context.Context, good, revoked tls.Certificate, wantRevoked bool) error {
	if e.T.Local == nil {
		// A deployed broker reads the CRL deployed with it, not this PKI's:
		// the CI sub-CA's CRL must already be there (the positive controls
		// report it if it is not).
		return nil
	}
	if e.host == nil {
		// not fatal: the checks' positive controls (sub-CA identities
		// refused with unknown_ca) report what a stale CRL breaks
		fmt.Fprintf(e.opts.Log, "security: the local broker and nginx cannot reload the CI sub-CA's CRL: %v\n", errNoHost)
		return nil
	}
	for _, d := range []host.Daemon{host.Mosquitto, host.Nginx} {
		if err := e.reload(ctx, d); err != nil {
			return fmt.Errorf("security: reload the CRL: %w", err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ok := e.certAttempt(ctx, []tls.Certificate{good}, 0).accepted()
		if ok && wantRevoked {
			ok = !e.certAttempt(ctx, []tls.Certificate{revoked}, 0).accepted()
		}
		if ok {
			return nil
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// negAuthority opens (creating on first use) the CI sub-CA below the PKI.
func (e *Env) negAuthority() (*certs.Authority, error) {
	return e.root.SubCA(ciSubCA)
}

// foreignCert makes a client certificate with CN cn that the private CA did
// not sign: either from a throwaway CA, or self-signed.
func foreignCert(cn string, selfSigned bool) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	parent, signer := leaf, key
	var chain [][]byte
	if !selfSigned {
		caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return tls.Certificate{}, err
		}
		ca := &x509.Certificate{
			SerialNumber: big.NewInt(now.UnixNano() + 1),
			Subject:      pkix.Name{CommonName: "throwaway foreign CA"},
			NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
		if err != nil {
			return tls.Certificate{}, err
		}
		ca, _ = x509.ParseCertificate(caDER)
		parent, signer = ca, caKey
		chain = append(chain, caDER)
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, parent, &key.PublicKey, signer)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: append([][]byte{der}, chain...), PrivateKey: key}, nil
}

// attempt is what happened when a client presented a certificate.
type attempt struct {
	handshakeErr error
	readErr      error
	connack      int // CONNACK code, -1 when none arrived
}

func (a attempt) accepted() bool { return a.connack == 0 }

// alert is the TLS alert the broker sent, or -1.
func (a attempt) alert() int {
	for _, err := range []error{a.handshakeErr, a.readErr} {
		if n, ok := alertCode(err); ok {
			return int(n)
		}
	}
	return -1
}

func (a attempt) String() string {
	switch {
	case a.handshakeErr != nil:
		return fmt.Sprintf("handshake refused: %v", a.handshakeErr)
	case a.connack >= 0:
		return fmt.Sprintf("handshake ok, CONNACK %d", a.connack)
	default:
		return fmt.Sprintf("handshake ok, no CONNACK: %v", a.readErr)
	}
}

// certAttempt presents chain (none when empty) to the mTLS listener and
// sends a 3.1.1 CONNECT. With TLS 1.3 the broker's rejection arrives on the
// first read, so the verdict is "no CONNACK", not "handshake failed".
func (e *Env) certAttempt(ctx context.Context, chain []tls.Certificate, maxVersion uint16) attempt {
	cfg := e.baseTLS()
	cfg.Certificates = chain
	cfg.MaxVersion = maxVersion
	conn, err := e.dialTLS(ctx, cfg)
	if err != nil {
		return attempt{handshakeErr: err, connack: -1}
	}
	c := newRawConn(conn)
	defer c.Close()
	rc, _, err := c.connack(rawConnect{ClientID: "sec-probe-" + nonce()[:6], KeepAlive: 30})
	if err != nil {
		return attempt{readErr: err, connack: -1}
	}
	return attempt{connack: int(rc)}
}

// alertCode extracts the number of a TLS alert received from the peer.
// crypto/tls reports it as *net.OpError{Op: "remote error"} wrapping an
// unexported uint8 type, so reflection is the only way to the number.
func alertCode(err error) (uint8, bool) {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil {
		v := reflect.ValueOf(op.Err)
		if v.Kind() == reflect.Uint8 {
			return uint8(v.Uint()), true
		}
	}
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return uint8(ae), true
	}
	return 0, false
}
