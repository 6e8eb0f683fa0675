package fleet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/mqttstack/mqttstack/internal/mqttwire"
)

// obsConn is an observer's MQTT 3.1.1 connection, written for one job:
// take telemetry as fast as the broker sends it, for as little CPU as the
// broker spends sending it. paho writes one PUBACK per message (a TLS record
// and a write syscall each) and hands every message through two
// goroutines. obsConn has two: the reader handles each message where it
// reads it (through a 32 KiB buffer) and appends its PUBACK to a pending
// buffer; the writer writes whatever is pending in one record whenever it
// is woken, so while it writes, the next acknowledgements collect and go
// out together. Reading and writing overlap, as with paho, and a busy
// observer writes far fewer records than it acknowledges messages.
//
// Only the reader reads; writes (SUBSCRIBE, PUBACK batches, PINGREQ,
// DISCONNECT) hold wmu.
type obsConn struct {
	conn *tls.Conn
	br   *bufio.Reader
	o    *Observer

	wmu sync.Mutex

	ackMu   sync.Mutex
	acks    []byte        // PUBACKs not written yet
	ackKick chan struct{} // wakes the writer (capacity 1)

	mu      sync.Mutex
	subacks map[uint16]chan []byte // SUBSCRIBEs waiting for their SUBACK
	nextID  uint16

	done chan struct{} // closed when the reader ends
	err  error         // why it ended (read after done)

	body []byte // the reader's packet body, reused for every packet (a message is handled where it is read)
}

// maxObserverPacket bounds what one packet may announce: telemetry is a few
// hundred bytes, the broker's max_packet_size 16 KiB.
const maxObserverPacket = 1 << 20

// connackNames are MQTT 3.1.1's CONNACK return codes (§3.2.2.3).
var connackNames = map[byte]string{
	1: "unacceptable protocol version", 2: "identifier rejected", 3: "server unavailable",
	4: "bad user name or password", 5: "not authorized",
}

