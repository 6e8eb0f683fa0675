package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/log"
)

// MQTT 5 devices (Config.Protocol 5) on eclipse/paho.golang.
//
// The attempt is the same as for 3.1.1 (attempt.open dials TCP and runs the
// TLS handshake, each timed on its own), the fleet pings for the device
// (paho.golang gets a pinger that does nothing), and the same events come
// out, so every metric, report and merge is the protocol's neither. What
// MQTT 5 adds:
//   - a session expiry instead of the clean-session flag (CleanStart =
//     Config.CleanSession, expiry Config.SessionExpiry; a clean end of
//     the run sets it to 0 in the DISCONNECT, so the broker frees it);
//   - the broker's Receive Maximum is honoured: paho.golang's session
//     never has more QoS 1/2 publishes in flight than the CONNACK allows;
//   - optional topic aliases (Config.TopicAliases): the telemetry topic is
//     sent once per connection with alias 1, then only the alias;
//   - reason codes become causes: a PUBACK >= 0x80 is a failed publish
//     with its reason ("publish: refused: not authorized (0x87)"), which
//     3.1.1 cannot see, and a refusing CONNACK is named.

// Protocol versions for Config.Protocol.
const (
	MQTT311 byte = 4
	MQTT5   byte = 5
)

// receiveMaximum is what a device tells the broker it takes in flight: it
// only receives commands, and paho.golang sizes a buffer by it.
const receiveMaximum = 16

// session5 is one MQTT 5 connection of a device.
type session5 struct {
	c *paho.Client
	// aliasMax is the broker's Topic Alias Maximum (0: no aliases).
	aliasMax uint16
	// aliasMu serialises the first telemetry publish that sets alias 1;
	// aliased says it was acknowledged, so later ones send only the alias.
	aliasMu sync.Mutex
	aliased atomic.Bool
}

// noPinger is paho.golang's Pinger for a fleet device: the fleet pings
// (keepalive.go), so paho.golang runs no goroutine and timer per device.
type noPinger struct{}

func (noPinger) Run(context.Context, net.Conn, uint16) error { return nil }
func (noPinger) PacketSent()                                 {}
func (noPinger) PacketReceived()                             {}
func (noPinger) PingResp()                                   {}
func (noPinger) SetDebug(log.Logger)                         {}

// ReasonError is an MQTT 5 reason code >= 0x80 from the broker.
type ReasonError struct {
	Packet string // CONNACK, PUBACK, SUBACK, DISCONNECT
	Code   byte
}

func (e *ReasonError) Error() string {
	return fmt.Sprintf("%s reason %s", e.Packet, ReasonName(e.Code))
}

// reasonNames are MQTT 5's failure reason codes (spec 2.4).
var reasonNames = map[byte]string{
	0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
	0x83: "implementation specific error", 0x84: "unsupported protocol version",
	0x85: "client identifier not valid", 0x86: "bad user name or password",
	0x87: "not authorized", 0x88: "server unavailable", 0x89: "server busy",
	0x8A: "banned", 0x8B: "server shutting down", 0x8C: "bad authentication method",
	0x8D: "keep alive timeout", 0x8E: "session taken over", 0x8F: "topic filter invalid",
	0x90: "topic name invalid", 0x91: "packet identifier in use", 0x92: "packet identifier not found",
	0x93: "receive maximum exceeded", 0x94: "topic alias invalid", 0x95: "packet too large",
	0x96: "message rate too high", 0x97: "quota exceeded", 0x98: "administrative action",
	0x99: "payload format invalid", 0x9A: "retain not supported", 0x9B: "qos not supported",
	0x9C: "use another server", 0x9D: "server moved", 0x9E: "shared subscriptions not supported",
	0x9F: "connection rate exceeded", 0xA0: "maximum connect time",
	0xA1: "subscription identifiers not supported", 0xA2: "wildcard subscriptions not supported",
}

// ReasonName names an MQTT 5 reason code with its value: "not authorized (0x87)".
func ReasonName(code byte) string {
	if n, ok := reasonNames[code]; ok {
		return fmt.Sprintf("%s (0x%02X)", n, code)
	}
	return fmt.Sprintf("reason 0x%02X", code)
}

// reason5 names a ReasonError for Classify ("refused: not authorized (0x87)").
func reason5(err error) (string, bool) {
	var re *ReasonError
	if errors.As(err, &re) {
		if re.Packet == "DISCONNECT" {
			return "disconnected by the broker: " + ReasonName(re.Code), true
		}
		return "refused: " + ReasonName(re.Code), true
	}
	return "", false
}

