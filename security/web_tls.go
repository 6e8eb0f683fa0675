package security

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"golang.org/x/crypto/ocsp"
)

// runWEB08 presents, on nginx's /mqtt, a revoked certificate whose CN is a
// WSS identity (the suite's password identity), with that identity's
// correct password: only the CRL stands between it and a login. The
// control is its valid twin from the same CI sub-CA, which must log in
// (nginx accepts the sub-CA's chain for that CN at all).
func runWEB08(ctx context.Context, e *Env) Outcome {
	if e.T.WSSURL == "" {
		return skipped("target offers no wss transport")
	}
	for _, k := range []NegativeKind{NegRevokedWSS, NegWSSGood} {
		if err := e.negErr[k]; err != nil {
			return inconclusive("could not prepare the %s identity: %v", k, err)
		}
	}
	user, pw, err := e.pwCreds()
	if err != nil {
		return inconclusive("%v", err)
	}
	e.pwMu.Lock()
	defer e.pwMu.Unlock()
	login := func(cert tls.Certificate) (code byte, status int, err error) {
		cfg := presenting(&tls.Config{RootCAs: e.webRoots(), ServerName: e.T.ServerName, MinVersion: tls.VersionTLS12}, cert)
		c, st, err := dialWS(ctx, e.T.WSSURL, cfg)
		if err != nil {
			return 0, st, err
		}
		defer c.Close()
		code, _, err = c.connack(rawConnect{ClientID: user, Username: &user, Password: &pw, KeepAlive: 30})
		return code, 101, err
	}
	code, st, err := login(e.neg[NegRevokedWSS])
	if st == 101 {
		return fail("a REVOKED certificate with CN %s was let through to the broker by nginx (HTTP 101, CONNACK %d %v): nginx does not check the CRL (ssl_crl) or loads a stale one", user, code, err)
	}
	refused := fmt.Sprintf("revoked CN=%s certificate + its password: HTTP %d", user, st)
	code, st, err = login(e.neg[NegWSSGood])
	if err != nil || code != 0 {
		hint := ""
		if e.T.Local == nil {
			hint = " (a deployed nginx must load the CRL that holds the CI sub-CA's: deploy <pki>/ca.crl and reload)"
		}
		return inconclusive("%s; positive control: its valid twin from the same CI sub-CA: HTTP %d CONNACK %d %v%s", refused, st, code, err, hint)
	}
	return pass("%s; its valid twin from the same CI sub-CA: HTTP 101, CONNACK 0", refused)
}

// resumed makes two TLS handshakes with version v sharing one client
// session cache and reports whether the second resumed the first.
func resumed(ctx context.Context, addr string, base func() *tls.Config, v uint16) (bool, tls.ConnectionState, error) {
	cache := tls.NewLRUClientSessionCache(4)
	var first tls.ConnectionState
	for i := 0; i < 2; i++ {
		cfg := base()
		cfg.MinVersion, cfg.MaxVersion, cfg.ClientSessionCache = v, v, cache
		d := &tls.Dialer{Config: cfg}
		dctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		c, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err != nil {
			return false, first, err
		}
		tc := c.(*tls.Conn)
		// TLS 1.3 tickets arrive after the handshake: a short read lets
		// the client take them (the server sends nothing else).
		_ = tc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, _ = tc.Read(make([]byte, 1))
		st := tc.ConnectionState()
		tc.Close()
		if i == 0 {
			first = st
			continue
		}
		return st.DidResume, first, nil
	}
	return false, first, nil
}

// runWEB09 probes nginx's session resumption and OCSP by handshake:
// TLS 1.2 resumption from a session ticket must fail (ssl_session_tickets
// off: one ticket key, held as long as the workers live, would decrypt
// every recorded TLS 1.2 session, so tickets defeat forward secrecy), and
// a stapled OCSP response, if any, must be a valid "good" one for the leaf.
// TLS 1.3 resumption (through ssl_session_cache, ECDHE on every
// resumption) is recorded.
func runWEB09(ctx context.Context, e *Env) Outcome {
	addr, _, err := e.webAddrs()
	if err != nil {
		return skipped("%v", err)
	}
	base := func() *tls.Config {
		return &tls.Config{RootCAs: e.webRoots(), ServerName: e.T.ServerName, MinVersion: tls.VersionTLS12}
	}
	r12, st, err := resumed(ctx, addr, base, tls.VersionTLS12)
	if err != nil {
		return inconclusive("TLS 1.2 handshake: %v", err)
	}
	if r12 {
		return fail("TLS 1.2 session RESUMED from a session ticket: ssl_session_tickets is on (forward secrecy then rests on the ticket key)")
	}
	r13, _, err := resumed(ctx, addr, base, tls.VersionTLS13)
	if err != nil {
		return inconclusive("TLS 1.3 handshake: %v", err)
	}
	cache := "TLS 1.3 resumption through the session cache (with ECDHE)"
	if !r13 {
		cache = "no TLS 1.3 resumption (no session cache: every handshake is full)"
	}
	staple := "no OCSP staple (the private CA publishes a CRL; revocation is CRT-05/09, WEB-08)"
	if len(st.OCSPResponse) > 0 {
		if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) < 2 {
			return fail("an OCSP response is stapled but the chain has no issuer to check it against")
		}
		leaf, issuer := st.VerifiedChains[0][0], st.VerifiedChains[0][1]
		r, err := ocsp.ParseResponseForCert(st.OCSPResponse, leaf, issuer)
		if err != nil {
			return fail("stapled OCSP response does not verify: %v", err)
		}
		if r.Status != ocsp.Good || (!r.NextUpdate.IsZero() && r.NextUpdate.Before(time.Now())) {
			return fail("stapled OCSP response: status %d, next update %s", r.Status, r.NextUpdate.Format(time.RFC3339))
		}
		staple = fmt.Sprintf("OCSP staple good until %s", r.NextUpdate.Format(time.DateOnly))
	}
	return pass("TLS 1.2: the second handshake did not resume (no session ticket); %s; %s", cache, staple)
}
