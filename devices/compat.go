package devices

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/mqttstack/mqttstack/host"
)

// Options configures a compatibility run against one broker.
type Options struct {
	// Addr is host:port of the broker's mTLS listener.
	Addr string
	// ServerName is the broker's name the boards are configured with.
	ServerName string
	// DialIP makes the boards dial Addr's IP literal rather than the name
	// (their SNI rules then apply). Addr must hold an IP address.
	DialIP bool
	// RootCAs is the CA the boards trust.
	RootCAs *x509.CertPool
	// Identity returns a board's client certificate and MQTT id for a
	// profile (see PKIIdentities). An error becomes the row's refusal.
	Identity func(p Profile) (*tls.Certificate, string, error)
	// Profiles to run (Profiles() when empty).
	Profiles []Profile
	// Required names the profiles that must work (the stack's or the
	// scenario's): Matrix.Failed lists those that did not.
	Required []string
	// Skew, when not zero, adds a column with the board's clock off by Skew.
	Skew time.Duration
	// Host reads the broker's CPU time (nil: CPU per handshake is not
	// measured, and the matrix says why).
	Host host.Host
	// CostHandshakes is how many extra handshakes per profile are timed for
	// the broker's CPU (default 50; only with Host).
	CostHandshakes int
	// Timeout bounds each handshake and round trip (default 10s).
	Timeout time.Duration
}

// Row is one profile's result.
type Row struct {
	Profile  string `json:"profile"`
	Board    string `json:"board"`
	Required bool   `json:"required,omitempty"`
	// Verdict is "works" or "refused".
	Verdict string `json:"verdict"`
	Reason  Reason `json:"reason,omitempty"`
	By      string `json:"refused_by,omitempty"`
	Detail  string `json:"detail,omitempty"`
	// Expect is the verdict the profile data predicts for mqttstack's
	// hardened broker; Matches says whether this run agrees.
	Expect  string `json:"expect"`
	Matches bool   `json:"matches_expectation"`

	Version string `json:"tls_version,omitempty"`
	Suite   string `json:"suite,omitempty"`
	Group   string `json:"group,omitempty"`
	// MFLN asked for by the board and agreed to by the broker (0: none).
	MFLN       int `json:"mfln,omitempty"`
	ServerMFLN int `json:"server_mfln,omitempty"`
	// FirstFlight is the size of the broker's first flight in bytes.
	FirstFlight int `json:"first_flight_bytes"`
	// ServerChain is the broker's certificate message (TLS 1.2; 0 when
	// encrypted) next to what the board can hold (0: streamed/unknown).
	ServerChain int `json:"server_chain_bytes,omitempty"`
	BoardIn     int `json:"board_handshake_in,omitempty"`
	// ClientChain is the board's own certificate message next to its
	// output buffer.
	ClientChain int    `json:"client_chain_bytes,omitempty"`
	BoardOut    int    `json:"board_handshake_out,omitempty"`
	MaxRecordIn int    `json:"max_record_in,omitempty"`
	ClientKey   string `json:"client_key"`

	HandshakeMS float64 `json:"handshake_ms"`
	RoundTripMS float64 `json:"round_trip_ms,omitempty"`
	// BrokerCPUus is the broker's CPU per handshake in microseconds (-1:
	// not measured, see Matrix.CPUNote).
	BrokerCPUus float64 `json:"broker_cpu_us_per_handshake"`

	// NoNTP is the verdict with the board's clock unset (1970), Skewed with
	// the clock off by Options.Skew ("" when not run).
	NoNTP       string `json:"clock_unset"`
	NoNTPReason Reason `json:"clock_unset_reason,omitempty"`
	Skewed      string `json:"clock_skewed,omitempty"`
	Clock       string `json:"clock"`
}

// Works reports whether the board completed the handshake and round trip.
func (r Row) Works() bool { return r.Verdict == "works" }

// Matrix is the result of a compatibility run.
type Matrix struct {
	Target     string        `json:"target"`
	ServerName string        `json:"server_name"`
	Started    time.Time     `json:"started"`
	Duration   time.Duration `json:"duration_ns"`
	Host       string        `json:"host,omitempty"`
	CPUNote    string        `json:"cpu_note,omitempty"`
	Skew       time.Duration `json:"skew_ns,omitempty"`
	Rows       []Row         `json:"rows"`
}

// Failed lists the required profiles that did not work.
func (m *Matrix) Failed() []Row {
	var out []Row
	for _, r := range m.Rows {
		if r.Required && !r.Works() {
			out = append(out, r)
		}
	}
	return out
}

