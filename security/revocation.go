package security

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/host"
)

// Revocation does not reach live sessions on Mosquitto 2.0.11 (F10): a
// reload (SIGHUP) re-reads the CRL for new handshakes only, and its own
// test 08-ssl-hup-disconnect asserts that certificate clients stay
// connected. What ends one identity's sessions without restarting the
// broker for everyone is a takeover: with use_identity_as_username and
// use_username_as_clientid the client id is the certificate's CN, so a
// connection with a fresh, short-lived certificate carrying the same CN
// makes the broker close the old one. evictSessions does that, twice: first
// with clean session 0, whose CONNACK says whether a session existed, then
// with clean session 1, which discards what was stored for the identity
// (queued messages, subscriptions). The short-lived certificate is then
// revoked as well.

// evictorLife bounds the takeover certificate: even if revoking it fails,
// it is useless minutes later.
const evictorLife = 10 * time.Minute

// evictSessions ends every session of identity cn on the broker by a
// same-CN takeover. ca issues the takeover certificate (the authority that
// issued cn, whose CRL the broker loads); the caller revokes cn and has the
// broker reload its CRL first, so cn itself cannot come back. It reports
// whether the broker held a session for cn. The takeover certificate is
// revoked and the CRL rewritten before it returns; reloading that CRL is
// the caller's.
func (e *Env) evictSessions(ctx context.Context, ca *certs.Authority, cn string) (bool, error) {
	evictor := cn + "-evict-" + nonce()[:6]
	now := time.Now()
	if err := ca.IssueClient(evictor, certs.ClientOptions{RawCN: cn, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(evictorLife)}); err != nil {
		return false, fmt.Errorf("issue the takeover certificate: %w", err)
	}
	defer func() {
		_ = ca.Revoke(evictor)
		_ = ca.WriteCRL(certs.DefaultCRLNextUpdate)
	}()
	pair, err := e.loadPair(filepath.Join(ca.Dir, "clients"), evictor)
	if err != nil {
		return false, err
	}
	present := false
	for i, persist := range []bool{true, false} {
		c, err := e.dialTLS(ctx, e.certTLS(pair))
		if err != nil {
			return false, fmt.Errorf("takeover %d: %w", i+1, err)
		}
		rc := newRawConn(c)
		code, p, err := rc.connack(rawConnect{ClientID: cn, Persist: persist, KeepAlive: 30})
		if err != nil || code != 0 {
			rc.Close()
			return false, fmt.Errorf("takeover %d as %s: CONNACK %d %v", i+1, cn, code, err)
		}
		if persist && len(p.Body) > 0 && p.Body[0]&1 == 1 {
			present = true
		}
		_ = rc.send([]byte{0xE0, 0x00}) // DISCONNECT: no Will, session kept or discarded by the flag
		rc.Close()
	}
	return present, nil
}

// runCRT10 proves revocation on a live session: identity L is connected,
// the CI sub-CA revokes it and the broker reloads its CRL. A new handshake
// with L's certificate must then fail; the live session survives the
// reload on 2.0.11 (F10, recorded); evictSessions must end it, and L must
// not come back.
func runCRT10(ctx context.Context, e *Env) Outcome {
	if e.T.Local == nil {
		return skipped("revokes a fresh identity mid-run: only the local stack's broker loads the PKI's CRL directly (a deployed broker loads the CRL deployed with it; there: certs revoke, deploy, reload, then the takeover of CRT-10)")
	}
	if e.host == nil {
		return needsHost("reloading the broker's CRL")
	}
	sub, err := e.negAuthority()
	if err != nil {
		return inconclusive("CI sub-CA: %v", err)
	}
	cn := "sec-crt10-" + nonce()[:8]
	if err := sub.IssueClient(cn, certs.ClientOptions{}); err != nil {
		return inconclusive("issue %s: %v", cn, err)
	}
	pair, err := e.loadPair(filepath.Join(sub.Dir, "clients"), cn)
	if err != nil {
		return inconclusive("%v", err)
	}
	live, err := e.connect311TLS(ctx, cn, e.certTLS(pair))
	if err != nil {
		return inconclusive("positive control: %s could not connect before its revocation: %v", cn, err)
	}
	defer live.close()
	if err := sub.Revoke(cn); err != nil {
		return inconclusive("revoke %s: %v", cn, err)
	}
	if err := sub.WriteCRL(certs.DefaultCRLNextUpdate); err != nil {
		return inconclusive("write CRL: %v", err)
	}
	if err := e.reload(ctx, host.Mosquitto); err != nil {
		return inconclusive("%v", err)
	}
	defer func() { _ = e.reload(context.WithoutCancel(ctx), host.Mosquitto) }() // loads the takeover certificate's revocation
	if a := e.refusedWithin(ctx, pair, 5*time.Second); a.accepted() {
		return fail("after revoke + reload a NEW handshake with %s's certificate still gets CONNACK 0: the broker does not load the CRL", cn)
	}
	// F10: does the reload end the live session? (2.0.11: no)
	survived := "the reload ended the live session itself"
	select {
	case <-live.lost:
	case <-time.After(time.Second):
		if _, err := e.barrier(ctx, live, "devices/"+cn+"/telemetry"); err == nil {
			survived = "F10: the live session SURVIVED the reload (its QoS1 publish was delivered after the revocation)"
		}
	}
	present, err := e.evictSessions(ctx, sub, cn)
	if err != nil {
		return inconclusive("%s; takeover: %v", survived, err)
	}
	select {
	case <-live.lost:
	case <-time.After(3 * time.Second):
		return fail("%s; the same-CN takeover did not end it either: the revoked identity is still connected", survived)
	case <-ctx.Done():
		return inconclusive("%v", ctx.Err())
	}
	if a := e.certAttempt(ctx, []tls.Certificate{pair}, 0); a.accepted() {
		return fail("%s; ended by takeover, but %s reconnected with its revoked certificate", survived, cn)
	}
	return pass("%s; a same-CN takeover (short-lived certificate, CONNACK session-present=%v, then clean session) ended it, and the revoked certificate cannot reconnect", survived, present)
}

// refusedWithin retries a connection with pair until it is refused or d
// passes (a reload is asynchronous to the signal), and returns the last
// attempt.
func (e *Env) refusedWithin(ctx context.Context, pair tls.Certificate, d time.Duration) attempt {
	deadline := time.Now().Add(d)
	for {
		a := e.certAttempt(ctx, []tls.Certificate{pair}, 0)
		if !a.accepted() || time.Now().After(deadline) || ctx.Err() != nil {
			return a
		}
		_ = sleepCtx(ctx, 100*time.Millisecond)
	}
}
