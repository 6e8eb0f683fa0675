package security

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttstack/mqttstack/host"
)

// refusedBoth presents chain with TLS 1.3 (rejection on first read) and
// with TLS 1.2 (rejection in the handshake). Refused means no CONNACK at
// all: a broker that completes TLS and then answers CONNACK 4/5 has let an
// unauthenticated peer past the TLS layer.
func (e *Env) refusedBoth(ctx context.Context, chain []tls.Certificate) (bool, string) {
	var parts []string
	ok := true
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		a := e.certAttempt(ctx, chain, v)
		if a.connack >= 0 {
			ok = false
			parts = append(parts, fmt.Sprintf("%s: handshake ACCEPTED, CONNACK %d", tls.VersionName(v), a.connack))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: no CONNACK (%s)", tls.VersionName(v), alertName(a.alert())))
	}
	return ok, strings.Join(parts, "; ")
}

// controlAccepted is the positive control of certificate checks.
func (e *Env) controlAccepted(ctx context.Context, chain []tls.Certificate, what string) error {
	if a := e.certAttempt(ctx, chain, 0); !a.accepted() {
		return fmt.Errorf("positive control (%s) not accepted: %s", what, a)
	}
	return nil
}

// negativeCheck is the shape of CRT-02/03/04/05/06: the control identity
// connects, the negative one gets no CONNACK under TLS 1.3 or 1.2.
func negativeCheck(kind NegativeKind, control func(e *Env) ([]tls.Certificate, string, error)) func(context.Context, *Env) Outcome {
	return func(ctx context.Context, e *Env) Outcome {
		if err := e.negErr[kind]; err != nil {
			return inconclusive("could not prepare the %s identity: %v", kind, err)
		}
		neg, ok := e.neg[kind]
		if !ok {
			return inconclusive("no %s identity was prepared", kind)
		}
		chain, what, err := control(e)
		if err != nil {
			return inconclusive("%v", err)
		}
		if err := e.controlAccepted(ctx, chain, what); err != nil {
			if e.T.Local == nil {
				return inconclusive("%v (a deployed broker must trust the CI sub-CA and load its CRL: deploy <pki>/ca.crl, which includes it, and reload)", err)
			}
			return inconclusive("%v", err)
		}
		refused, ev := e.refusedBoth(ctx, []tls.Certificate{neg})
		if !refused {
			return fail("%s certificate: %s", kind, ev)
		}
		return pass("%s certificate: %s; control %s got CONNACK 0", kind, ev, what)
	}
}

func subCAControl(e *Env) ([]tls.Certificate, string, error) {
	c, err := e.loadPair(filepath.Join(e.subCADir, "clients"), e.subCAGood)
	if err != nil {
		return nil, "", err
	}
	return []tls.Certificate{c}, e.subCAGood + " (valid, same CI sub-CA)", nil
}

