package security

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/host"
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

// runWEB09 probes nginx's session resumption and OCSP by handshake: no
// session may be resumed, under TLS 1.2 (a session ticket: one ticket key,
// held as long as the workers live, would decrypt every recorded session,
// so tickets defeat forward secrecy) nor under TLS 1.3 (the session cache
// survives a reload and a resumed session skips the CRL: WEB-10); a
// stapled OCSP response, if any, must be a valid "good" one for the leaf.
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
	if r13 {
		return fail("TLS 1.3 session RESUMED: ssl_session_cache is on (a resumed session skips the CRL, and the cache survives a reload: WEB-10)")
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
	return pass("the second handshake resumed neither under TLS 1.2 (no ticket) nor TLS 1.3 (no session cache); %s", staple)
}

// runWEB10 revokes a WSS identity that holds a TLS session with nginx:
// a sub-CA certificate with the password identity's CN gets through /mqtt
// (HTTP 101) over TLS 1.3 with a client session cache; it is revoked, the
// CRL rewritten and nginx reloaded; the same client, offering its cached
// session, must not get through again. A session resumed from nginx's
// cache (which survives a reload) keeps the verification result of the
// handshake before the revocation.
func runWEB10(ctx context.Context, e *Env) Outcome {
	if e.T.WSSURL == "" {
		return skipped("target offers no wss transport")
	}
	if e.T.Local == nil {
		return skipped("revokes an identity mid-run: only the local stack's nginx loads the PKI's CRL directly (a deployed one loads the CRL deployed with it)")
	}
	if e.host == nil {
		return needsHost("reloading nginx's CRL")
	}
	sub, id, pair, err := e.toRevoke(ctx, "sec-web10-", certs.ClientOptions{RawCN: e.opts.PasswordIdentity}, host.Nginx)
	if err != nil {
		return inconclusive("%v", err)
	}
	cache := tls.NewLRUClientSessionCache(4)
	upgrade := func() (int, bool, error) {
		cfg := presenting(&tls.Config{RootCAs: e.webRoots(), ServerName: e.T.ServerName,
			MinVersion: tls.VersionTLS13, ClientSessionCache: cache}, pair)
		c := &http.Client{Timeout: 8 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
		req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(e.T.WSSURL, "/"), nil)
		if err != nil {
			return 0, false, err
		}
		req.URL.Scheme = "https"
		req.Host = e.T.ServerName
		for k, v := range wsUpgradeHeaders {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, false, err
		}
		resp.Body.Close()
		return resp.StatusCode, resp.TLS != nil && resp.TLS.DidResume, nil
	}
	st, _, err := upgrade()
	if err != nil || st != http.StatusSwitchingProtocols {
		return inconclusive("positive control: %s (CN %s) before its revocation: HTTP %d %v", id, e.opts.PasswordIdentity, st, err)
	}
	// a second upgrade shows whether nginx offers resumption at all
	st2, res2, err := upgrade()
	if err != nil {
		return inconclusive("second upgrade before the revocation: %v", err)
	}
	if err := sub.Revoke(id); err != nil {
		return inconclusive("revoke: %v", err)
	}
	if err := sub.WriteCRL(certs.DefaultCRLNextUpdate); err != nil {
		return inconclusive("write CRL: %v", err)
	}
	if err := e.reload(ctx, host.Nginx); err != nil {
		return inconclusive("%v", err)
	}
	st3, res3, err := upgrade()
	if err == nil && st3 == http.StatusSwitchingProtocols {
		how := "a full handshake"
		if res3 {
			how = "a RESUMED TLS session (ssl_session_cache: the session kept its pre-revocation verification)"
		}
		return fail("after revoke + CRL + nginx reload, the revoked certificate with CN %s still got HTTP 101 on /mqtt through %s", e.opts.PasswordIdentity, how)
	}
	after := fmt.Sprintf("HTTP %d", st3)
	if err != nil {
		after = err.Error()
	}
	return pass("before the revocation HTTP 101 (again: HTTP %d, resumed=%v); after revoke + CRL + nginx reload, the same client with its cached session: %s", st2, res2, after)
}

// wsUpgradeHeaders make a GET a WebSocket upgrade offering mqtt.
var wsUpgradeHeaders = map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
	"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "mqtt"}
