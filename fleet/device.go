package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Config is what every device of a fleet shares. It is read-only once a
// device uses it.
type Config struct {
	// Addr is host:port of the broker's mTLS listener (mqtts), or, with
	// WSSURL set, unused.
	Addr string
	// WSSURL, when set, makes devices connect over MQTT-over-WebSocket-over-TLS
	// (through nginx) with their username and password instead of mTLS.
	WSSURL string
	// ServerName is the TLS server name to verify.
	ServerName string
	// RootCAs verifies the broker.
	RootCAs *x509.CertPool
	// KeepAlive is the MQTT keep-alive; 0 disables it (and saves a goroutine
	// and a ticker per device).
	KeepAlive time.Duration
	// CleanSession is the MQTT clean-session flag (MQTT 5: Clean Start).
	CleanSession bool
	// Protocol is MQTT311 (4, the default) or MQTT5 (5); see v5.go.
	Protocol byte
	// SessionExpiry (MQTT 5) is the session expiry interval the CONNECT
	// asks for; 0 ends the session with the connection.
	SessionExpiry time.Duration
	// TopicAliases (MQTT 5) sends the telemetry topic once per connection,
	// then only alias 1, when the broker's CONNACK allows aliases.
	TopicAliases bool
	// QoS of telemetry, status and commands.
	QoS byte
	// ConnectTimeout bounds one attempt: TCP + TLS + CONNACK + SUBACK.
	ConnectTimeout time.Duration
	// PublishTimeout bounds the wait for a PUBACK.
	PublishTimeout time.Duration
	// WriteTimeout bounds one socket write of an MQTT 3.1.1 device.
	WriteTimeout time.Duration
	// SourceAddrs are local addresses to dial from, assigned round robin by
	// device index (127.0.0.x on loopback); empty lets the kernel choose.
	SourceAddrs []net.IP
	// Backoff paces one device's reconnect attempts.
	Backoff Backoff
	// Sink receives every event; nil discards them.
	Sink *Sink
}

// setDefaults fills zero timeouts with values that suit a loopback broker.
func (c *Config) setDefaults() {
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 5 * time.Second
	}
	if c.Backoff.Min <= 0 {
		c.Backoff.Min = 500 * time.Millisecond
	}
	if c.Backoff.Max < c.Backoff.Min {
		c.Backoff.Max = 30 * time.Second
	}
	if c.Protocol == 0 {
		c.Protocol = MQTT311
	}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if c.WSSURL == "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("broker address %q: %w", c.Addr, err))
		}
	} else if u, err := url.Parse(c.WSSURL); err != nil || u.Scheme != "wss" {
		errs = append(errs, fmt.Errorf("wss url %q: want wss://host:port/path", c.WSSURL))
	}
	if c.ServerName == "" {
		errs = append(errs, errors.New("server name: required"))
	}
	if c.RootCAs == nil {
		errs = append(errs, errors.New("root CAs: required (the private CA)"))
	}
	if c.QoS > 2 {
		errs = append(errs, fmt.Errorf("qos %d: want 0, 1 or 2", c.QoS))
	}
	if c.Protocol != MQTT311 && c.Protocol != MQTT5 {
		errs = append(errs, fmt.Errorf("protocol %d: want 4 (MQTT 3.1.1) or 5", c.Protocol))
	}
	if c.Protocol != MQTT5 && (c.SessionExpiry != 0 || c.TopicAliases) {
		errs = append(errs, errors.New("session expiry and topic aliases: MQTT 5 only"))
	}
	if c.SessionExpiry < 0 || c.SessionExpiry > (1<<32-1)*time.Second {
		errs = append(errs, fmt.Errorf("session expiry %v: want 0 … 4294967295s", c.SessionExpiry))
	}
	if c.KeepAlive < 0 || c.KeepAlive > 65535*time.Second {
		errs = append(errs, fmt.Errorf("keepalive %v: want 0 … 65535s", c.KeepAlive))
	}
	return errors.Join(errs...)
}

