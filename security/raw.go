package security

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/mqttstack/mqttstack/internal/mqttwire"
)

// Hand-built MQTT packets. The malformed-input checks need bytes that no
// client library will produce (NUL in topics, wildcards where they are
// illegal, empty topics without an alias, lengths that lie), and the
// CONNACK checks need the raw return code, so these builders write exactly
// what the caller asks for and validate nothing.

func remLen(n int) []byte { return mqttwire.AppendRemainingLength(nil, n) }

func mstr(s string) []byte { return mqttwire.AppendString(nil, s) }

func packet(header byte, body []byte) []byte { return mqttwire.Packet(header, body) }

// rawConnect describes a CONNECT; zero values mean "absent".
type rawConnect struct {
	V5         bool
	ClientID   string
	Username   *string
	Password   *string
	KeepAlive  uint16
	WillTopic  *string
	WillMsg    []byte
	WillQoS    byte
	WillRetain bool
	Persist    bool   // clean session / clean start 0: resume the stored session
	Props      []byte // v5 CONNECT properties (without the length)
	WillProps  []byte // v5 Will properties (without the length)
}

func (c rawConnect) bytes() []byte {
	return mqttwire.Connect{V5: c.V5, ClientID: c.ClientID, Username: c.Username, Password: c.Password,
		KeepAlive: c.KeepAlive, Persist: c.Persist, WillTopic: c.WillTopic, WillMessage: c.WillMsg,
		WillQoS: c.WillQoS, WillRetain: c.WillRetain, Properties: c.Props, WillProperties: c.WillProps}.Encode()
}

// rawPublish builds a PUBLISH; props is the v5 property block (nil for 3.1.1).
func rawPublish(topic string, qos byte, mid uint16, payload []byte, v5 bool, props []byte) []byte {
	return mqttwire.Publish{Topic: topic, QoS: qos, PacketID: mid, Payload: payload, V5: v5, Properties: props}.Encode()
}

// rawSubscribe builds a SUBSCRIBE for the filters with QoS 1 each.
func rawSubscribe(mid uint16, v5 bool, filters ...string) []byte {
	s := mqttwire.Subscribe{PacketID: mid, V5: v5}
	for _, f := range filters {
		s.Filters = append(s.Filters, mqttwire.Subscription{Filter: f, QoS: 1})
	}
	return s.Encode()
}

var pingreq = mqttwire.Pingreq()

// rawPacket is one packet read from the wire.
type rawPacket struct {
	Type byte // upper nibble of the first byte (1 CONNECT … 14 DISCONNECT)
	Flag byte
	Body []byte
}

// readRaw reads one packet with a deadline. Errors include io.EOF, resets
// and TLS alerts; callers classify them.
func readRaw(conn net.Conn, r *bufio.Reader, d time.Duration) (rawPacket, error) {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	defer conn.SetReadDeadline(time.Time{})
	p, err := mqttwire.ReadPacket(r, maxBrokerPacket)
	if err != nil {
		return rawPacket{}, err
	}
	return rawPacket{Type: p.Type, Flag: p.Flags, Body: p.Body}, nil
}

// maxBrokerPacket bounds what the broker may announce to the suite (its
// own max_packet_size is far below).
const maxBrokerPacket = 4 << 20

// rawConn is a connection speaking hand-built MQTT.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func newRawConn(c net.Conn) *rawConn { return &rawConn{Conn: c, r: bufio.NewReader(c)} }

func (c *rawConn) send(b []byte) error {
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Write(b)
	return err
}

func (c *rawConn) read(d time.Duration) (rawPacket, error) { return readRaw(c.Conn, c.r, d) }

// connack sends a CONNECT and returns the CONNACK return/reason code.
func (c *rawConn) connack(cp rawConnect) (byte, rawPacket, error) {
	if err := c.send(cp.bytes()); err != nil {
		return 0, rawPacket{}, fmt.Errorf("send CONNECT: %w", err)
	}
	p, err := c.read(5 * time.Second)
	if err != nil {
		return 0, p, fmt.Errorf("no CONNACK: %w", err)
	}
	if p.Type != 2 || len(p.Body) < 2 {
		return 0, p, fmt.Errorf("expected CONNACK, got packet type %d", p.Type)
	}
	return p.Body[1], p, nil
}

// closedWithin reports whether the peer closes the connection (EOF, reset,
// alert) within d, draining any packets it sends first (a v5 DISCONNECT is
// returned as the last packet seen).
func (c *rawConn) closedWithin(d time.Duration) (bool, []rawPacket, error) {
	deadline := time.Now().Add(d)
	var seen []rawPacket
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false, seen, nil
		}
		p, err := c.read(left)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return false, seen, nil
			}
			return true, seen, err
		}
		seen = append(seen, p)
	}
}

// v5 property helpers.
func propU16(id byte, v uint16) []byte { return []byte{id, byte(v >> 8), byte(v)} }
func propU32(id byte, v uint32) []byte {
	return []byte{id, byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// v5Props parses a v5 property block into id → raw value bytes (only the
// integer properties the checks read are decoded).
func connackPropsU(body []byte) map[byte]uint32 {
	out := map[byte]uint32{}
	if len(body) < 3 {
		return out
	}
	b := body[2:]
	n, i, mul := 0, 0, 1
	for ; i < len(b); i++ {
		n += int(b[i]&0x7f) * mul
		mul *= 128
		if b[i]&0x80 == 0 {
			i++
			break
		}
	}
	if i+n > len(b) {
		return out
	}
	p := b[i : i+n]
	for len(p) > 0 {
		id := p[0]
		p = p[1:]
		switch id {
		case 0x21, 0x22, 0x13: // receive maximum, topic alias maximum, server keep alive
			if len(p) < 2 {
				return out
			}
			out[id] = uint32(binary.BigEndian.Uint16(p))
			p = p[2:]
		case 0x27, 0x11: // maximum packet size, session expiry
			if len(p) < 4 {
				return out
			}
			out[id] = binary.BigEndian.Uint32(p)
			p = p[4:]
		case 0x24, 0x25, 0x28, 0x29, 0x2A: // one-byte flags
			if len(p) < 1 {
				return out
			}
			out[id] = uint32(p[0])
			p = p[1:]
		case 0x12, 0x1F, 0x1A, 0x1C, 0x15, 0x26: // strings; a user property (0x26) is two
			strs := 1
			if id == 0x26 {
				strs = 2
			}
			for k := 0; k < strs; k++ {
				if len(p) < 2 {
					return out
				}
				l := int(binary.BigEndian.Uint16(p))
				if len(p) < 2+l {
					return out
				}
				p = p[2+l:]
			}
		default:
			return out
		}
	}
	return out
}