func crtChecks() []Check {
	return []Check{
		{
			ID: "CRT-01", Standalone: true, Tier: 1, Title: "No client certificate: refused at the TLS layer",
			Attack: "TLS 1.3 and TLS 1.2 connections without a client certificate, then CONNECT",
			Fix:    "require_certificate true on the 8883 listener",
			Proves: "a client without a certificate gets no CONNACK under TLS 1.3 or 1.2, while a device certificate does",
			Gaps:   "TLS 1.3 reports the rejection on the first read, not in the handshake: the check sends CONNECT and waits for the alert",
			Actors: []string{"a"},
			Run:    runCRT01,
		},
		{
			ID: "CRT-02", Standalone: true, Tier: 1, Title: "Foreign-CA and self-signed certificates with a real device's CN refused",
			Attack: "present CN=<real device> signed by a throwaway CA, then self-signed",
			Fix:    "cafile holds only the private device CA (no system bundle, no capath)",
			Proves: "a certificate with a real device's CN is refused unless the private CA signed it (foreign CA, self-signed)",
			Guards: "a CA bundle in cafile/capath minting usernames",
			Actors: []string{"victim"}, Negative: []NegativeKind{NegForeign, NegSelfSigned},
			Run: runCRT02,
		},
		{
			ID: "CRT-03", Standalone: true, Tier: 1, Title: "Expired client certificate refused",
			Attack:   "present a CA-issued (CI sub-CA) certificate whose NotAfter is past",
			Fix:      "default OpenSSL verification; keep the host NTP-synced",
			Proves:   "an expired certificate issued by the CA (CI sub-CA) is refused; its valid sibling is accepted",
			Negative: []NegativeKind{NegExpired},
			Run:      negativeCheck(NegExpired, subCAControl),
		},
		{
			ID: "CRT-04", Standalone: true, Tier: 2, Title: "Not-yet-valid client certificate refused",
			Attack:   "present a CA-issued certificate whose NotBefore is tomorrow",
			Fix:      "default OpenSSL verification; NTP",
			Proves:   "a certificate that is not valid yet is refused; its valid sibling is accepted",
			Negative: []NegativeKind{NegNotYet},
			Run:      negativeCheck(NegNotYet, subCAControl),
		},
		{
			ID: "CRT-05", Standalone: true, Tier: 1, Title: "Revoked certificate refused on 8883 (CRL)",
			Attack:   "revoke a CI identity, reload the broker's CRL, connect with it (TLS 1.3 and 1.2)",
			Fix:      "crlfile <CA CRL> on 8883; a timer that rewrites the CRL well before nextUpdate and reloads; restart to evict live sessions (F10)",
			Proves:   "a revoked certificate is refused on 8883 once the broker reloaded the CRL; its valid sibling is accepted",
			Gaps:     "the reload reaches new handshakes only: live sessions are CRT-10",
			Guards:   "F10",
			Negative: []NegativeKind{NegRevoked},
			Run:      negativeCheck(NegRevoked, subCAControl),
		},
		{
			ID: "CRT-06", Standalone: true, Tier: 1, Title: "Certificate with the wrong purpose (serverAuth only) refused",
			Attack:   "present a CA-issued certificate whose EKU is serverAuth only",
			Fix:      "OpenSSL purpose checking (default); issue devices EKU clientAuth",
			Proves:   "a certificate whose EKU is serverAuth only is refused for client authentication",
			Negative: []NegativeKind{NegServerAuth},
			Run:      negativeCheck(NegServerAuth, subCAControl),
		},
		{
			ID: "CRT-07", Tier: 2, Title: "CN naming policy (CN with '/', '+', '#', long, non-ASCII)",
			Attack:   "CI identities with CN devA/sub etc.; watcher sees whether devA/sub writes into devA's subtree",
			Fix:      "CA issuance policy ^[A-Za-z0-9_-]{1,64}$",
			Proves:   "the CA refuses identity names Mosquitto would take verbatim as %u ('/', '+', '#', long, non-ASCII); the demo shows what a CN with '/' could do",
			Gaps:     "Mosquitto uses the CN verbatim as the username: a CN 'devA/sub' writes inside devA's subtree",
			Guards:   "F7",
			Actors:   []string{"a"},
			Negative: []NegativeKind{NegSlashCN},
			Run:      runCRT07,
		},
		{
			ID: "CRT-08", Tier: 1, Title: "MQTT username/password cannot override the certificate identity",
			Attack: "devB's certificate with username=devA, password=x; publish to devA's and devB's topics",
			Fix:    "use_identity_as_username true (with require_certificate true) on 8883",
			Proves: "on 8883 the identity is the certificate: a username/password in CONNECT does not change what the client may do",
			Actors: []string{"a", "b"},
			Run:    runCRT08,
		},
		{
			ID: "CRT-09", Standalone: true, Host: true, Tier: 1, Title: "The CRL is fresh on both Mosquitto and nginx",
			Attack: "read, through the host, every crlfile of the broker and ssl_crl of nginx; compare each with the PKI's CRL",
			Fix:    "deploy <pki>/ca.crl to both daemons after every `certs revoke` / `certs crl` and reload them; rewrite the CRL well before nextUpdate",
			Proves: "both daemons that accept client certificates load a CRL of every issuer, listing every revocation the PKI made, with more than 2 days to nextUpdate",
			Gaps:   "an expired CRL makes OpenSSL refuse every client: freshness is availability as much as security",
			Guards: "F10 (revocation), a stale CRL on one path",
			Run:    runCRT09,
		},
		{
			ID: "CRT-10", Tier: 2, Exclusive: true, Host: true, Title: "Revocation ends the revoked identity's live sessions",
			Attack: "a CI identity is connected; it is revoked, the CRL rewritten and the broker reloaded; then a same-CN takeover with a short-lived certificate",
			Fix:    "after `certs revoke` + CRL reload, end the identity's sessions by a same-CN takeover (use_identity_as_username + use_username_as_clientid) or restart the broker",
			Proves: "after revoke + reload a new handshake fails; the live session, which survives the reload on 2.0.11, is ended by the takeover (which also discards its stored session), and the identity cannot come back",
			Gaps:   "F10: SIGHUP reloads the CRL for new handshakes only (test 08-ssl-hup-disconnect); local only (a deployed broker loads the CRL deployed with it)",
			Guards: "F10",
			Run:    runCRT10,
		},
	}
}

