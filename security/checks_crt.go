package security

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
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
			Actors: []string{"a"},
			Run: func(ctx context.Context, e *Env) Outcome {
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
			},
		},
		{
			ID: "CRT-02", Standalone: true, Tier: 1, Title: "Foreign-CA and self-signed certificates with a real device's CN refused",
			Attack: "present CN=<real device> signed by a throwaway CA, then self-signed",
			Fix:    "cafile holds only the private device CA (no system bundle, no capath)",
			Actors: []string{"victim"}, Negative: []NegativeKind{NegForeign, NegSelfSigned},
			Run: func(ctx context.Context, e *Env) Outcome {
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
			},
		},
		{
			ID: "CRT-03", Standalone: true, Tier: 1, Title: "Expired client certificate refused",
			Attack:   "present a CA-issued (CI sub-CA) certificate whose NotAfter is past",
			Fix:      "default OpenSSL verification; keep the host NTP-synced",
			Negative: []NegativeKind{NegExpired},
			Run:      negativeCheck(NegExpired, subCAControl),
		},
		{
			ID: "CRT-04", Standalone: true, Tier: 2, Title: "Not-yet-valid client certificate refused",
			Attack:   "present a CA-issued certificate whose NotBefore is tomorrow",
			Fix:      "default OpenSSL verification; NTP",
			Negative: []NegativeKind{NegNotYet},
			Run:      negativeCheck(NegNotYet, subCAControl),
		},
		{
			ID: "CRT-05", Standalone: true, Tier: 1, Title: "Revoked certificate refused (CRL) and the deployed CRL is fresh",
			Attack:   "revoke a CI identity, reload the broker's CRL, connect with it; read the CRL's nextUpdate",
			Fix:      "crlfile <CA CRL> on 8883; a timer that rewrites the CRL well before nextUpdate and reloads; restart to evict live sessions (F10)",
			Negative: []NegativeKind{NegRevoked},
			Run: func(ctx context.Context, e *Env) Outcome {
				out := negativeCheck(NegRevoked, subCAControl)(ctx, e)
				if out.Status != Pass {
					return out
				}
				fresh, err := e.crlFreshness()
				if err != nil {
					return fail("%s; but %v", out.Evidence, err)
				}
				return pass("%s; %s", out.Evidence, fresh)
			},
		},
		{
			ID: "CRT-06", Standalone: true, Tier: 1, Title: "Certificate with the wrong purpose (serverAuth only) refused",
			Attack:   "present a CA-issued certificate whose EKU is serverAuth only",
			Fix:      "OpenSSL purpose checking (default); issue devices EKU clientAuth",
			Negative: []NegativeKind{NegServerAuth},
			Run:      negativeCheck(NegServerAuth, subCAControl),
		},
		{
			ID: "CRT-07", Tier: 2, Title: "CN naming policy (CN with '/', '+', '#', long, non-ASCII)",
			Attack: "CI identities with CN devA/sub etc.; watcher sees whether devA/sub writes into devA's subtree",
			Fix:    "CA issuance policy ^[A-Za-z0-9_-]{1,64}$",
		},
		{
			ID: "CRT-08", Tier: 1, Title: "MQTT username/password cannot override the certificate identity",
			Attack: "devB's certificate with username=devA, password=x; publish to devA's and devB's topics",
			Fix:    "use_identity_as_username true (with require_certificate true) on 8883",
			Actors: []string{"a", "b"},
			Run: func(ctx context.Context, e *Env) Outcome {
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
			},
		},
	}
}

// crlFreshness reads the CRL(s) the broker is configured with (local: the
// crlfile lines of the rendered mosquitto.conf; remote: the PKI's ca.crl)
// and requires nextUpdate more than 2 days away: an expired CRL makes
// OpenSSL reject every client.
func (e *Env) crlFreshness() (string, error) {
	var paths []string
	if e.T.Local != nil && e.T.Local.MosquittoConf != "" {
		conf, err := readConf(e.T.Local.MosquittoConf)
		if err != nil {
			return "", err
		}
		for _, d := range conf {
			if d.key == "crlfile" {
				paths = append(paths, d.value)
			}
		}
		if len(paths) == 0 {
			return "", fmt.Errorf("no crlfile in %s", e.T.Local.MosquittoConf)
		}
	} else {
		paths = []string{filepath.Join(e.T.PKIDir, "ca.crl")}
	}
	var parts []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("read CRL: %w", err)
		}
		for len(b) > 0 {
			var blk *pem.Block
			blk, b = pem.Decode(b)
			if blk == nil {
				break
			}
			crl, err := x509.ParseRevocationList(blk.Bytes)
			if err != nil {
				return "", fmt.Errorf("parse CRL %s: %w", p, err)
			}
			left := time.Until(crl.NextUpdate)
			if left < 48*time.Hour {
				return "", fmt.Errorf("CRL %s (%s) nextUpdate %s is %s away (< 2 days)", p, crl.Issuer.CommonName, crl.NextUpdate.Format(time.RFC3339), left.Round(time.Minute))
			}
			parts = append(parts, fmt.Sprintf("CRL %q nextUpdate in %d days", crl.Issuer.CommonName, int(left.Hours()/24)))
		}
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("no CRL found in %s", strings.Join(paths, ", "))
	}
	return strings.Join(parts, ", "), nil
}