// connect5 is connect for an MQTT 5 device.
func (d *Device) connect5(ctx context.Context) error {
	cfg := &d.fleet.cfg
	a, cancel := d.newAttempt(ctx)
	defer cancel()
	conn, err := a.dial()
	if err != nil {
		return err
	}
	s := &session5{}
	s.c = paho.NewClient(paho.ClientConfig{
		Conn:          conn,
		PingHandler:   noPinger{},
		PacketTimeout: cfg.PublishTimeout,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			d.command(pr.Packet.Payload)
			return true, nil
		}},
		OnClientError: func(err error) { d.lost5(s, a.gen, err) },
		OnServerDisconnect: func(x *paho.Disconnect) {
			d.lost5(s, a.gen, &ReasonError{Packet: "DISCONNECT", Code: x.ReasonCode})
		},
	})
	rm := uint16(receiveMaximum)
	expiry := uint32(cfg.SessionExpiry / time.Second)
	cp := &paho.Connect{
		ClientID:   d.ID,
		KeepAlive:  uint16(cfg.KeepAlive / time.Second),
		CleanStart: cfg.CleanSession,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry, ReceiveMaximum: &rm},
		WillMessage: &paho.WillMessage{
			Topic: d.statusTopic(), Payload: []byte("offline"), QoS: 1, Retain: true,
		},
	}
	if cfg.WSSURL != "" {
		cp.Username, cp.UsernameFlag = d.ID, true
		cp.Password, cp.PasswordFlag = []byte(d.password), true
	}
	ca, err := s.c.Connect(a.ctx, cp)
	end := time.Now()
	if err != nil {
		conn.Close()
		if ca != nil && ca.ReasonCode >= 0x80 {
			err = &ReasonError{Packet: "CONNACK", Code: ca.ReasonCode}
		}
		return a.fail(StageConnack, err)
	}
	if ca.Properties != nil && ca.Properties.TopicAliasMaximum != nil && cfg.TopicAliases {
		s.aliasMax = *ca.Properties.TopicAliasMaximum
	}
	timing := a.connected(end)

	d.mu.Lock()
	d.s5, d.conn = s, conn
	d.dropping = false
	d.mu.Unlock()

	sa, err := s.c.Subscribe(a.ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: d.commandFilter(), QoS: cfg.QoS}}})
	if err == nil && sa != nil && len(sa.Reasons) > 0 && sa.Reasons[0] >= 0x80 {
		err = &ReasonError{Packet: "SUBACK", Code: sa.Reasons[0]}
	}
	if err != nil {
		d.discard5(s)
		return a.fail(StageSub, err)
	}
	if pr, err := s.c.Publish(a.ctx, &paho.Publish{Topic: d.statusTopic(), QoS: 1, Retain: true, Payload: []byte("online")}); err != nil && ctx.Err() == nil {
		d.emit(Event{Kind: KindError, Cause: Classify(StagePublish, pubackErr(pr, err)) + " (status)"})
	}
	return a.online(func() bool { return d.s5 == s }, timing)
}

// pubackErr turns a PUBACK reason code >= 0x80 into a ReasonError.
func pubackErr(pr *paho.PublishResponse, err error) error {
	if pr != nil && pr.ReasonCode >= 0x80 {
		return &ReasonError{Packet: "PUBACK", Code: pr.ReasonCode}
	}
	return err
}

// discard5 forgets s (if current) and closes it without a DISCONNECT.
func (d *Device) discard5(s *session5) {
	d.mu.Lock()
	if d.s5 == s {
		d.endSession()
	}
	d.mu.Unlock()
	s.c.Disconnect(&paho.Disconnect{ReasonCode: 0})
}

// lost5 is lost for an MQTT 5 session (paho.golang calls OnClientError or
// OnServerDisconnect once the connection is closed).
func (d *Device) lost5(s *session5, gen uint64, err error) {
	d.lost(gen, func() bool { return d.s5 == s }, nil, err)
}

// publish5 sends one telemetry message on s; see Publish.
func (d *Device) publish5(ctx context.Context, s *session5, payload []byte) error {
	pctx, cancel := context.WithTimeout(ctx, d.fleet.cfg.PublishTimeout)
	defer cancel()
	err := d.publishTelemetry5(pctx, s, payload)
	var re *ReasonError
	if err != nil && pctx.Err() == nil && !errors.As(err, &re) {
		// Neither our deadline nor the broker's refusal: paho.golang
		// fails a publish with whatever ended the connection (a storm's
		// read deadline looks like a timeout). Name it as 3.1.1 does.
		return errSessionGone
	}
	return err
}

func (d *Device) publishTelemetry5(pctx context.Context, s *session5, payload []byte) error {
	p := &paho.Publish{Topic: d.telemetryTopic(), QoS: d.fleet.cfg.QoS, Payload: payload}
	if s.aliasMax == 0 {
		return pubackErr(s.c.Publish(pctx, p))
	}
	one := uint16(1)
	p.Properties = &paho.PublishProperties{TopicAlias: &one}
	if s.aliased.Load() {
		p.Topic = ""
		return pubackErr(s.c.Publish(pctx, p))
	}
	// The first publish carries topic and alias; others wait for it, so
	// no alias-only PUBLISH reaches the broker before the alias exists.
	s.aliasMu.Lock()
	defer s.aliasMu.Unlock()
	if s.aliased.Load() {
		p.Topic = ""
	}
	pr, err := s.c.Publish(pctx, p)
	if err = pubackErr(pr, err); err == nil {
		s.aliased.Store(true)
	}
	return err
}

// status5 answers a command on s; see publishStatus.
func (d *Device) status5(ctx context.Context, s *session5, payload string) error {
	pctx, cancel := context.WithTimeout(ctx, d.fleet.cfg.PublishTimeout)
	defer cancel()
	return pubackErr(s.c.Publish(pctx, &paho.Publish{Topic: d.statusTopic(), QoS: d.fleet.cfg.QoS, Payload: []byte(payload)}))
}

// disconnect5 ends s cleanly: DISCONNECT with session expiry 0, so that the
// broker frees a session the run no longer needs and publishes no will.
func disconnect5(s *session5, expiry time.Duration) {
	dp := &paho.Disconnect{ReasonCode: 0}
	if expiry > 0 {
		zero := uint32(0)
		dp.Properties = &paho.DisconnectProperties{SessionExpiryInterval: &zero}
	}
	s.c.Disconnect(dp)
}
