// Package mqttwire encodes MQTT 3.1.1 and 5 control packets by hand, written
// once for the three places that need bytes no client library gives them:
// infra/local's readiness probe, fleet's shared pinger (which also patches
// the keep-alive of paho's CONNECT) and the security suite's hostile and
// raw-return-code checks.
//
// The encoders write exactly what the caller asks for and validate nothing
// (a check may need a lying length or a NUL in a topic); the decoders
// refuse what the specification forbids. Section numbers refer to MQTT
// Version 3.1.1 (OASIS Standard, 29 October 2014) and MQTT Version 5.0
// (OASIS Standard, 7 March 2019).
package mqttwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// First bytes of the fixed header (packet type in the high nibble and the
// flags the specification fixes for it, 3.1.1 §2.2).
const (
	TypeConnect     byte = 0x10
	TypeConnack     byte = 0x20
	TypePublish     byte = 0x30 // | dup<<3 | qos<<1 | retain
	TypePuback      byte = 0x40
	TypeSubscribe   byte = 0x82 // reserved flags 0010 (§3.8.1)
	TypeSuback      byte = 0x90
	TypeUnsubscribe byte = 0xA2
	TypePingreq     byte = 0xC0
	TypePingresp    byte = 0xD0
	TypeDisconnect  byte = 0xE0
)

// MaxRemainingLength is the largest remaining length four bytes can carry
// (268,435,455: 3.1.1 §2.2.3).
const MaxRemainingLength = 1<<28 - 1

// AppendRemainingLength appends n as a variable byte integer (3.1.1 §2.2.3,
// 5.0 §1.5.5): seven bits per byte, least significant group first, the
// high bit set on every byte but the last. n above MaxRemainingLength is
// encoded in more than four bytes, as a malformed-input check may want.
func AppendRemainingLength(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// ErrMalformedLength is a variable byte integer longer than four bytes.
var ErrMalformedLength = errors.New("mqtt: malformed remaining length (more than 4 bytes)")

// ReadRemainingLength reads a variable byte integer.
func ReadRemainingLength(r io.ByteReader) (int, error) {
	n, mul := 0, 1
	for i := 0; i < 4; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		n += int(b&0x7f) * mul
		if b&0x80 == 0 {
			return n, nil
		}
		mul *= 128
	}
	return 0, ErrMalformedLength
}

// AppendString appends s as a UTF-8 encoded string: a two-byte big-endian
// length, then the bytes (3.1.1 §1.5.3). Longer than 65,535 bytes is
// truncated in the length, as asked.
func AppendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// Packet is a fixed header byte, the remaining length and the body.
func Packet(header byte, body []byte) []byte {
	out := AppendRemainingLength([]byte{header}, len(body))
	return append(out, body...)
}

// Connect describes a CONNECT (3.1.1 §3.1, 5.0 §3.1). Nil pointers mean
// "absent"; the flags follow from what is present.
type Connect struct {
	V5        bool // protocol level 5 instead of 4
	ClientID  string
	Username  *string
	Password  *string
	KeepAlive uint16 // seconds
	// Persist clears Clean Session (3.1.1) / Clean Start (5): resume the
	// stored session.
	Persist     bool
	WillTopic   *string
	WillMessage []byte
	WillQoS     byte
	WillRetain  bool
	// Properties and WillProperties are v5 property blocks without their
	// length (nil = none).
	Properties     []byte
	WillProperties []byte
}

// Connect flags (3.1.1 §3.1.2.3).
const (
	flagCleanSession = 0x02
	flagWill         = 0x04
	flagWillRetain   = 0x20
	flagPassword     = 0x40
	flagUsername     = 0x80
)

// Encode returns the packet.
func (c Connect) Encode() []byte {
	level := byte(4)
	if c.V5 {
		level = 5
	}
	flags := byte(flagCleanSession)
	if c.Persist {
		flags = 0
	}
	if c.Username != nil {
		flags |= flagUsername
	}
	if c.Password != nil {
		flags |= flagPassword
	}
	if c.WillTopic != nil {
		flags |= flagWill | c.WillQoS<<3
		if c.WillRetain {
			flags |= flagWillRetain
		}
	}
	body := AppendString(nil, "MQTT")
	body = append(body, level, flags)
	body = binary.BigEndian.AppendUint16(body, c.KeepAlive)
	if c.V5 {
		body = AppendRemainingLength(body, len(c.Properties))
		body = append(body, c.Properties...)
	}
	body = AppendString(body, c.ClientID)
	if c.WillTopic != nil {
		if c.V5 {
			body = AppendRemainingLength(body, len(c.WillProperties))
			body = append(body, c.WillProperties...)
		}
		body = AppendString(body, *c.WillTopic)
		body = AppendString(body, string(c.WillMessage))
	}
	if c.Username != nil {
		body = AppendString(body, *c.Username)
	}
	if c.Password != nil {
		body = AppendString(body, *c.Password)
	}
	return Packet(TypeConnect, body)
}

// Publish describes a PUBLISH (3.1.1 §3.3, 5.0 §3.3).
type Publish struct {
	Topic    string
	QoS      byte
	Retain   bool
	Dup      bool
	PacketID uint16 // written only when QoS > 0
	Payload  []byte
	V5       bool
	// Properties is the v5 property block without its length.
	Properties []byte
}