// crlSet is the CRLs of one file, by issuer.
type crlSet map[string]*x509.RevocationList

// parseCRLs reads every PEM CRL block of b, keyed by issuer (raw DER).
func parseCRLs(name string, b []byte) (crlSet, error) {
	out := crlSet{}
	for len(b) > 0 {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		crl, err := x509.ParseRevocationList(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse CRL %s: %w", name, err)
		}
		out[string(crl.RawIssuer)] = crl
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM CRL", name)
	}
	return out, nil
}

// crlMinLife is how far a deployed CRL's nextUpdate must be: an expired CRL
// makes OpenSSL (Mosquitto and nginx alike) refuse every client.
const crlMinLife = 48 * time.Hour

// crlStale compares a CRL file a daemon loads with the PKI's: every issuer
// of the PKI has a CRL there, it lists every serial the PKI has revoked,
// and its nextUpdate is more than crlMinLife away. It returns what is
// wrong, or a summary.
func crlStale(where string, deployed, pki crlSet, now time.Time) ([]string, string) {
	var bad, ok []string
	for issuer, want := range pki {
		name := want.Issuer.CommonName
		got, found := deployed[issuer]
		if !found {
			bad = append(bad, fmt.Sprintf("%s has no CRL of issuer %q (the PKI's lists %d revocations)", where, name, len(want.RevokedCertificateEntries)))
			continue
		}
		have := map[string]bool{}
		for _, r := range got.RevokedCertificateEntries {
			have[r.SerialNumber.String()] = true
		}
		missing := 0
		for _, r := range want.RevokedCertificateEntries {
			if !have[r.SerialNumber.String()] {
				missing++
			}
		}
		if missing > 0 {
			bad = append(bad, fmt.Sprintf("%s: the CRL of %q lacks %d of the PKI's %d revocations (stale: redeploy the CRL and reload)", where, name, missing, len(want.RevokedCertificateEntries)))
		}
		if left := got.NextUpdate.Sub(now); left < crlMinLife {
			bad = append(bad, fmt.Sprintf("%s: the CRL of %q has nextUpdate %s, %s away (< %s)", where, name, got.NextUpdate.Format(time.RFC3339), left.Round(time.Minute), crlMinLife))
		} else {
			ok = append(ok, fmt.Sprintf("%q %d revoked, next update in %dd", name, len(got.RevokedCertificateEntries), int(left.Hours()/24)))
		}
	}
	sort.Strings(bad)
	sort.Strings(ok)
	return bad, where + ": " + strings.Join(ok, ", ")
}

// daemonCRLs lists the CRL files each daemon loads, from its configuration
// on the host: Mosquitto's crlfile lines, nginx's ssl_crl.
func (e *Env) daemonCRLs(ctx context.Context) (map[host.Daemon][]string, error) {
	conf, err := e.brokerConf(ctx)
	if err != nil {
		return nil, err
	}
	out := map[host.Daemon][]string{host.Mosquitto: dedup(confValues(conf, "crlfile"))}
	if e.T.HTTPSURL != "" || e.T.WSSURL != "" {
		_, nconf, err := e.nginxConf(ctx)
		if err != nil {
			return nil, err
		}
		v, _ := nginxDirective(nconf, "ssl_crl")
		out[host.Nginx] = dedup(v)
	}
	return out, nil
}