// Device is one virtual board. Its identity is its client certificate (CN =
// id); the id is also its MQTT client id. A Device is safe for concurrent
// use: the fleet's workers publish while paho's goroutines deliver commands
// and report a lost connection.
type Device struct {
	// ID is the device id: certificate CN, MQTT username and client id.
	ID string

	fleet    *Fleet
	cert     *tls.Certificate
	password string // wss only
	src      *net.TCPAddr
	seed     uint64
	// profile labels the device's events; handshake replaces the fleet's
	// Go TLS client with the profile's (see Identity).
	profile   string
	handshake Handshake

	mu     sync.Mutex // guards s3, s5, conn, gen, sensor, dropping
	s3     *session3  // the MQTT 3.1.1 session (v3.go), or
	s5     *session5  // the MQTT 5 session (Config.Protocol 5, v5.go)
	conn   net.Conn   // the connection under the session, cut by Drop
	gen    uint64     // connection generation: a lost-callback of an old one is ignored
	sensor *Sensor    // created at the first publish: an idle device needs none
	// dropping marks a connection cut on purpose (reconnect storm), so its
	// loss is a disconnect rather than an error.
	dropping bool

	// observer watches this device's deliveries (Observer.Watch); set
	// before the fleet starts, read-only afterwards.
	observer *Observer

	seq   atomic.Uint64 // last telemetry sequence number issued (1-based)
	acked atomic.Int64  // telemetry messages the broker acknowledged
	up    atomic.Bool
	relay atomic.Bool
	// looping is true while a reconnect loop runs for the device, so that a
	// second loss never starts a second loop.
	looping atomic.Bool
}

// Sent is how many telemetry messages the broker acknowledged (QoS ≥ 1) or
// that were written (QoS 0): what the observer must receive.
func (d *Device) Sent() int64 { return d.acked.Load() }

// Seq is the last sequence number issued (including failed publishes).
func (d *Device) Seq() uint64 { return d.seq.Load() }

// Connected reports whether the device has a session.
func (d *Device) Connected() bool { return d.up.Load() }

// Relay is the relay state the last command set.
func (d *Device) Relay() bool { return d.relay.Load() }

func (d *Device) emit(e Event) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.Profile = d.profile
	d.fleet.cfg.Sink.Emit(e)
}

func (d *Device) telemetryTopic() string { return "devices/" + d.ID + "/telemetry" }
func (d *Device) statusTopic() string    { return "devices/" + d.ID + "/status" }
func (d *Device) commandFilter() string  { return "devices/" + d.ID + "/cmd/#" }

// attempt is one connection attempt of a device, for connect3 and
// connect5 alike: open dials and handshakes under the attempt's context,
// which bounds both (and the protocol's CONNACK and SUBACK after them), and
// records when each phase ended. It lives on the connecting goroutine
// only: open, the profile's handshake and the protocol's CONNACK run there
// one after the other (gen is set before any callback can read it).
type attempt struct {
	run context.Context // the caller's: its end is the run's, not a failure
	ctx context.Context // the attempt's: run bounded by Config.ConnectTimeout
	d   *Device
	gen uint64 // the connection generation this attempt opens

	stage   Stage // the phase open reached
	start   time.Time
	tcpDone time.Time
	tlsDone time.Time
}

// newAttempt starts an attempt of d under ctx: the next connection
// generation, and the attempt's context, which cancel releases.
func (d *Device) newAttempt(ctx context.Context) (*attempt, context.CancelFunc) {
	actx, cancel := context.WithTimeout(ctx, d.fleet.cfg.ConnectTimeout)
	d.mu.Lock()
	d.gen++
	gen := d.gen
	d.mu.Unlock()
	return &attempt{run: ctx, ctx: actx, d: d, gen: gen}, cancel
}

// fail ends the attempt at stage: it emits KindConnectFailed with the
// cause (a deadline when the attempt's context ran out) and returns the
// error naming the device. When the run has ended it emits nothing and
// returns the run's error.
func (a *attempt) fail(stage Stage, err error) error {
	if a.run.Err() != nil {
		return a.run.Err()
	}
	if a.ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	a.d.emit(Event{Kind: KindConnectFailed, Cause: classifyConnect(stage, err)})
	return fmt.Errorf("device %s: %s: %w", a.d.ID, stage, err)
}

