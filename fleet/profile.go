package fleet

import (
	"context"
	"crypto/tls"
	"net"
	"time"
)

// Handshake runs a device's TLS handshake over a dialled TCP connection
// and returns the connection to speak MQTT over. It lets a device meet the
// broker as a particular board's TLS stack does (package devices builds
// one per profile); without it a device uses the fleet's Go client. cert
// is the device's client certificate. An error with a Cause() string
// method names the failure's cause itself ("no shared cipher").
type Handshake func(ctx context.Context, raw net.Conn, cert *tls.Certificate) (net.Conn, error)

// handshakeCause is a Handshake error that names its own cause.
type handshakeCause interface {
	error
	Cause() string
}

// openProfiled is open's TLS step for a device with its own Handshake:
// timed as the fleet's own; the attempt's context bounds the handshake.
func (a *attempt) openProfiled(raw net.Conn, ka uint16) (net.Conn, error) {
	a.tcpDone = time.Now()
	a.stage = StageTLS
	tc, err := a.d.handshake(a.ctx, raw, a.d.cert)
	if err != nil {
		raw.Close()
		return nil, err
	}
	conn := &kaConn{Conn: tc, keepalive: ka}
	a.tlsDone = time.Now()
	a.stage = StageConnack
	return conn, nil
}
