package devices

import (
	"errors"
	"fmt"
	"net"
	"sync"
)

// TLS record content types.
const (
	recChangeCipher = 20
	recAlert        = 21
	recHandshake    = 22
)

// wire sits between a TLS client and the socket and plays the board's
// record layer around it: it fragments the client's plaintext handshake
// records to the negotiated max_fragment_length (uTLS sends MFLN but, like
// crypto/tls, writes 16 KiB records), and it reads the server's records
// for what the board would see: the ServerHello, the size of the first
// flight and of the certificate chain, alerts, and records larger than the
// board's input buffer.
//
// Concurrency: the TLS conn on top calls Read and Write from one goroutine
// each (handshake, then the MQTT exchange); mu guards the statistics that
// both sides and Stats touch.
type wire struct {
	net.Conn
	p Profile

	mu       sync.Mutex
	stats    Stats
	inBuf    []byte // server bytes not yet parsed into records
	hsBuf    []byte // server handshake bytes not yet parsed into messages
	outBuf   []byte // client bytes not yet a whole record
	writes   int    // client records written
	readN    int    // server bytes read so far
	srvCCS   bool   // the server's records are encrypted from here on
	cliCCS   bool   // the client's records are encrypted from here on
	limitErr error  // a board limit the server's records broke (sticky)
}

// Stats is what the wire saw of one handshake and the exchange after it.
type Stats struct {
	ServerHello  *ServerHello `json:"-"`
	Version      uint16       `json:"version"`
	Suite        uint16       `json:"suite"`
	Group        uint16       `json:"group,omitempty"`
	ServerSigAlg uint16       `json:"server_sig_alg,omitempty"` // TLS 1.2 ServerKeyExchange
	ServerMFLN   int          `json:"server_mfln,omitempty"`    // record size the server agreed to (0: ignored or not asked)
	FirstFlight  int          `json:"first_flight_bytes"`       // bytes the server sent before the client's second flight
	ServerChain  int          `json:"server_chain_bytes,omitempty"`
	MaxRecordIn  int          `json:"max_record_in"` // largest record body the server sent
	ClientChain  int          `json:"client_chain_bytes,omitempty"`
	Alert        int          `json:"alert,omitempty"` // plaintext alert from the server (-1 none)
}

func newWire(c net.Conn, p Profile) *wire {
	w := &wire{Conn: c, p: p}
	w.stats.Alert = -1
	return w
}

// Stats returns a copy of what the wire saw so far.
func (w *wire) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	if w.writes <= 1 {
		s.FirstFlight = w.readN
	}
	return s
}

// limitError is a board limit the server broke.
type limitError struct {
	reason Reason
	detail string
}

func (e *limitError) Error() string { return e.detail }

func (w *wire) Read(b []byte) (int, error) {
	w.mu.Lock()
	if err := w.limitErr; err != nil {
		w.mu.Unlock()
		return 0, err
	}
	w.mu.Unlock()
	n, err := w.Conn.Read(b)
	if n > 0 {
		w.mu.Lock()
		w.readN += n
		w.inBuf = append(w.inBuf, b[:n]...)
		w.parseIn()
		lerr := w.limitErr
		w.mu.Unlock()
		if lerr != nil {
			// The board drops the connection at the record it cannot take.
			return 0, lerr
		}
	}
	return n, err
}

// parseIn consumes whole records of the server (mu held).
func (w *wire) parseIn() {
	for len(w.inBuf) >= 5 {
		typ := w.inBuf[0]
		n := int(w.inBuf[3])<<8 | int(w.inBuf[4])
		if len(w.inBuf) < 5+n {
			return
		}
		body := w.inBuf[5 : 5+n]
		w.inBuf = w.inBuf[5+n:]
		w.stats.MaxRecordIn = max(w.stats.MaxRecordIn, n)
		plain := n
		if w.srvCCS || typ == 23 {
			plain = n - 24 // AEAD: 8-byte explicit nonce + 16-byte tag (TLS 1.2 GCM)
		}
		if w.p.RecordIn > 0 && plain > w.p.RecordIn && w.limitErr == nil {
			why := "the server ignored max_fragment_length"
			if w.p.MFLN == 0 {
				why = "the board does not send max_fragment_length"
			}
			w.limitErr = &limitError{ReasonRecordTooLarge, fmt.Sprintf("the broker sent a %d-byte record; the board takes at most %d (%s)", plain, w.p.RecordIn, why)}
		}
		switch {
		case typ == recChangeCipher:
			w.srvCCS = true
		case typ == recAlert && !w.srvCCS && len(body) == 2:
			w.stats.Alert = int(body[1])
		case typ == recHandshake && !w.srvCCS:
			w.hsBuf = append(w.hsBuf, body...)
			w.parseHandshake()
		}
	}
}