// dial is open, failing the attempt at the stage open reached.
func (a *attempt) dial() (net.Conn, error) {
	conn, err := a.open()
	if err != nil {
		return nil, a.fail(a.stage, err)
	}
	return conn, nil
}

// connected is the attempt's KindConnected event, its CONNACK read at end:
// the time each phase took (TCP not measured over wss: see open).
func (a *attempt) connected(end time.Time) Event {
	e := Event{Kind: KindConnected, At: end, TCP: a.tcpDone.Sub(a.start), TLS: a.tlsDone.Sub(a.tcpDone), CONNACK: end.Sub(a.tlsDone)}
	if a.d.fleet.cfg.WSSURL != "" {
		e.TCP = -1
	}
	return e
}

// online ends a successful attempt of either protocol: the device is up,
// and its timing emitted, if the session is still its own (current, called
// with d.mu held); a session lost while it came online fails the attempt.
func (a *attempt) online(current func() bool, timing Event) error {
	d := a.d
	d.mu.Lock()
	if !current() {
		d.mu.Unlock()
		return a.lost()
	}
	d.up.Store(true)
	d.mu.Unlock()
	d.emit(timing)
	return nil
}

// lost fails an attempt whose connection was lost before its session was
// in place (the reader or paho reported the loss while it subscribed).
func (a *attempt) lost() error {
	if a.run.Err() != nil {
		return a.run.Err()
	}
	a.d.emit(Event{Kind: KindConnectFailed, Cause: string(StageSub) + ": connection lost"})
	return fmt.Errorf("device %s: connection lost while subscribing", a.d.ID)
}

// open dials TCP and runs the TLS handshake itself so that each phase is
// timed on its own; connect3 or connect5 then writes CONNECT and reads
// CONNACK on the returned connection.
func (a *attempt) open() (net.Conn, error) {
	f := a.d.fleet
	cfg := &f.cfg
	ka := uint16(cfg.KeepAlive / time.Second)
	a.start = time.Now()
	a.stage = StageTCP
	if cfg.WSSURL != "" {
		// gorilla dials TCP, TLS and the HTTP upgrade in one call: for wss
		// the whole of it is reported as the TLS phase and TCP stays unmeasured.
		a.stage = StageTLS
		timeout := cfg.ConnectTimeout
		if dl, ok := a.ctx.Deadline(); ok {
			timeout = time.Until(dl)
		}
		// nginx asks for the device certificate too before it proxies the
		// upgrade; gorilla's handshake context does not carry the device,
		// so this config names the certificate itself.
		wcfg := f.tlsConfig.Clone()
		wcfg.GetClientCertificate = nil
		if a.d.cert != nil {
			wcfg.Certificates = []tls.Certificate{*a.d.cert}
		}
		ws, err := mqtt.NewWebsocket(cfg.WSSURL, wcfg, timeout, nil, &mqtt.WebsocketOptions{ReadBufferSize: 1024, WriteBufferSize: 1024})
		if err != nil {
			return nil, err
		}
		conn := &kaConn{Conn: ws, keepalive: ka}
		a.tcpDone, a.tlsDone = a.start, time.Now()
		a.stage = StageConnack
		return conn, nil
	}
	dialer := net.Dialer{
		// MQTT keep-alive detects dead peers; TCP keep-alive would only add
		// a kernel timer per device.
		KeepAlive: -1,
	}
	if a.d.src != nil {
		dialer.LocalAddr = a.d.src
	}
	raw, err := dialer.DialContext(a.ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	if a.d.handshake != nil {
		return a.openProfiled(raw, ka)
	}
	// One tls.Config for the whole fleet; the certificate is the device's,
	// found through the handshake context (see Fleet.clientCertificate),
	// so no connection keeps a config of its own.
	tc := tls.Client(raw, f.tlsConfig)
	conn := &kaConn{Conn: tc, keepalive: ka}
	a.tcpDone = time.Now()
	a.stage = StageTLS
	if err := tc.HandshakeContext(context.WithValue(a.ctx, deviceKey{}, a.d)); err != nil {
		raw.Close()
		return nil, err
	}
	a.tlsDone = time.Now()
	a.stage = StageConnack
	return conn, nil
}

// deviceKey carries the handshaking device in the handshake's context.
type deviceKey struct{}

// connect makes one attempt to connect, subscribe to commands and publish
// the retained "online" status. It emits KindConnected with the phase
// timings or KindConnectFailed with the cause; an attempt cut short by ctx
// (the run ending) emits nothing, because it says nothing about the broker.
func (d *Device) connect(ctx context.Context) error {
	if d.fleet.cfg.Protocol == MQTT5 {
		return d.connect5(ctx)
	}
	return d.connect3(ctx)
}

// classifyConnect names a failed attempt. A TLS alert can only come from
// the handshake, even when (TLS 1.3) the client reads it while waiting for
// CONNACK: the broker refused the certificate.
func classifyConnect(stage Stage, err error) string {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		stage = StageTLS
	}
	return Classify(stage, err)
}

