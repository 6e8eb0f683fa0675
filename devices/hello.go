package devices

import (
	"errors"
	"fmt"
)

// TLS extension numbers the profiles use (IANA registry).
const (
	ExtServerName     uint16 = 0x0000
	ExtMaxFragment    uint16 = 0x0001
	ExtGroups         uint16 = 0x000a
	ExtPointFormats   uint16 = 0x000b
	ExtSignatureAlgs  uint16 = 0x000d
	ExtALPN           uint16 = 0x0010
	ExtEncryptThenMAC uint16 = 0x0016
	ExtExtendedMaster uint16 = 0x0017
	ExtSessionTicket  uint16 = 0x0023
	ExtSupportedVers  uint16 = 0x002b
	ExtPSKModes       uint16 = 0x002d
	ExtKeyShare       uint16 = 0x0033
	ExtRenegotiation  uint16 = 0xff01
)

// Hello is what a ClientHello offers, decoded from the wire: the fields a
// server's choice depends on, in wire order.
type Hello struct {
	RecordVersion uint16   // version in the record header (0x0301 for most stacks)
	Version       uint16   // legacy_version in the hello body
	SessionIDLen  int      // length of the offered session id
	Suites        []uint16 // cipher suites, wire order
	Extensions    []uint16 // extension types, wire order
	Groups        []uint16 // supported_groups, wire order
	PointFormats  []uint8
	SigAlgs       []uint16 // signature_algorithms, wire order
	Versions      []uint16 // supported_versions (TLS 1.3 stacks only)
	ServerName    string   // SNI host name, "" when absent
	MaxFragment   uint8    // MFLN code: 0 absent, 1=512, 2=1024, 3=2048, 4=4096
}

// MaxFragmentBytes is the record size an MFLN code asks for (0 = none).
func MaxFragmentBytes(code uint8) int {
	if code >= 1 && code <= 4 {
		return 256 << code
	}
	return 0
}

// reader is a bounds-checked big-endian cursor over a byte slice.
type reader struct {
	b   []byte
	err error
}

func (r *reader) n(k int) []byte {
	if r.err != nil {
		return nil
	}
	if k < 0 || len(r.b) < k {
		r.err = errors.New("truncated")
		return nil
	}
	v := r.b[:k]
	r.b = r.b[k:]
	return v
}

func (r *reader) u8() uint8 {
	v := r.n(1)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *reader) u16() uint16 {
	v := r.n(2)
	if v == nil {
		return 0
	}
	return uint16(v[0])<<8 | uint16(v[1])
}

func (r *reader) u24() int {
	v := r.n(3)
	if v == nil {
		return 0
	}
	return int(v[0])<<16 | int(v[1])<<8 | int(v[2])
}

// vec reads a vector with a length prefix of lenBytes (1, 2 or 3) bytes.
func (r *reader) vec(lenBytes int) *reader {
	var k int
	switch lenBytes {
	case 1:
		k = int(r.u8())
	case 2:
		k = int(r.u16())
	default:
		k = r.u24()
	}
	return &reader{b: r.n(k), err: r.err}
}

func u16s(r *reader) []uint16 {
	var out []uint16
	for len(r.b) >= 2 && r.err == nil {
		out = append(out, r.u16())
	}
	if len(r.b) != 0 && r.err == nil {
		r.err = errors.New("odd length")
	}
	return out
}

// ParseClientHello decodes one TLS record holding a ClientHello (the form
// of the captures in testdata/hello): record header, handshake header, body.
func ParseClientHello(record []byte) (*Hello, error) {
	r := &reader{b: record}
	if typ := r.u8(); typ != 22 {
		return nil, fmt.Errorf("clienthello: record type %d, want 22 (handshake)", typ)
	}
	h := &Hello{RecordVersion: r.u16()}
	rec := r.vec(2)
	if rec.u8() != 1 {
		return nil, errors.New("clienthello: handshake type is not client_hello (1)")
	}
	body := rec.vec(3)
	if err := h.parseBody(body); err != nil {
		return nil, fmt.Errorf("clienthello: %w", err)
	}
	return h, nil
}

func (h *Hello) parseBody(body *reader) error {
	h.Version = body.u16()
	body.n(32) // random
	h.SessionIDLen = len(body.vec(1).b)
	h.Suites = u16s(body.vec(2))
	body.vec(1) // compression methods
	if body.err != nil {
		return body.err
	}
	if len(body.b) == 0 {
		return nil // no extensions (SSL 3.0 style)
	}
	exts := body.vec(2)
	for len(exts.b) > 0 && exts.err == nil {
		typ := exts.u16()
		data := exts.vec(2)
		h.Extensions = append(h.Extensions, typ)
		switch typ {
		case ExtServerName:
			list := data.vec(2)
			for len(list.b) > 0 && list.err == nil {
				kind := list.u8()
				name := list.vec(2)
				if kind == 0 {
					h.ServerName = string(name.b)
				}
			}
		case ExtMaxFragment:
			h.MaxFragment = data.u8()
		case ExtGroups:
			h.Groups = u16s(data.vec(2))
		case ExtPointFormats:
			h.PointFormats = data.vec(1).b
		case ExtSignatureAlgs:
			h.SigAlgs = u16s(data.vec(2))
		case ExtSupportedVers:
			h.Versions = u16s(data.vec(1))
		}
		if data.err != nil {
			return fmt.Errorf("extension %#04x: %w", typ, data.err)
		}
	}
	return exts.err
}

// ServerHello is what the server chose, decoded from its plaintext flight.
type ServerHello struct {
	Version     uint16 // negotiated version (supported_versions for TLS 1.3)
	Suite       uint16
	Extensions  []uint16
	MaxFragment uint8  // echoed MFLN code, 0 when the server ignored it
	Group       uint16 // TLS 1.3 key_share group; TLS 1.2: from ServerKeyExchange
}

func parseServerHello(msg []byte) (*ServerHello, error) {
	r := &reader{b: msg}
	s := &ServerHello{Version: r.u16()}
	r.n(32)
	r.vec(1)
	s.Suite = r.u16()
	r.u8()
	if r.err != nil {
		return nil, fmt.Errorf("serverhello: %w", r.err)
	}
	if len(r.b) == 0 {
		return s, nil
	}
	exts := r.vec(2)
	for len(exts.b) > 0 && exts.err == nil {
		typ := exts.u16()
		data := exts.vec(2)
		s.Extensions = append(s.Extensions, typ)
		switch typ {
		case ExtMaxFragment:
			s.MaxFragment = data.u8()
		case ExtSupportedVers:
			s.Version = data.u16()
		case ExtKeyShare:
			s.Group = data.u16()
		}
	}
	if exts.err != nil {
		return nil, fmt.Errorf("serverhello: %w", exts.err)
	}
	return s, nil
}

func hex4(v uint16) string { return fmt.Sprintf("%04x", v) }
