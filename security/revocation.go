package security

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/host"
	"github.com/mqttstack/mqttstack/target"
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
	evictor := "sec-evict-" + nonce()[:10]
	now := time.Now()
	if err := ca.IssueClient(evictor, certs.ClientOptions{RawCN: cn, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(evictorLife)}); err != nil {
		return false, fmt.Errorf("issue the takeover certificate: %w", err)
	}
	defer func() {
		// nobody may use it again: its key goes at once, the certificate
		// is revoked and expires within evictorLife anyway
		_ = os.Remove(filepath.Join(ca.Dir, "clients", evictor+".key"))
		_ = os.Remove(filepath.Join(ca.Dir, "clients", evictor+".pass"))
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

// EndSessions ends the live sessions of identity id on the target's broker
// (the revocation procedure's last step, docs/SECURITY.md §4): id must
// already be refused by the broker, i.e. revoked with `certs revoke`, the
// CRL deployed and the broker reloaded, else it would just reconnect. A
// same-CN takeover with a 10-minute certificate from the target's CA ends
// its connection and discards its stored session; the takeover
// certificate's key is deleted and the certificate revoked (deploy the CRL
// again to publish that). It reports whether the broker held a session.
func EndSessions(ctx context.Context, t *target.Target, id string) (bool, error) {
	if err := certs.ValidateID(id); err != nil {
		return false, err
	}
	e, err := newEnv(Options{Target: t})
	if err != nil {
		return false, err
	}
	pair, err := e.clientCert(id)
	if err != nil {
		return false, fmt.Errorf("end sessions of %s: %w", id, err)
	}
	if err := e.handshake12(ctx, pair); err == nil {
		return false, fmt.Errorf("end sessions of %s: the broker still accepts its certificate: revoke it (certs revoke %s), deploy the CRL and reload the broker first, else it reconnects at once", id, id)
	}
	return e.evictSessions(ctx, e.root, id)
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
	sub, cn, pair, err := e.toRevoke(ctx, "sec-crt10-", certs.ClientOptions{}, host.Mosquitto)
	if err != nil {
		return inconclusive("%v", err)
	}
	live, err := e.connect311TLS(ctx, cn, e.certTLS(pair))
	if err != nil {
		return inconclusive("positive control: %s could not connect before its revocation: %v", cn, err)
	}
	defer live.close()
	// a TLS 1.2 session (ticket) taken before the revocation, to offer
	// again after it: resumption skips the certificate check
	tickets := tls.NewLRUClientSessionCache(2)
	resumeCfg := func() *tls.Config {
		c := e.certTLS(pair)
		c.MaxVersion, c.ClientSessionCache = tls.VersionTLS12, tickets
		return c
	}
	if c, err := e.dialTLS(ctx, resumeCfg()); err != nil {
		return inconclusive("positive control: TLS 1.2 handshake of %s before its revocation: %v", cn, err)
	} else {
		c.Close()
	}
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
	if err := e.refusedWithin(ctx, pair, 5*time.Second); err == nil {
		return fail("after revoke + reload a NEW TLS 1.2 handshake with %s's certificate still completes: the broker does not load the CRL", cn)
	}
	if c, err := e.dialTLS(ctx, resumeCfg()); err == nil {
		resumed := c.ConnectionState().DidResume
		c.Close()
		return fail("after revoke + reload %s's TLS 1.2 session offered again was ACCEPTED (resumed=%v): revocation bypassed by session resumption", cn, resumed)
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
	return pass("new handshakes and its pre-revocation TLS session refused after the reload; %s; a same-CN takeover (short-lived certificate, CONNACK session-present=%v, then clean session) ended it, and the revoked certificate cannot reconnect", survived, present)
}

// toRevoke prepares a revocation check (CRT-10, WEB-10): a fresh identity
// prefix+nonce issued by the CI sub-CA with o, its certificate, and daemon d
// reloaded on the sub-CA's current CRL. d checks CRLs for the whole chain,
// so the sub-CA's must be loaded whether or not another check wrote it in
// this run; afterwards revoking the identity is the only change.
func (e *Env) toRevoke(ctx context.Context, prefix string, o certs.ClientOptions, d host.Daemon) (sub *certs.Authority, id string, pair tls.Certificate, err error) {
	sub, err = e.negAuthority()
	if err != nil {
		return nil, "", pair, fmt.Errorf("CI sub-CA: %v", err)
	}
	id = prefix + nonce()[:8]
	if err := sub.IssueClient(id, o); err != nil {
		return nil, "", pair, fmt.Errorf("issue %s: %v", id, err)
	}
	pair, err = e.loadPair(filepath.Join(sub.Dir, "clients"), id)
	if err != nil {
		return nil, "", pair, err
	}
	if err := sub.WriteCRL(certs.DefaultCRLNextUpdate); err != nil {
		return nil, "", pair, fmt.Errorf("write CRL: %v", err)
	}
	if err := e.reload(ctx, d); err != nil {
		return nil, "", pair, err
	}
	return sub, id, pair, nil
}

// handshake12 makes a TLS 1.2 handshake to the broker presenting pair and
// closes it without a CONNECT. Under TLS 1.2 the broker judges the client
// certificate inside the handshake, so an error means refused; and no
// CONNECT means no takeover of a live session of the same identity.
func (e *Env) handshake12(ctx context.Context, pair tls.Certificate) error {
	cfg := e.certTLS(pair)
	cfg.MaxVersion = tls.VersionTLS12
	c, err := e.dialTLS(ctx, cfg)
	if err != nil {
		return err
	}
	return c.Close()
}

// refusedWithin repeats handshake12 until the broker refuses pair or d
// passes (a reload is asynchronous to the signal); nil means still
// accepted.
func (e *Env) refusedWithin(ctx context.Context, pair tls.Certificate, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := e.handshake12(ctx, pair)
		if err != nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		_ = sleepCtx(ctx, 100*time.Millisecond)
	}
}
