package devices

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	utls "github.com/refraction-networking/utls"
)

// Board is one board's identity and situation for a handshake.
type Board struct {
	// ServerName is the broker's name the board is configured with (what
	// it verifies, and what it sends as SNI when it dials by name).
	ServerName string
	// DialIP, when set, makes the board dial an IP literal instead of the
	// name: its SNI rule then decides what it sends.
	DialIP netip.Addr
	// RootCAs is the CA the board trusts.
	RootCAs *x509.CertPool
	// Cert is the board's client certificate (nil: none).
	Cert *tls.Certificate
	// Clock is the board's clock; nil is the real time.
	Clock func() time.Time
}

func (b Board) now() time.Time {
	if b.Clock != nil {
		return b.Clock()
	}
	return time.Now()
}

// Handshake runs the TLS handshake of profile p over raw, as the board
// does, and returns the connection to speak MQTT over and what the wire
// saw. On failure the connection is closed and the error is a *Refusal
// when the broker or the board refused (see Classify), or another error
// when the network failed. ctx bounds the handshake only.
func Handshake(ctx context.Context, raw net.Conn, p Profile, b Board) (net.Conn, Stats, error) {
	w := newWire(raw, p)
	if b.Cert != nil {
		w.stats.ClientChain = chainMessageSize(b.Cert.Certificate)
	}
	var conn net.Conn
	var err error
	if p.Native {
		conn, err = nativeHandshake(ctx, w, p, b)
	} else {
		conn, err = boardHandshake(ctx, w, p, b)
	}
	st := w.Stats()
	if err != nil {
		raw.Close()
		return nil, st, Classify(p, b, st, err)
	}
	return conn, st, nil
}

// chainMessageSize is the size of a TLS Certificate message carrying der.
func chainMessageSize(der [][]byte) int {
	n := 4 + 3
	for _, c := range der {
		n += 3 + len(c)
	}
	return n
}

// Dialer returns p's handshake in the shape the fleet takes for one
// device (fleet.Handshake): its certificate is passed per call, the rest
// is shared by the profile. A refusal comes back as its reason alone
// ("no shared cipher"), which the fleet counts as the failure's cause;
// network errors come back as they are (timeouts stay timeouts).
func Dialer(p Profile, b Board) func(ctx context.Context, raw net.Conn, cert *tls.Certificate) (net.Conn, error) {
	return func(ctx context.Context, raw net.Conn, cert *tls.Certificate) (net.Conn, error) {
		bb := b
		bb.Cert = cert
		c, _, err := Handshake(ctx, raw, p, bb)
		var r *Refusal
		if errors.As(err, &r) && r.Reason != ReasonNetwork {
			return nil, causeError(r.Reason)
		}
		return c, err
	}
}

// causeError is a refusal as a fleet failure cause.
type causeError Reason

func (e causeError) Error() string { return string(e) }

// Cause is the failure's cause for the fleet's counts (fleet.Handshake).
func (e causeError) Cause() string { return string(e) }

func nativeHandshake(ctx context.Context, w *wire, p Profile, b Board) (net.Conn, error) {
	cfg := &tls.Config{
		RootCAs:    b.RootCAs,
		ServerName: b.ServerName,
		MinVersion: p.MinVersion,
		MaxVersion: p.MaxVersion,
		Time:       b.now,
		// The fleet's choice: one classic key share, no session cache.
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
	}
	if b.Cert != nil {
		cfg.Certificates = []tls.Certificate{*b.Cert}
	}
	c := tls.Client(w, cfg)
	if err := c.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func boardHandshake(ctx context.Context, w *wire, p Profile, b Board) (net.Conn, error) {
	cfg := &utls.Config{
		RootCAs:    b.RootCAs,
		ServerName: b.ServerName,
		MinVersion: p.MinVersion,
		MaxVersion: p.MaxVersion,
		Time:       b.now,
		// A board that never checks validity dates (mbedTLS without
		// MBEDTLS_HAVE_TIME_DATE, modems with ignorelocaltime) still checks
		// the chain and the name: only time is skipped.
		InsecureSkipTimeVerify: p.Clock == ClockIgnores,
		SessionTicketsDisabled: !p.Has(ExtSessionTicket),
		Renegotiation:          utls.RenegotiateNever,
	}
	cert := b.Cert
	cfg.GetClientCertificate = func(*utls.CertificateRequestInfo) (*utls.Certificate, error) {
		if cert == nil {
			return &utls.Certificate{}, nil
		}
		if n := chainMessageSize(cert.Certificate); p.HandshakeOut > 0 && n > p.HandshakeOut {
			return nil, &limitError{ReasonClientChainTooLarge, fmt.Sprintf("the board's own certificate chain is %d bytes; its output buffer holds %d", n, p.HandshakeOut)}
		}
		return &utls.Certificate{Certificate: cert.Certificate, PrivateKey: cert.PrivateKey}, nil
	}
	if p.Verify == VerifyP256Only {
		cfg.VerifyPeerCertificate = verifyP256Only
	}
	spec, err := p.Spec(sniFor(p, b))
	if err != nil {
		return nil, err
	}
	u := utls.UClient(w, cfg, utls.HelloCustom)
	if err := u.ApplyPreset(spec); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCannotEmulate, err)
	}
	// The boards' stacks offer no session id (no cached session); uTLS
	// puts a random one, as TLS 1.3 clients do.
	u.HandshakeState.Hello.SessionId = nil
	if err := u.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return u, nil
}

