package fleet

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqttstack/mqttstack/internal/mqttwire"
)

// MQTT 3.1.1 devices on their own small client (internal/mqttwire).
//
// paho.mqtt.golang runs nine goroutines per client and hands every publish
// through two channels and a token: at 5,000 devices that was most of the
// tool's memory (~58 KiB per device, mostly goroutine stacks) and much of
// its CPU per publish. A device needs little of it: CONNECT with a will,
// one SUBSCRIBE, PUBLISH at QoS 0/1 waiting for its PUBACK, commands in,
// PINGREQ from the fleet's pinger. session3 does that with one goroutine
// per connection (the reader) and writes on the caller's goroutine; the
// attempt (TCP, TLS, timings, the device-profile hook) is attempt.open's,
// as for paho.

// session3 is one MQTT 3.1.1 connection of a device.
type session3 struct {
	conn         net.Conn // kaConn: writes are serialised there
	br           *bufio.Reader
	writeTimeout time.Duration

	mu      sync.Mutex
	nextID  uint16
	waiting map[uint16]waiter // PUBACK/SUBACK/PUBCOMP waiters by packet id
	// What the last request left for the next one, so that a device
	// publishing back to back allocates neither per publish: a waiter's
	// channel once its acknowledgement was taken (never one that was
	// forgotten: a late acknowledgement may still be sent to it), and the
	// stopped timer.
	spareCh    chan byte
	spareTimer *time.Timer

	done chan struct{} // closed when the reader ends
	err  error         // why (read after done)
}

// waiter is what an acknowledgement wakes: a request's channel (it gets
// the SUBACK's return code; closed when the connection ends) or, for a
// burst (burst3.go), a function the reader itself calls (ok false when the
// connection ended).
type waiter struct {
	ch chan byte
	fn func(id uint16, rc byte, ok bool)
}

// maxDevicePacket bounds what the broker may announce to a device.
const maxDevicePacket = 1 << 20

// connect3 is connect for an MQTT 3.1.1 device.
func (d *Device) connect3(ctx context.Context) error {
	cfg := &d.fleet.cfg
	a, cancel := d.newAttempt(ctx)
	defer cancel()
	conn, err := a.dial()
	if err != nil {
		return err
	}
	// The attempt's context cuts a CONNACK that does not come.
	stop := context.AfterFunc(a.ctx, func() { conn.SetReadDeadline(time.Now()) })
	code, err := d.handshake3(conn)
	stop()
	end := time.Now()
	if err == nil && code != 0 {
		err = packets.ConnErrors[code]
		if err == nil {
			err = fmt.Errorf("connack return code %d", code)
		}
	}
	if err != nil {
		conn.Close()
		return a.fail(StageConnack, err)
	}
	conn.SetReadDeadline(time.Time{})
	timing := a.connected(end)

	// A small read buffer: one TLS read per packet instead of one per
	// header byte (a PUBACK is 4 bytes, a command a few dozen).
	s := &session3{conn: conn, br: bufio.NewReaderSize(conn, 128), writeTimeout: cfg.WriteTimeout, waiting: map[uint16]waiter{}, done: make(chan struct{})}
	d.mu.Lock()
	d.s3, d.conn = s, conn
	d.dropping = false
	d.mu.Unlock()
	go s.read(d, a.gen)

	// Commands at most at QoS 1: a command is acted on once it arrives,
	// and this client acknowledges with PUBACK only.
	sub := mqttwire.Subscribe{Filters: []mqttwire.Subscription{{Filter: d.commandFilter(), QoS: min(cfg.QoS, 1)}}}
	rc, err := s.request(a.ctx, func(id uint16) []byte { sub.PacketID = id; return sub.Encode() })
	if err == nil && rc == 0x80 {
		err = errors.New("subscription refused")
	}
	if err != nil {
		d.discard3(s)
		return a.fail(StageSub, err)
	}
	// The retained status is part of coming online; a failure here is
	// counted, not fatal: telemetry shows whether the session works.
	on := mqttwire.Publish{Topic: d.statusTopic(), QoS: 1, Retain: true, Payload: []byte("online")}
	if _, err := s.request(a.ctx, func(id uint16) []byte { on.PacketID = id; return on.Encode() }); err != nil && ctx.Err() == nil {
		d.emit(Event{Kind: KindError, Cause: Classify(StagePublish, err) + " (status)"})
	}
	return a.online(func() bool { return d.s3 == s }, timing)
}

