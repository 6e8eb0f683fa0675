package local

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/mqttstack/mqttstack/internal/mqttwire"
)

// ProbeMQTTS dials addr with mutual TLS, sends an MQTT 3.1.1 CONNECT and
// waits for CONNACK 0, then disconnects. It is the readiness check of the
// broker: a listening socket is not enough, the broker must have loaded its
// certificates, CRL and ACL. With TLS 1.3 a rejected client certificate only
// shows on the first read (SECURITY.md §0.1.5), which this read covers.
func ProbeMQTTS(ctx context.Context, addr, serverName string, roots *x509.CertPool, cert tls.Certificate) error {
	d := tls.Dialer{Config: &tls.Config{
		RootCAs:      roots,
		ServerName:   serverName,
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("mqtts %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// The client id is overwritten by the certificate CN
	// (use_username_as_clientid) but must not be empty (AUTH-03).
	if _, err := conn.Write(ConnectPacket("probe", "", "", 30)); err != nil {
		return fmt.Errorf("mqtts %s: send CONNECT: %w", addr, err)
	}
	rc, err := ReadConnack(conn)
	if err != nil {
		return fmt.Errorf("mqtts %s: %w", addr, err)
	}
	if rc != 0 {
		return fmt.Errorf("mqtts %s: CONNACK return code %d", addr, rc)
	}
	conn.Write(mqttwire.Disconnect()) // so no Will and a clean log line
	return nil
}

// ConnectPacket encodes an MQTT 3.1.1 CONNECT with clean session and the
// given keepalive (seconds); user/password are included when user is set
// (package internal/mqttwire writes it).
func ConnectPacket(clientID, user, password string, keepalive uint16) []byte {
	c := mqttwire.Connect{ClientID: clientID, KeepAlive: keepalive}
	if user != "" {
		c.Username = &user
		if password != "" {
			c.Password = &password
		}
	}
	return c.Encode()
}

// ErrNoConnack means the broker closed the connection (or a TLS alert
// arrived) instead of answering CONNECT: how a refused client certificate
// looks under TLS 1.3.
var ErrNoConnack = errors.New("no CONNACK")

// ReadConnack reads one packet and returns the CONNACK return code.
func ReadConnack(r io.Reader) (byte, error) {
	p, err := mqttwire.ReadPacket(r, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoConnack, err)
	}
	code, _, err := mqttwire.ConnackCode(p)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoConnack, err)
	}
	return code, nil
}

// ProbeHTTPS fetches https://addr/healthz with SNI and Host = serverName and
// expects 200 "ok": nginx is up and has loaded its certificate, the device
// CA and the CRL.
func ProbeHTTPS(ctx context.Context, addr, serverName string, roots *x509.CertPool) error {
	d := tls.Dialer{Config: &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("https %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", serverName)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return fmt.Errorf("https %s/healthz: %w", addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		return fmt.Errorf("https %s/healthz: %s %q", addr, resp.Status, body)
	}
	return nil
}

// portFree reports whether addr can be listened on right now.
func portFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// listening reports whether something accepts TCP connections on addr.
func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