// sniFor is the name the board puts in server_name ("" none).
func sniFor(p Profile, b Board) string {
	switch {
	case p.SNI == SNINever:
		return ""
	case !b.DialIP.IsValid():
		return b.ServerName
	case p.SNI == SNIAlways:
		return b.DialIP.String()
	}
	return ""
}

// verifyP256Only plays a secure element that verifies ECDSA P-256 with
// SHA-256 only (ArduinoECCX08): every signature in the chain, and every
// ECDSA key that verifies one, must be P-256/SHA-256 (RSA is done in
// software and passes).
func verifyP256Only(_ [][]byte, chains [][]*x509.Certificate) error {
	for _, chain := range chains {
		for i, c := range chain {
			if k, ok := c.PublicKey.(*ecdsa.PublicKey); ok && k.Curve != elliptic.P256() {
				return &limitError{ReasonSignature, fmt.Sprintf("certificate %q has a %s key; the board's secure element verifies P-256 only", c.Subject.CommonName, k.Curve.Params().Name)}
			}
			if i == len(chain)-1 {
				break // the anchor's own signature is not verified
			}
			switch c.SignatureAlgorithm {
			case x509.ECDSAWithSHA256, x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA:
			default:
				return &limitError{ReasonSignature, fmt.Sprintf("certificate %q is signed with %s; the board's secure element verifies ECDSA P-256/SHA-256 only", c.Subject.CommonName, c.SignatureAlgorithm)}
			}
		}
	}
	return nil
}

// Spec is the uTLS ClientHello of the profile, sending sni as server_name
// ("" leaves the extension out).
func (p *Profile) Spec(sni string) (*utls.ClientHelloSpec, error) {
	if p.Native {
		return nil, errors.New("a native profile has no uTLS spec")
	}
	spec := &utls.ClientHelloSpec{
		TLSVersMin:         p.MinVersion,
		TLSVersMax:         p.MaxVersion,
		CipherSuites:       p.Suites,
		CompressionMethods: []uint8{0},
	}
	for _, ext := range p.Extensions {
		switch ext {
		case ExtRenegotiation:
			spec.Extensions = append(spec.Extensions, &utls.RenegotiationInfoExtension{Renegotiation: utls.RenegotiateOnceAsClient})
		case ExtServerName:
			if sni == "" {
				continue
			}
			// Written by hand: uTLS (like crypto/tls) leaves IP literals
			// out, and some boards send them.
			data := []byte{0, 0, 0, 0, 0}
			data = append(data, sni...)
			n := len(sni)
			data[0], data[1] = byte((n+3)>>8), byte(n+3)
			data[3], data[4] = byte(n>>8), byte(n)
			spec.Extensions = append(spec.Extensions, &utls.GenericExtension{Id: ExtServerName, Data: data})
		case ExtMaxFragment:
			spec.Extensions = append(spec.Extensions, &utls.GenericExtension{Id: ExtMaxFragment, Data: []byte{mflnCode(p.MFLN)}})
		case ExtSignatureAlgs:
			var s []utls.SignatureScheme
			for _, v := range p.SigAlgs {
				s = append(s, utls.SignatureScheme(v))
			}
			spec.Extensions = append(spec.Extensions, &utls.SignatureAlgorithmsExtension{SupportedSignatureAlgorithms: s})
		case ExtGroups:
			var g []utls.CurveID
			for _, v := range p.Groups {
				g = append(g, utls.CurveID(v))
			}
			spec.Extensions = append(spec.Extensions, &utls.SupportedCurvesExtension{Curves: g})
		case ExtPointFormats:
			spec.Extensions = append(spec.Extensions, &utls.SupportedPointsExtension{SupportedPoints: []uint8{0}})
		case ExtExtendedMaster:
			spec.Extensions = append(spec.Extensions, &utls.ExtendedMasterSecretExtension{})
		case ExtSessionTicket:
			spec.Extensions = append(spec.Extensions, &utls.SessionTicketExtension{})
		case ExtEncryptThenMAC:
			// Offered as the board does; the tool cannot run ETM, which
			// only matters if a CBC suite is chosen (see Classify).
			spec.Extensions = append(spec.Extensions, &utls.GenericExtension{Id: ExtEncryptThenMAC})
		default:
			return nil, fmt.Errorf("%w: extension %#04x", ErrCannotEmulate, ext)
		}
	}
	return spec, nil
}