// Encode returns the packet.
func (p Publish) Encode() []byte {
	h := TypePublish | p.QoS<<1
	if p.Retain {
		h |= 0x01
	}
	if p.Dup {
		h |= 0x08
	}
	body := AppendString(nil, p.Topic)
	if p.QoS > 0 {
		body = binary.BigEndian.AppendUint16(body, p.PacketID)
	}
	if p.V5 {
		body = AppendRemainingLength(body, len(p.Properties))
		body = append(body, p.Properties...)
	}
	body = append(body, p.Payload...)
	return Packet(h, body)
}

// Subscription is one topic filter of a SUBSCRIBE with its requested QoS
// (v5: the whole subscription options byte).
type Subscription struct {
	Filter string
	QoS    byte
}

// Subscribe describes a SUBSCRIBE (3.1.1 §3.8, 5.0 §3.8).
type Subscribe struct {
	PacketID uint16
	Filters  []Subscription
	V5       bool
	// Properties is the v5 property block without its length.
	Properties []byte
}

// Encode returns the packet.
func (s Subscribe) Encode() []byte {
	body := binary.BigEndian.AppendUint16(nil, s.PacketID)
	if s.V5 {
		body = AppendRemainingLength(body, len(s.Properties))
		body = append(body, s.Properties...)
	}
	for _, f := range s.Filters {
		body = AppendString(body, f.Filter)
		body = append(body, f.QoS)
	}
	return Packet(TypeSubscribe, body)
}

// Pingreq returns a PINGREQ (3.1.1 §3.12): two bytes, a new slice each
// call so no caller can change another's.
func Pingreq() []byte { return []byte{TypePingreq, 0} }

// Disconnect returns a 3.1.1 DISCONNECT (§3.14), which is also a v5
// DISCONNECT with reason 0 and no properties (5.0 §3.14.2.1).
func Disconnect() []byte { return []byte{TypeDisconnect, 0} }

// PatchKeepAlive sets the keep-alive of a CONNECT (protocol level 4 or 5:
// the variable header starts alike) in place and reports whether b starts
// with one. paho writes each packet in one Write, so the first Write of a
// connection holds the whole CONNECT.
func PatchKeepAlive(b []byte, keepalive uint16) bool {
	if len(b) < 2 || b[0] != TypeConnect {
		return false
	}
	i := 1
	for ; i < len(b) && i <= 4; i++ {
		if b[i]&0x80 == 0 {
			break
		}
	}
	i++ // first byte of the variable header
	// "MQTT" (length-prefixed), level, flags, keep-alive
	if len(b) < i+10 || string(b[i:i+6]) != "\x00\x04MQTT" || (b[i+6] != 4 && b[i+6] != 5) {
		return false
	}
	binary.BigEndian.PutUint16(b[i+8:], keepalive)
	return true
}

// Raw is one packet read from the wire.
type Raw struct {
	Type  byte // the high nibble of the first byte (1 CONNECT … 14 DISCONNECT, 15 AUTH)
	Flags byte // the low nibble
	Body  []byte
}

// ReadPacket reads one packet. It never reads past the packet: give it a
// *bufio.Reader for speed, or the connection itself when later bytes must
// stay unread. maxBody bounds the remaining length a peer may announce
// (0 = MaxRemainingLength): a lying length must not make the reader
// allocate what it says.
func ReadPacket(r io.Reader, maxBody int) (Raw, error) {
	return ReadPacketInto(r, maxBody, nil)
}

// ReadPacketInto is ReadPacket reading the body into buf when it fits (the
// body then shares buf's memory: it is valid until buf is reused), so that
// a reader that handles each packet before the next allocates nothing.
func ReadPacketInto(r io.Reader, maxBody int, buf []byte) (Raw, error) {
	br, ok := r.(io.ByteReader)
	if !ok {
		br = oneByte{r}
	}
	h, err := br.ReadByte()
	if err != nil {
		return Raw{}, err
	}
	n, err := ReadRemainingLength(br)
	if err != nil {
		return Raw{}, err
	}
	if maxBody > 0 && n > maxBody {
		return Raw{}, fmt.Errorf("mqtt: packet of type %d announces %d bytes, more than the %d allowed", h>>4, n, maxBody)
	}
	var body []byte
	if n <= cap(buf) {
		body = buf[:n]
	} else {
		body = make([]byte, n)
	}
	if _, err := io.ReadFull(r, body); err != nil {
		return Raw{}, err
	}
	return Raw{Type: h >> 4, Flags: h & 0x0f, Body: body}, nil
}

// oneByte reads single bytes without read-ahead.
type oneByte struct{ r io.Reader }

func (o oneByte) ReadByte() (byte, error) {
	var b [1]byte
	if _, err := io.ReadFull(o.r, b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

// ErrNotConnack is a first packet that is not a well-formed CONNACK.
var ErrNotConnack = errors.New("mqtt: not a CONNACK")

// ConnackCode returns the return code (3.1.1) or reason code (5) of a
// CONNACK and its session-present flag.
func ConnackCode(p Raw) (code byte, sessionPresent bool, err error) {
	if p.Type != TypeConnack>>4 || p.Flags != 0 || len(p.Body) < 2 {
		return 0, false, fmt.Errorf("%w: type %d flags %d, %d body bytes", ErrNotConnack, p.Type, p.Flags, len(p.Body))
	}
	return p.Body[1], p.Body[0]&0x01 != 0, nil
}