// handshake3 writes the CONNECT (clean session, will "offline" retained,
// the fleet's keep-alive; username and password for wss) and reads the
// CONNACK's return code.
func (d *Device) handshake3(conn net.Conn) (byte, error) {
	cfg := &d.fleet.cfg
	will := d.statusTopic()
	c := mqttwire.Connect{
		ClientID: d.ID, KeepAlive: uint16(cfg.KeepAlive / time.Second), Persist: !cfg.CleanSession,
		WillTopic: &will, WillMessage: []byte("offline"), WillQoS: 1, WillRetain: true,
	}
	if cfg.WSSURL != "" {
		c.Username, c.Password = &d.ID, &d.password
	}
	if _, err := conn.Write(c.Encode()); err != nil {
		return 0, err
	}
	p, err := mqttwire.ReadPacket(conn, maxDevicePacket)
	if err != nil {
		return 0, err
	}
	code, _, err := mqttwire.ConnackCode(p)
	return code, err
}

// read is the session's only reader: acknowledgements wake their waiters,
// commands are acted on (and acknowledged) at once. When the connection
// ends it fails every waiter and reports the loss.
func (s *session3) read(d *Device, gen uint64) {
	err := s.readLoop(d)
	s.mu.Lock()
	s.err = err
	var gone []func()
	for id, w := range s.waiting {
		if w.fn != nil {
			gone = append(gone, func() { w.fn(id, 0, false) })
		} else {
			close(w.ch)
		}
		delete(s.waiting, id)
	}
	s.mu.Unlock()
	for _, fn := range gone {
		fn()
	}
	close(s.done)
	d.lost3(s, gen, err)
}

func (s *session3) readLoop(d *Device) error {
	for {
		// The common packet, a PUBACK (40 02 id id), without allocating.
		if b, err := s.br.Peek(4); err == nil && b[0] == mqttwire.TypePuback && b[1] == 2 {
			id := binary.BigEndian.Uint16(b[2:])
			s.br.Discard(4)
			s.ack(id, 0)
			continue
		}
		p, err := mqttwire.ReadPacket(s.br, maxDevicePacket)
		if err != nil {
			return err
		}
		switch p.Type {
		case 5: // PUBREC of a QoS 2 publish: release it, wait for PUBCOMP
			if len(p.Body) < 2 {
				return errors.New("malformed PUBREC")
			}
			if err := s.write([]byte{0x62, 2, p.Body[0], p.Body[1]}); err != nil {
				return err
			}
		case mqttwire.TypePuback >> 4, mqttwire.TypeSuback >> 4, 7: // 7: PUBCOMP
			if len(p.Body) < 2 {
				return errors.New("malformed acknowledgement")
			}
			var rc byte
			if len(p.Body) > 2 {
				rc = p.Body[2] // SUBACK return code
			}
			s.ack(binary.BigEndian.Uint16(p.Body), rc)
		case mqttwire.TypePublish >> 4:
			if err := s.command(d, p); err != nil {
				return err
			}
		case mqttwire.TypePingresp >> 4:
		default:
			return fmt.Errorf("unexpected packet type %d", p.Type)
		}
	}
}

// command handles a PUBLISH on devices/<id>/cmd/#: the device acts on it
// (the reply goes through the fleet's workers) and acknowledges it.
func (s *session3) command(d *Device, p mqttwire.Raw) error {
	qos := (p.Flags >> 1) & 3
	b := p.Body
	if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
		return errors.New("malformed PUBLISH")
	}
	b = b[2+int(binary.BigEndian.Uint16(b)):]
	var id []byte
	if qos > 0 {
		if len(b) < 2 {
			return errors.New("malformed PUBLISH packet id")
		}
		id, b = b[:2], b[2:]
	}
	d.command(b)
	if id != nil {
		return s.write([]byte{mqttwire.TypePuback, 2, id[0], id[1]})
	}
	return nil
}

func (s *session3) ack(id uint16, rc byte) {
	s.mu.Lock()
	w, ok := s.waiting[id]
	delete(s.waiting, id)
	s.mu.Unlock()
	switch {
	case !ok:
	case w.fn != nil:
		w.fn(id, rc, true)
	default:
		w.ch <- rc
	}
}

// register gives w the next free packet id; errSessionGone once the
// reader has ended. s.mu must be held.
func (s *session3) register(w waiter) (uint16, error) {
	if s.err != nil {
		return 0, errSessionGone
	}
	for {
		s.nextID++
		if _, busy := s.waiting[s.nextID]; s.nextID != 0 && !busy {
			break
		}
	}
	s.waiting[s.nextID] = w
	return s.nextID, nil
}

// request writes the packet encode builds for a fresh packet id and waits
// for its PUBACK or SUBACK (the SUBACK's return code), ctx, or the end of
// the connection.
func (s *session3) request(ctx context.Context, encode func(id uint16) []byte) (byte, error) {
	return s.requestWithin(ctx, 0, encode)
}