func dedup(ss []string) []string {
	var out []string
	for _, s := range ss {
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// runCRT09 reads, through the host, every CRL file Mosquitto and nginx
// load and holds each against the PKI's CRL (<pki>/ca.crl, the one `certs
// revoke` rewrites): present for every daemon that checks client
// certificates, complete, and not near its nextUpdate.
func runCRT09(ctx context.Context, e *Env) Outcome {
	if e.host == nil {
		return needsHost("reading the CRLs Mosquitto and nginx load")
	}
	pkiPath := filepath.Join(e.T.PKIDir, "ca.crl")
	pb, err := os.ReadFile(pkiPath)
	if err != nil {
		return inconclusive("the PKI's CRL: %v", err)
	}
	pki, err := parseCRLs(pkiPath, pb)
	if err != nil {
		return inconclusive("%v", err)
	}
	files, err := e.daemonCRLs(ctx)
	if err != nil {
		return inconclusive("%v", err)
	}
	var bad, parts []string
	now := time.Now()
	for _, d := range []host.Daemon{host.Mosquitto, host.Nginx} {
		paths, asked := files[d]
		if !asked {
			continue
		}
		if len(paths) == 0 {
			bad = append(bad, fmt.Sprintf("%s loads no CRL (%s): a revoked certificate is accepted there", d, map[host.Daemon]string{host.Mosquitto: "no crlfile", host.Nginx: "no ssl_crl"}[d]))
			continue
		}
		for _, p := range paths {
			b, err := e.hostFile(ctx, p)
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v", d, err))
				continue
			}
			got, err := parseCRLs(p, b)
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v", d, err))
				continue
			}
			wrong, summary := crlStale(fmt.Sprintf("%s %s", d, p), got, pki, now)
			bad = append(bad, wrong...)
			parts = append(parts, summary)
		}
	}
	if len(bad) > 0 {
		return fail("%s", strings.Join(bad, "; "))
	}
	return pass("%s: %s; each lists every revocation of %s", e.host.Name(), strings.Join(parts, "; "), pkiPath)
}

// runCRT01 runs CRT-01 (its catalog entry is in this file).
func runCRT01(ctx context.Context, e *Env) Outcome {
	c, err := e.clientCert(e.Actor("CRT-01", "a"))
	if err != nil {
		return inconclusive("%v", err)
	}
	// The attack first: a TLS layer that lets a certificate-less
	// peer through is a failure whatever the control says (without
	// require_certificate 2.0.11 does not even ask devices for a
	// certificate, so the control fails too).
	refused, ev := e.refusedBoth(ctx, nil)
	if !refused {
		return fail("no certificate: %s", ev)
	}
	if err := e.controlAccepted(ctx, []tls.Certificate{c}, "valid device"); err != nil {
		return inconclusive("%s; but %v", ev, err)
	}
	return pass("no certificate: %s; valid device got CONNACK 0", ev)
}

// runCRT02 runs CRT-02 (its catalog entry is in this file).
func runCRT02(ctx context.Context, e *Env) Outcome {
	victim := e.Actor("CRT-02", "victim")
	vc, err := e.clientCert(victim)
	if err != nil {
		return inconclusive("%v", err)
	}
	if err := e.controlAccepted(ctx, []tls.Certificate{vc}, victim); err != nil {
		return inconclusive("%v", err)
	}
	var parts []string
	for _, k := range []NegativeKind{NegForeign, NegSelfSigned} {
		if err := e.negErr[k]; err != nil {
			return inconclusive("%s: %v", k, err)
		}
		refused, ev := e.refusedBoth(ctx, []tls.Certificate{e.neg[k]})
		if !refused {
			return fail("%s CN=%s: %s", k, victim, ev)
		}
		parts = append(parts, string(k)+": "+ev)
	}
	return pass("%s; genuine %s got CONNACK 0", strings.Join(parts, "; "), victim)
}

// runCRT08 runs CRT-08 (its catalog entry is in this file).
func runCRT08(ctx context.Context, e *Env) Outcome {
	a, b := e.Actor("CRT-08", "a"), e.Actor("CRT-08", "b")
	owner, err := e.connect311(ctx, a)
	if err != nil {
		return inconclusive("owner: %v", err)
	}
	defer owner.close()
	own := "own-" + nonce()
	ownTap := e.watch.tap(payloadHas(own))
	defer e.watch.untap(ownTap)
	out := e.canaryProof(ctx, owner, "devices/"+a+"/x", func(canary string) (string, error) {
		att, err := e.connect311(ctx, b, func(o *mqtt.ClientOptions) { o.SetUsername(a).SetPassword("x") })
		if err != nil {
			return "", fmt.Errorf("attacker connect: %w", err)
		}
		defer att.close()
		if err := att.publish(ctx, "devices/"+a+"/x", 1, false, []byte(canary)); err != nil {
			return "", err
		}
		if err := att.publish(ctx, "devices/"+b+"/x", 1, false, []byte(own)); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s's cert with username %q published to both subtrees", b, a), nil
	})
	if out.Status != Pass {
		return out
	}
	if _, ok := ownTap.waitFor(ctx, time.Second, payloadHas(own)); !ok {
		return inconclusive("%s; but the attacker's publish to its own subtree was not delivered either (identity unclear)", out.Evidence)
	}
	return pass("%s; own-subtree publish delivered: identity is the CN", out.Evidence)
}