// dialObserver connects o's identity: TCP, TLS, CONNECT, CONNACK, all
// within ctx.
func dialObserver(ctx context.Context, o *Observer) (*obsConn, error) {
	cfg := &o.cfg
	d := tls.Dialer{NetDialer: &net.Dialer{KeepAlive: -1}, Config: &tls.Config{
		RootCAs: cfg.RootCAs, ServerName: cfg.ServerName, MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{*cfg.Cert},
	}}
	nc, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	tc := nc.(*tls.Conn)
	if dl, ok := ctx.Deadline(); ok {
		tc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { tc.SetDeadline(time.Now()) })
	defer stop()
	c := &obsConn{conn: tc, br: bufio.NewReaderSize(tc, 32<<10), o: o, subacks: map[uint16]chan []byte{}, done: make(chan struct{}), ackKick: make(chan struct{}, 1)}
	connect := mqttwire.Connect{ClientID: cfg.ID, KeepAlive: uint16(cfg.KeepAlive / time.Second)}
	if _, err := tc.Write(connect.Encode()); err != nil {
		tc.Close()
		return nil, err
	}
	p, err := mqttwire.ReadPacket(c.br, maxObserverPacket)
	if err == nil {
		var code byte
		if code, _, err = mqttwire.ConnackCode(p); err == nil && code != 0 {
			name := connackNames[code]
			if name == "" {
				name = fmt.Sprintf("return code %d", code)
			}
			err = fmt.Errorf("connack: %s", name)
		}
	}
	if err != nil {
		tc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	tc.SetDeadline(time.Time{})
	return c, nil
}

// run reads until the connection ends, then calls lost (unless closed on
// purpose: lost checks that).
func (c *obsConn) run(lost func(*obsConn, error)) {
	err := c.read()
	c.err = err
	c.mu.Lock()
	for id, ch := range c.subacks {
		close(ch)
		delete(c.subacks, id)
	}
	c.mu.Unlock()
	close(c.done)
	lost(c, err)
}

func (c *obsConn) read() error {
	for {
		p, err := mqttwire.ReadPacketInto(c.br, maxObserverPacket, c.body)
		if err != nil {
			return err
		}
		c.body = p.Body[:0] // the largest so far
		switch p.Type {
		case mqttwire.TypePublish >> 4:
			if err := c.publish(p); err != nil {
				return err
			}
		case mqttwire.TypeSuback >> 4:
			if len(p.Body) < 2 {
				return errors.New("malformed SUBACK")
			}
			id := binary.BigEndian.Uint16(p.Body)
			c.mu.Lock()
			ch := c.subacks[id]
			delete(c.subacks, id)
			c.mu.Unlock()
			if ch != nil {
				ch <- bytes.Clone(p.Body[2:])
			}
		case mqttwire.TypePingresp >> 4:
		default:
			return fmt.Errorf("unexpected packet type %d", p.Type)
		}
	}
}

// publish handles one PUBLISH (3.1.1 §3.3) and queues its PUBACK.
func (c *obsConn) publish(p mqttwire.Raw) error {
	qos := (p.Flags >> 1) & 3
	b := p.Body
	if len(b) < 2 {
		return errors.New("malformed PUBLISH")
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return errors.New("malformed PUBLISH topic")
	}
	topic, b := b[2:2+n], b[2+n:]
	if qos > 0 {
		if len(b) < 2 {
			return errors.New("malformed PUBLISH packet id")
		}
		id0, id1 := b[0], b[1]
		b = b[2:]
		c.o.onMessage(topic, b)
		c.ackMu.Lock()
		c.acks = append(c.acks, mqttwire.TypePuback, 2, id0, id1)
		c.ackMu.Unlock()
		select {
		case c.ackKick <- struct{}{}:
		default: // the writer is already awake: this one goes in its batch
		}
		return nil
	}
	c.o.onMessage(topic, b)
	return nil
}

func (c *obsConn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.conn.Write(b)
	return err
}

// subscribe sends one SUBSCRIBE and waits for its SUBACK's return codes.
func (c *obsConn) subscribe(ctx context.Context, filters []mqttwire.Subscription) ([]byte, error) {
	ch := make(chan []byte, 1)
	c.mu.Lock()
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	id := c.nextID
	c.subacks[id] = ch
	c.mu.Unlock()
	select {
	case <-c.done:
		return nil, fmt.Errorf("subscribe: connection lost: %w", c.err)
	default:
	}
	if err := c.write(mqttwire.Subscribe{PacketID: id, Filters: filters}.Encode()); err != nil {
		return nil, err
	}
	select {
	case codes, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("subscribe: connection lost: %w", c.err)
		}
		return codes, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// close ends the connection: DISCONNECT, then the socket; it waits for the
// reader.
func (c *obsConn) close() {
	c.write(mqttwire.Disconnect())
	c.conn.Close()
	<-c.done
}

// telemetryID returns the <id> of devices/<id>/telemetry or
// devices/<id>/status and whether it is telemetry, without allocating.
func topicID(topic []byte) (id []byte, telemetry, ok bool) {
	rest, found := bytes.CutPrefix(topic, []byte("devices/"))
	if !found {
		return nil, false, false
	}
	if id, found = bytes.CutSuffix(rest, []byte("/telemetry")); found {
		telemetry = true
	} else if id, found = bytes.CutSuffix(rest, []byte("/status")); !found {
		return nil, false, false
	}
	if len(id) == 0 || bytes.IndexByte(id, '/') >= 0 {
		return nil, false, false
	}
	return id, telemetry, true
}

// writer writes pending PUBACKs, in one record per wake-up, and a PINGREQ
// every half keep-alive (the broker then keeps an observer that has
// nothing to acknowledge), until the connection ends.
func (c *obsConn) writer(keepalive time.Duration) {
	var tick <-chan time.Time
	if keepalive > 0 {
		t := time.NewTicker(keepalive / 2)
		defer t.Stop()
		tick = t.C
	}
	var buf []byte
	for {
		select {
		case <-c.done:
			return
		case <-tick:
			if c.write(mqttwire.Pingreq()) != nil {
				return
			}
		case <-c.ackKick:
			c.ackMu.Lock()
			buf, c.acks = c.acks, buf[:0]
			c.ackMu.Unlock()
			if len(buf) > 0 && c.write(buf) != nil {
				return // the reader sees the connection fail
			}
		}
	}
}