// requestWithin is request that also gives up after timeout (0: never): a
// timer instead of a context derived from ctx, because a hundred workers
// deriving from one parent contend for its lock.
func (s *session3) requestWithin(ctx context.Context, timeout time.Duration, encode func(id uint16) []byte) (byte, error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return 0, errSessionGone
	}
	ch := s.spareCh
	s.spareCh = nil
	if ch == nil {
		ch = make(chan byte, 1)
	}
	var t *time.Timer
	if timeout > 0 {
		t, s.spareTimer = s.spareTimer, nil
	}
	id, _ := s.register(waiter{ch: ch})
	s.mu.Unlock()
	if err := s.write(encode(id)); err != nil {
		s.forget(id)
		return 0, err
	}
	var expired <-chan time.Time
	if timeout > 0 {
		if t == nil {
			t = time.NewTimer(timeout)
		} else {
			t.Reset(timeout) // stopped; since Go 1.23 no stale tick survives Stop or Reset
		}
		expired = t.C
	}
	select {
	case rc, ok := <-ch:
		if !ok {
			s.spare(nil, t)
			return 0, errSessionGone
		}
		s.spare(ch, t)
		return rc, nil
	case <-ctx.Done():
		s.forget(id)
		s.spare(nil, t)
		return 0, ctx.Err()
	case <-expired:
		s.forget(id)
		s.spare(nil, t)
		return 0, context.DeadlineExceeded
	}
}

// spare keeps a drained waiter channel and a timer (stopped here) for the
// next request.
func (s *session3) spare(ch chan byte, t *time.Timer) {
	if t != nil {
		t.Stop()
	}
	s.mu.Lock()
	if ch != nil {
		s.spareCh = ch
	}
	if t != nil {
		s.spareTimer = t
	}
	s.mu.Unlock()
}

// write writes one packet, bounded by the write timeout (a broker that
// stops reading must not hold a worker for ever) through kaConn.WriteWithin,
// which the fleet's pinger uses too: a TLS write that meets a stale
// deadline breaks the connection for good.
func (s *session3) write(b []byte) error {
	if kc, ok := s.conn.(*kaConn); ok {
		_, err := kc.WriteWithin(b, s.writeTimeout)
		return err
	}
	s.conn.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	_, err := s.conn.Write(b)
	return err
}

func (s *session3) forget(id uint16) {
	s.mu.Lock()
	delete(s.waiting, id)
	s.mu.Unlock()
}

// publish sends one message: QoS 0 is written, QoS 1 waits for the PUBACK,
// QoS 2 for the PUBCOMP (the reader answers the PUBREC), or ctx, or
// timeout.
func (s *session3) publish(ctx context.Context, timeout time.Duration, topic string, qos byte, retain bool, payload []byte) error {
	if qos == 0 {
		return s.write(mqttwire.Publish{Topic: topic, Retain: retain, Payload: payload}.Encode())
	}
	bp := packetBufs.Get().(*[]byte)
	defer packetBufs.Put(bp)
	_, err := s.requestWithin(ctx, timeout, func(id uint16) []byte {
		*bp = appendPublish((*bp)[:0], topic, qos, retain, id, payload)
		return *bp
	})
	return err
}

// packetBufs are the buffers devices build telemetry and PUBLISH packets
// in: every writer copies what it sends (TLS into its record, WebSocket
// into its frame), so a buffer is free again once its write returned and a
// publish allocates neither.
var packetBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendPublish appends a QoS 1 or 2 PUBLISH in one allocation (mqttwire's
// Publish.Encode builds the body, then the packet around it).
func appendPublish(b []byte, topic string, qos byte, retain bool, id uint16, payload []byte) []byte {
	h := mqttwire.TypePublish | qos<<1
	if retain {
		h |= 0x01
	}
	n := 2 + len(topic) + 2 + len(payload)
	b = slices.Grow(b, 1+4+n)
	b = append(b, h)
	b = mqttwire.AppendRemainingLength(b, n)
	b = mqttwire.AppendString(b, topic)
	b = binary.BigEndian.AppendUint16(b, id)
	return append(b, payload...)
}

// close ends the session: DISCONNECT (no will), then the socket, and waits
// at most quiesce for the reader.
func (s *session3) close(quiesce time.Duration) {
	s.conn.SetWriteDeadline(time.Now().Add(quiesce))
	s.conn.Write(mqttwire.Disconnect())
	s.conn.Close()
	t := time.NewTimer(quiesce + time.Second)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
	}
}

// discard3 forgets s (if current) and closes it without a DISCONNECT.
func (d *Device) discard3(s *session3) {
	d.mu.Lock()
	if d.s3 == s {
		d.endSession()
	}
	d.mu.Unlock()
	s.conn.Close()
}

// lost3 is lost for an MQTT 3.1.1 session (on its reader goroutine, once
// the connection ended); it closes the connection before the loss is
// reported and the reconnect loop starts.
func (d *Device) lost3(s *session3, gen uint64, err error) {
	d.lost(gen, func() bool { return d.s3 == s }, func() { s.conn.Close() }, err)
}