// parseHandshake consumes whole plaintext handshake messages (mu held).
func (w *wire) parseHandshake() {
	for len(w.hsBuf) >= 4 {
		typ := w.hsBuf[0]
		n := int(w.hsBuf[1])<<16 | int(w.hsBuf[2])<<8 | int(w.hsBuf[3])
		if len(w.hsBuf) < 4+n {
			return
		}
		msg := w.hsBuf[4 : 4+n]
		w.hsBuf = w.hsBuf[4+n:]
		switch typ {
		case 2: // server_hello
			if sh, err := parseServerHello(msg); err == nil {
				w.stats.ServerHello = sh
				w.stats.Version, w.stats.Suite = sh.Version, sh.Suite
				if sh.Group != 0 {
					w.stats.Group = sh.Group
				}
				w.stats.ServerMFLN = MaxFragmentBytes(sh.MaxFragment)
				if sh.Version == 0x0304 {
					// Everything after the ServerHello is encrypted.
					w.srvCCS = true
				}
			}
		case 11: // certificate
			w.stats.ServerChain = 4 + n
			if w.p.HandshakeIn > 0 && 4+n > w.p.HandshakeIn && w.limitErr == nil {
				w.limitErr = &limitError{ReasonChainTooLarge, fmt.Sprintf("the broker's certificate chain is %d bytes; the board holds at most %d", 4+n, w.p.HandshakeIn)}
			}
		case 12: // server_key_exchange: curve_type(3) named_curve(2) point<1> sigalg(2)
			if len(msg) >= 4 && msg[0] == 3 {
				w.stats.Group = uint16(msg[1])<<8 | uint16(msg[2])
				if k := 4 + int(msg[3]); len(msg) >= k+2 && w.stats.Version == 0x0303 {
					w.stats.ServerSigAlg = uint16(msg[k])<<8 | uint16(msg[k+1])
					if w.p.Verify == VerifyP256Only && w.stats.ServerSigAlg != 0x0403 && w.stats.ServerSigAlg>>8 > 6 && w.limitErr == nil {
						w.limitErr = &limitError{ReasonSignature, fmt.Sprintf("the broker signed its key exchange with %#04x; the board's secure element verifies only ECDSA P-256/SHA-256", w.stats.ServerSigAlg)}
					}
				}
			}
		}
	}
}

func (w *wire) Write(b []byte) (int, error) {
	w.mu.Lock()
	w.outBuf = append(w.outBuf, b...)
	var out []byte
	var err error
	for len(w.outBuf) >= 5 {
		typ := w.outBuf[0]
		n := int(w.outBuf[3])<<8 | int(w.outBuf[4])
		if len(w.outBuf) < 5+n {
			break
		}
		rec := w.outBuf[:5+n]
		w.outBuf = w.outBuf[5+n:]
		w.writes++
		if w.writes == 2 {
			w.stats.FirstFlight = w.readN
		}
		limit := w.stats.ServerMFLN
		switch {
		case typ == recChangeCipher:
			w.cliCCS = true
			out = append(out, rec...)
		case limit > 0 && n > limit && !w.cliCCS:
			// A handshake message may span records: cut it at the limit.
			for body := rec[5:]; len(body) > 0; {
				k := min(len(body), limit)
				out = append(out, typ, rec[1], rec[2], byte(k>>8), byte(k))
				out = append(out, body[:k]...)
				body = body[k:]
			}
		case limit > 0 && n-24 > limit && w.cliCCS:
			err = fmt.Errorf("%w: an encrypted record of %d bytes exceeds the %d bytes the board negotiated", ErrCannotEmulate, n, limit)
		default:
			out = append(out, rec...)
		}
	}
	w.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if len(out) > 0 {
		if _, werr := w.Conn.Write(out); werr != nil {
			return 0, werr
		}
	}
	return len(b), nil
}

// ErrCannotEmulate marks what the tool cannot play of a board (a suite
// uTLS does not implement, an encrypted record over the MFLN).
var ErrCannotEmulate = errors.New("the emulator cannot play this")