// lost handles the end of a connection of generation gen (err says why),
// for lost3 and lost5. current, called with d.mu held, says whether the
// session that ended is still the device's; a report about an older one
// is ignored. Otherwise the session is forgotten, closeConn (if any) runs,
// the loss of a device that was up is reported (a cut on purpose, Drop, as
// a disconnect) and the reconnect loop starts. A device lost during its
// own setup reports nothing here: connect reports the failed attempt.
func (d *Device) lost(gen uint64, current func() bool, closeConn func(), err error) {
	d.mu.Lock()
	if d.gen != gen || !current() {
		d.mu.Unlock()
		return
	}
	d.endSession()
	dropped := d.dropping
	d.dropping = false
	wasUp := d.up.Swap(false)
	d.mu.Unlock()
	if closeConn != nil {
		closeConn()
	}
	if wasUp {
		if dropped {
			d.emit(Event{Kind: KindDisconnected})
		} else {
			d.emit(Event{Kind: KindLost, Cause: Classify(StageLost, err)})
		}
	}
	d.fleet.reconnect(d)
}

// endSession forgets the current session; d.mu must be held.
func (d *Device) endSession() {
	d.s3, d.s5, d.conn = nil, nil, nil
}

// Drop cuts the device's connection abruptly, without a DISCONNECT, so the
// broker publishes its will; the device then reconnects with its backoff,
// as a board does after a network blip. It reports whether there was a
// connection to cut.
func (d *Device) Drop() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return false
	}
	d.dropping = true
	// An expired read deadline fails paho's reader with a timeout, which
	// paho treats as a lost connection (closing the socket instead would
	// be mistaken for our own Disconnect and never reported).
	d.conn.SetReadDeadline(time.Now())
	return true
}

// Disconnect ends the session cleanly (DISCONNECT, so no will), waiting at
// most quiesce for paho to finish.
func (d *Device) Disconnect(quiesce time.Duration) {
	d.mu.Lock()
	s3, s5 := d.s3, d.s5
	d.endSession()
	d.gen++ // a loss racing this is not a loss
	d.mu.Unlock()
	if s3 == nil && s5 == nil {
		return
	}
	if d.up.Swap(false) {
		d.emit(Event{Kind: KindDisconnected})
	}
	if s5 != nil {
		disconnect5(s5, d.fleet.cfg.SessionExpiry)
		return
	}
	s3.close(quiesce)
}

// Shape is the form of the telemetry a stage publishes.
type Shape struct {
	Payload Payload
	// Size pads the message to at least this many bytes (0: natural size).
	Size int
}

// Publish sends one telemetry message and waits for its acknowledgement (or
// ctx, or the publish timeout). It emits KindPublished with the PUBACK
// latency, or KindPublishFailed with the cause.
func (d *Device) Publish(ctx context.Context, sh Shape) error {
	cfg := &d.fleet.cfg
	d.mu.Lock()
	s3, s5 := d.s3, d.s5
	if s3 == nil && s5 == nil {
		d.mu.Unlock()
		d.emit(Event{Kind: KindPublishFailed, Cause: Classify(StagePublish, mqtt.ErrNotConnected)})
		return fmt.Errorf("device %s: publish: %w", d.ID, mqtt.ErrNotConnected)
	}
	var payload []byte
	var sent time.Time
	if s5 != nil {
		// paho.golang may keep the packet for its session state.
		payload, sent = d.appendTelemetry(make([]byte, 0, max(160, sh.Size+8)), sh)
	} else {
		bp := packetBufs.Get().(*[]byte)
		defer packetBufs.Put(bp)
		*bp, sent = d.appendTelemetry((*bp)[:0], sh)
		payload = *bp
	}
	d.mu.Unlock()

	var err error
	if s5 != nil {
		err = d.publish5(ctx, s5, payload)
	} else {
		err = s3.publish(ctx, cfg.PublishTimeout, d.telemetryTopic(), cfg.QoS, false, payload)
	}
	now := time.Now()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.emit(Event{Kind: KindPublishFailed, At: now, Cause: Classify(StagePublish, err)})
		return fmt.Errorf("device %s: publish: %w", d.ID, err)
	}
	d.published(sent, now)
	return nil
}

