package fleet

import (
	"net"
	"sync"
	"time"

	"github.com/mqttstack/mqttstack/internal/mqttwire"
)

// Keep-alive without a goroutine per device.
//
// paho's keep-alive runs one goroutine and one 5-second ticker per client:
// with thousands of devices that is ~3 KiB and a timer wake-up per device
// for nothing but a two-byte PINGREQ. A fleet instead tells paho keep-alive
// 0 and pings every device itself from one paced goroutine (Fleet.pinger).
// The CONNECT packet still announces the configured keep-alive: kaConn
// patches the two bytes in the first write, so the broker enforces it
// exactly as it would for paho's own pings (and disconnects a device whose
// pings stop). Writing a PINGREQ next to paho's writer is safe because every
// paho packet is one Write call and crypto/tls serialises Writes.

// pingreq is an MQTT PINGREQ packet (never modified: every Write sends it
// whole).
var pingreq = mqttwire.Pingreq()

// kaConn is the connection paho gets: the TLS (or WebSocket) connection,
// with the keep-alive of the first packet (CONNECT) rewritten. Writes and
// write deadlines go through one mutex: crypto/tls would not need it, but
// gorilla's WebSocket allows one writer only, and the pinger's write
// competes with paho's writer there.
type kaConn struct {
	net.Conn
	keepalive uint16
	once      sync.Once
	wmu       sync.Mutex
	deadline  time.Time // the write deadline WriteWithin set last (wmu)
}

// WriteWithin writes b with a write deadline at least d/2 and at most d
// away: the deadline is moved only when less than half of d is left, so
// that thousands of writes per second do not each re-arm the poller's
// timer (two SetWriteDeadline calls per publish were ~7% of the tool's
// CPU). Every writer of an MQTT 3.1.1 device's connection (session and
// pinger) goes through it, so none meets a stale deadline.
func (c *kaConn) WriteWithin(b []byte, d time.Duration) (int, error) {
	c.once.Do(func() { patchKeepalive(b, c.keepalive) })
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if now := time.Now(); c.deadline.Sub(now) < d/2 {
		c.deadline = now.Add(d)
		if err := c.Conn.SetWriteDeadline(c.deadline); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(b)
}

func (c *kaConn) Write(b []byte) (int, error) {
	c.once.Do(func() { patchKeepalive(b, c.keepalive) })
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.Conn.Write(b)
}

func (c *kaConn) SetWriteDeadline(t time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func (c *kaConn) SetDeadline(t time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.Conn.SetDeadline(t)
}

// patchKeepalive sets the keep-alive of an MQTT CONNECT packet in b and
// reports whether b was one (package internal/mqttwire).
func patchKeepalive(b []byte, keepalive uint16) bool {
	return mqttwire.PatchKeepAlive(b, keepalive)
}
