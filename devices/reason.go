package devices

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	utls "github.com/refraction-networking/utls"
)

// Reason is why a board does not work with a broker, in plain words.
type Reason string

// The reasons a matrix row can carry.
const (
	ReasonProtocolVersion     Reason = "protocol version"
	ReasonNoSharedCipher      Reason = "no shared cipher"
	ReasonNoSharedGroupOrSig  Reason = "no shared group or signature"
	ReasonChainTooLarge       Reason = "chain larger than the board's buffer"
	ReasonClientChainTooLarge Reason = "own chain larger than the board's buffer"
	ReasonRecordTooLarge      Reason = "records larger than the board can take"
	ReasonClock               Reason = "clock not set"
	ReasonSignature           Reason = "signature the board cannot verify"
	ReasonServerCert          Reason = "board rejects the broker's certificate"
	ReasonClientCert          Reason = "broker rejects the board's certificate"
	ReasonNoIdentity          Reason = "no identity for the board's key type"
	ReasonMQTT                Reason = "MQTT refused"
	ReasonHandshake           Reason = "handshake failed"
	ReasonCannotEmulate       Reason = "cannot emulate"
	ReasonNetwork             Reason = "network"
)

// Refusal is a failed handshake or session, classified.
type Refusal struct {
	Reason Reason
	// By is who ended it: "broker", "board", "tool" or "network".
	By     string
	Detail string
	Err    error
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("%s (refused by the %s): %s", r.Reason, r.By, r.Detail)
}

func (r *Refusal) Unwrap() error { return r.Err }

// alertNames are the TLS alerts a refusal names.
var alertNames = map[int]string{
	10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow", 40: "handshake_failure",
	42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
	46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied",
	50: "decode_error", 51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security",
	80: "internal_error", 86: "inappropriate_fallback", 90: "user_canceled", 109: "missing_extension",
	110: "unsupported_extension", 112: "unrecognized_name", 116: "certificate_required",
}

func alertName(a int) string {
	if n, ok := alertNames[a]; ok {
		return n
	}
	return fmt.Sprintf("alert %d", a)
}

// remoteAlert finds the alert the server sent: in plaintext on the wire,
// or reported by the TLS client (TLS 1.3 alerts are encrypted).
func remoteAlert(st Stats, err error) int {
	if st.Alert >= 0 {
		return st.Alert
	}
	var ga tls.AlertError
	if errors.As(err, &ga) {
		return int(ga)
	}
	var ua utls.AlertError
	if errors.As(err, &ua) {
		return int(ua)
	}
	// Both libraries also report remote alerts as "remote error: tls: <name>".
	if i := strings.Index(err.Error(), "remote error: tls: "); i >= 0 {
		msg := err.Error()[i+len("remote error: tls: "):]
		for code, name := range alertNames {
			if strings.HasPrefix(msg, strings.ReplaceAll(name, "_", " ")) {
				return code
			}
		}
	}
	return -1
}

// Classify names why a handshake of profile p failed, from what the wire
// saw and the error the TLS client returned.
func Classify(p Profile, b Board, st Stats, err error) *Refusal {
	var r *Refusal
	if errors.As(err, &r) {
		return r
	}
	var le *limitError
	if errors.As(err, &le) {
		return &Refusal{Reason: le.reason, By: "board", Detail: le.detail, Err: err}
	}
	if errors.Is(err, ErrCannotEmulate) {
		return &Refusal{Reason: ReasonCannotEmulate, By: "tool", Detail: err.Error(), Err: err}
	}
	if a := remoteAlert(st, err); a >= 0 {
		if st.ServerHello == nil {
			switch a {
			case 70:
				return &Refusal{Reason: ReasonProtocolVersion, By: "broker", Err: err, Detail: fmt.Sprintf("the broker answered the board's %s hello with protocol_version: it requires a newer TLS", VersionName(p.MaxVersion))}
			case 40, 71:
				return &Refusal{Reason: ReasonNoSharedCipher, By: "broker", Err: err, Detail: fmt.Sprintf("the broker answered the hello with %s: none of the board's %d cipher suites (with its groups and signature algorithms) is one it accepts", alertName(a), len(p.Suites))}
			}
			return &Refusal{Reason: ReasonHandshake, By: "broker", Err: err, Detail: "the broker answered the hello with " + alertName(a)}
		}
		switch a {
		case 42, 43, 44, 45, 46, 48, 49, 116:
			return &Refusal{Reason: ReasonClientCert, By: "broker", Err: err, Detail: "the broker refused the board's client certificate: " + alertName(a)}
		}
		return &Refusal{Reason: ReasonHandshake, By: "broker", Err: err, Detail: "the broker sent " + alertName(a)}
	}
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Reason == x509.Expired {
		now := b.now()
		if d := time.Since(now); d > 24*time.Hour || d < -24*time.Hour {
			return &Refusal{Reason: ReasonClock, By: "board", Err: err, Detail: fmt.Sprintf("the board's clock reads %s, outside the broker certificate's validity (%s … %s); the board checks dates and NTP has not set its clock", now.UTC().Format(time.DateOnly), inv.Cert.NotBefore.UTC().Format(time.DateOnly), inv.Cert.NotAfter.UTC().Format(time.DateOnly))}
		}
		return &Refusal{Reason: ReasonServerCert, By: "board", Err: err, Detail: "the broker's certificate has expired or is not yet valid: " + inv.Error()}
	}
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	if errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &inv) {
		return &Refusal{Reason: ReasonServerCert, By: "board", Err: err, Detail: err.Error()}
	}
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne) {
		by := "network"
		if errors.Is(err, io.EOF) {
			by = "broker"
		}
		return &Refusal{Reason: ReasonNetwork, By: by, Err: err, Detail: err.Error()}
	}
	return &Refusal{Reason: ReasonHandshake, By: "board", Err: err, Detail: err.Error()}
}
