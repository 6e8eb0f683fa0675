package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Stage is where in a connection's life an error happened.
type Stage string

// Stages of a connect attempt and of an established connection.
const (
	StageTCP     Stage = "tcp"
	StageTLS     Stage = "tls"
	StageConnack Stage = "connack"
	StageSub     Stage = "subscribe"
	StageLost    Stage = "connection lost"
	StagePublish Stage = "publish"
	StageCommand Stage = "command"
)

// Classify turns an error into a cause from a small vocabulary, such as
// "tcp: connection refused", "tls: bad certificate", "connack: not
// authorized", "timeout: connack" or "connection lost: EOF". Causes never
// carry addresses, ports or device ids, so ten thousand failing devices
// group into a handful of lines.
func Classify(stage Stage, err error) string {
	if err == nil {
		return string(stage) + ": ok"
	}
	if errors.Is(err, context.Canceled) {
		return "canceled: " + string(stage)
	}
	if isTimeout(err) {
		return "timeout: " + string(stage)
	}
	return string(stage) + ": " + reason(err)
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// reason names what went wrong, without the stage.
func reason(err error) string {
	if r, ok := reason5(err); ok {
		return r
	}
	var hc handshakeCause
	if errors.As(err, &hc) {
		return hc.Cause()
	}
	// MQTT CONNACK refusals (paho wraps the return code as a fixed error).
	switch {
	case errors.Is(err, packets.ErrorRefusedNotAuthorised):
		return "not authorized"
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		return "bad username or password"
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		return "identifier rejected"
	case errors.Is(err, packets.ErrorRefusedServerUnavailable):
		return "server unavailable"
	case errors.Is(err, packets.ErrorRefusedBadProtocolVersion):
		return "bad protocol version"
	case errors.Is(err, mqtt.ErrNotConnected):
		return "not connected"
	}
	// TLS alerts from the broker and local verification failures.
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return strings.TrimPrefix(ae.Error(), "tls: ")
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return "unknown certificate authority"
	}
	var ci x509.CertificateInvalidError
	if errors.As(err, &ci) {
		switch ci.Reason {
		case x509.Expired:
			return "certificate expired or not yet valid"
		default:
			return "certificate invalid"
		}
	}
	var hn x509.HostnameError
	if errors.As(err, &hn) {
		return "server name mismatch"
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return "not a TLS server"
	}
	// Sockets.
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "address not available"
	case errors.Is(err, syscall.EADDRINUSE):
		return "address in use"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	}
	// paho reports some failures only as text.
	s := err.Error()
	switch {
	case strings.Contains(s, "pingresp not received"):
		return "pingresp not received"
	case strings.Contains(s, "connection lost before Subscribe completed"), strings.Contains(s, "connection lost"),
		strings.Contains(s, "not fully acknowledged at time of shutdown"): // paho.golang
		return "connection lost"
	case strings.Contains(s, "publish was broken by timeout"):
		return "write timeout"
	case strings.Contains(s, "EOF"):
		return "EOF"
	case strings.Contains(s, "bad certificate"):
		return "bad certificate"
	case strings.Contains(s, "connection reset"):
		return "connection reset"
	}
	return other(err)
}

// other describes an unrecognised error by its innermost message when that
// carries no digits (no address, port or id to split the group), else by its
// Go type.
func other(err error) string {
	inner := err
	for {
		u := errors.Unwrap(inner)
		if u == nil {
			break
		}
		inner = u
	}
	msg := inner.Error()
	if len(msg) <= 60 && !strings.ContainsAny(msg, "0123456789") {
		return msg
	}
	return fmt.Sprintf("other (%T)", inner)
}