// Run runs every profile against the broker, one after the other (a
// matrix measures, it does not load). Only a bad option or a cancelled
// context is an error; a board that fails is a row.
func Run(ctx context.Context, o Options) (*Matrix, error) {
	var errs []error
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		errs = append(errs, fmt.Errorf("devices compat: broker address %q: %w", o.Addr, err))
	}
	if o.ServerName == "" {
		errs = append(errs, errors.New("devices compat: server name: required"))
	}
	if o.RootCAs == nil {
		errs = append(errs, errors.New("devices compat: root CAs: required (the private CA)"))
	}
	if o.Identity == nil {
		errs = append(errs, errors.New("devices compat: identity: required"))
	}
	var dialIP netip.Addr
	if o.DialIP {
		h, _, _ := net.SplitHostPort(o.Addr)
		ip, err := netip.ParseAddr(h)
		if err != nil {
			errs = append(errs, fmt.Errorf("devices compat: dial by IP needs an IP address in %q", o.Addr))
		}
		dialIP = ip
	}
	profiles := o.Profiles
	if len(profiles) == 0 {
		profiles = Profiles()
	}
	for _, n := range o.Required {
		if !slices.ContainsFunc(profiles, func(p Profile) bool { return p.Name == n }) {
			errs = append(errs, fmt.Errorf("devices compat: required profile %q is not among the profiles run", n))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.CostHandshakes <= 0 {
		o.CostHandshakes = 50
	}
	m := &Matrix{Target: o.Addr, ServerName: o.ServerName, Started: time.Now(), Skew: o.Skew}
	if o.Host == nil {
		m.CPUNote = "broker CPU not measured: no host access to the broker (a local stack or a target with ssh)"
	} else {
		m.Host = o.Host.Name()
	}
	for _, p := range profiles {
		if err := ctx.Err(); err != nil {
			return m, err
		}
		row, err := runProfile(ctx, o, p, dialIP, m)
		if err != nil {
			return m, err
		}
		m.Rows = append(m.Rows, row)
	}
	m.Duration = time.Since(m.Started)
	return m, nil
}

func runProfile(ctx context.Context, o Options, p Profile, dialIP netip.Addr, m *Matrix) (Row, error) {
	row := Row{
		Profile: p.Name, Board: p.Board, Required: slices.Contains(o.Required, p.Name),
		Expect: p.Expect, MFLN: p.MFLN, BoardIn: p.HandshakeIn, BoardOut: p.HandshakeOut,
		ClientKey: string(p.ClientKey), Clock: p.Clock, BrokerCPUus: -1,
	}
	board := Board{ServerName: o.ServerName, DialIP: dialIP, RootCAs: o.RootCAs}
	cert, id, err := o.Identity(p)
	if err != nil {
		row.Verdict, row.Reason, row.By, row.Detail = "refused", ReasonNoIdentity, "tool", err.Error()
		row.Matches = false
		return row, nil
	}
	board.Cert = cert

	// 1. The real run: handshake, CONNECT, publish/subscribe round trip.
	start := time.Now()
	conn, st, err := dial(ctx, o, p, board)
	row.HandshakeMS = ms(time.Since(start))
	row.fill(st)
	if err == nil {
		rctx, cancel := context.WithTimeout(ctx, o.Timeout)
		var rt time.Duration
		rt, err = roundTrip(rctx, conn, id)
		cancel()
		conn.Close()
		row.RoundTripMS = ms(rt)
		if err != nil {
			err = Classify(p, board, conn.Stats(), err)
		}
	}
	if ctx.Err() != nil {
		return row, ctx.Err()
	}
	if err != nil {
		var r *Refusal
		errors.As(err, &r)
		row.Verdict, row.Reason, row.By, row.Detail = "refused", r.Reason, r.By, r.Detail
		if r.Reason == ReasonNoSharedCipher {
			refine(ctx, o, p, board, &row)
		}
	} else {
		row.Verdict = "works"
	}
	row.Matches = row.Verdict == p.Expect

	// 2. Clock realism: the same board with NTP failed (clock at 1970) and,
	// if asked, with a skewed clock. The handshake is what dates affect.
	clockRun := func(clock func() time.Time) (string, Reason) {
		b := board
		b.Clock = clock
		c, _, err := dial(ctx, o, p, b)
		if err != nil {
			var r *Refusal
			if errors.As(err, &r) {
				return "refused", r.Reason
			}
			return "refused", ReasonHandshake
		}
		c.Close()
		return "works", ""
	}
	row.NoNTP, row.NoNTPReason = clockRun(func() time.Time { return time.Unix(0, 0) })
	if o.Skew != 0 {
		v, r := clockRun(func() time.Time { return time.Now().Add(o.Skew) })
		row.Skewed = v
		if r != "" {
			row.Skewed += ": " + string(r)
		}
	}

	// 3. Broker CPU per handshake, from the host's process accounting.
	if o.Host != nil {
		cpu, err := brokerCPU(ctx, o, p, board)
		if err != nil {
			if ctx.Err() != nil {
				return row, ctx.Err()
			}
			m.CPUNote = "broker CPU: " + err.Error()
		} else {
			row.BrokerCPUus = float64(cpu) / float64(time.Microsecond)
		}
	}
	return row, nil
}

// dial connects to the broker and runs p's handshake; the returned conn
// also reports the wire's Stats.
func dial(ctx context.Context, o Options, p Profile, b Board) (*statsConn, Stats, error) {
	hctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(hctx, "tcp", o.Addr)
	if err != nil {
		return nil, Stats{}, &Refusal{Reason: ReasonNetwork, By: "network", Detail: err.Error(), Err: err}
	}
	c, st, err := Handshake(hctx, raw, p, b)
	if err != nil {
		return nil, st, err
	}
	return &statsConn{Conn: c, st: st}, st, nil
}

// statsConn carries the handshake's stats with the connection.
type statsConn struct {
	net.Conn
	st Stats
}

func (c *statsConn) Stats() Stats { return c.st }

func (r *Row) fill(st Stats) {
	r.Version = VersionName(st.Version)
	if st.Suite != 0 {
		r.Suite = tls.CipherSuiteName(st.Suite)
	}
	r.Group = GroupName(st.Group)
	r.ServerMFLN = st.ServerMFLN
	r.FirstFlight = st.FirstFlight
	r.ServerChain = st.ServerChain
	r.ClientChain = st.ClientChain
	r.MaxRecordIn = st.MaxRecordIn
}

// refine tells "no shared cipher" from "no shared group or signature" by
// sending the board's hello again with one part replaced by what a modern
// client offers: if the broker answers the board's own suites once the
// groups and signature algorithms are modern, those were the problem; if
// it refuses modern suites with the board's groups and signature
// algorithms, the board would fail on them too, and the detail says so.
func refine(ctx context.Context, o Options, p Profile, b Board, row *Row) {
	answered := func(q Profile) bool {
		q.MinVersion, q.MaxVersion = 0x0303, 0x0303
		_, st, _ := dial(ctx, o, q, b)
		return st.ServerHello != nil
	}
	modernKX := func(q Profile) Profile {
		q.Groups = []uint16{0x001d, 0x0017}
		q.SigAlgs = []uint16{0x0403, 0x0804, 0x0401}
		q.Extensions = slices.Clone(q.Extensions)
		for _, e := range []uint16{ExtGroups, ExtSignatureAlgs} {
			if !slices.Contains(q.Extensions, e) {
				q.Extensions = append(q.Extensions, e)
			}
		}
		return q
	}
	if answered(modernKX(p)) {
		row.Reason = ReasonNoSharedGroupOrSig
		row.Detail = "the broker accepts one of the board's cipher suites, but none of its groups or signature algorithms: the same hello with x25519/secp256r1 and ecdsa_secp256r1_sha256 is answered"
		return
	}
	q := p
	q.Suites = []uint16{0xc02b, 0xc02c, 0xcca9}
	if !answered(q) {
		row.Detail += "; even with ECDSA suites it would fail: its groups or signature algorithms (no ecdsa_secp256r1_sha256) match none of the broker's"
	}
}

// brokerCPU is the broker's CPU time per full handshake of p, measured
// over CostHandshakes sequential handshakes.
func brokerCPU(ctx context.Context, o Options, p Profile, b Board) (time.Duration, error) {
	read := func() (time.Duration, error) {
		cs, err := o.Host.Costs(ctx)
		if err != nil {
			return 0, err
		}
		for _, c := range cs {
			if c.Daemon == host.Mosquitto {
				return c.CPU, nil
			}
		}
		return 0, errors.New("the host reports no mosquitto process")
	}
	before, err := read()
	if err != nil {
		return 0, err
	}
	for range o.CostHandshakes {
		if c, _, err := dial(ctx, o, p, b); err == nil {
			c.Close()
		} else if ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
	// The broker finishes its side of the last handshake after the client.
	time.Sleep(20 * time.Millisecond)
	after, err := read()
	if err != nil {
		return 0, err
	}
	return (after - before) / time.Duration(o.CostHandshakes), nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// GroupName names a TLS group ("" for 0).
func GroupName(g uint16) string {
	switch g {
	case 0:
		return ""
	case 0x0017:
		return "secp256r1"
	case 0x0018:
		return "secp384r1"
	case 0x0019:
		return "secp521r1"
	case 0x001d:
		return "x25519"
	case 0x001e:
		return "x448"
	case 0x11ec:
		return "X25519MLKEM768"
	}
	return fmt.Sprintf("%#04x", g)
}