// appendTelemetry steps the sensor and appends the next telemetry message
// (the next sequence number, stamped now) to b; d.mu must be held.
func (d *Device) appendTelemetry(b []byte, sh Shape) ([]byte, time.Time) {
	if d.sensor == nil {
		d.sensor = NewSensor(d.seed)
	}
	d.sensor.Step()
	seq := d.seq.Add(1)
	sent := time.Now()
	return d.sensor.AppendTelemetry(b, sh.Payload, d.ID, seq, sent, sh.Size), sent
}

// published counts a telemetry message sent at sent as acknowledged (QoS
// ≥ 1) or written (QoS 0) at now, for the observer too, and emits
// KindPublished with the acknowledgement's latency.
func (d *Device) published(sent, now time.Time) {
	d.acked.Add(1)
	if d.observer != nil {
		d.observer.ackedOne()
	}
	e := Event{Kind: KindPublished, At: now}
	if d.fleet.cfg.QoS > 0 {
		e.D = now.Sub(sent)
	}
	d.emit(e)
}

// command acts on a command's payload (both protocols).
func (d *Device) command(payload []byte) {
	switch strings.ToUpper(strings.TrimSpace(string(payload))) {
	case "ON", `{"RELAY":"ON"}`:
		d.relay.Store(true)
	case "OFF", `{"RELAY":"OFF"}`:
		d.relay.Store(false)
	default:
		d.emit(Event{Kind: KindError, Cause: "command: unknown payload"})
		return
	}
	d.emit(Event{Kind: KindCommandReceived})
	d.fleet.enqueue(job{d: d, kind: jobStatus})
}

// ping sends a PINGREQ on the device's connection (see keepalive.go).
func (d *Device) ping() {
	d.mu.Lock()
	c := d.conn
	d.mu.Unlock()
	if c == nil {
		return
	}
	// A failed write means the connection is going; the session's reader
	// reports the loss.
	if kc, ok := c.(*kaConn); ok && d.fleet.cfg.Protocol != MQTT5 {
		kc.WriteWithin(pingreq, d.fleet.cfg.WriteTimeout)
		return
	}
	c.Write(pingreq)
}

// publishStatus answers a command with the relay state on the status topic
// (not retained: the retained value stays "online"/"offline").
func (d *Device) publishStatus(ctx context.Context) {
	d.mu.Lock()
	s3, s5 := d.s3, d.s5
	d.mu.Unlock()
	if s3 == nil && s5 == nil {
		return
	}
	state := "OFF"
	if d.relay.Load() {
		state = "ON"
	}
	if s5 != nil {
		if err := d.status5(ctx, s5, `{"relay":"`+state+`"}`); err != nil && ctx.Err() == nil {
			d.emit(Event{Kind: KindError, Cause: Classify(StageCommand, err) + " (status reply)"})
		}
		return
	}
	if err := s3.publish(ctx, d.fleet.cfg.PublishTimeout, d.statusTopic(), d.fleet.cfg.QoS, false, []byte(`{"relay":"`+state+`"}`)); err != nil && ctx.Err() == nil {
		d.emit(Event{Kind: KindError, Cause: Classify(StageCommand, err) + " (status reply)"})
	}
}

// errSessionGone: the session ended while a request waited for its
// acknowledgement (PUBACK, SUBACK; both protocols).
var errSessionGone = errors.New("connection lost")

// waitToken bridges a paho token to a context: the one place the package
// waits for paho.
func waitToken(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
