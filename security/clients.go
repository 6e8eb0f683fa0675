package security

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Msg is one message a client received.
type Msg struct {
	Topic    string
	Payload  []byte
	Retained bool
	At       time.Time
}

// recorder keeps every message one client (or one watcher tap) received.
// Handlers append and never block; waiters are woken by closing changed.
type recorder struct {
	mu      sync.Mutex
	msgs    []Msg
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) add(m Msg) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) all() []Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Msg(nil), r.msgs...)
}

func (r *recorder) matching(pred func(Msg) bool) []Msg {
	var out []Msg
	for _, m := range r.all() {
		if pred(m) {
			out = append(out, m)
		}
	}
	return out
}

// waitFor returns the first message matching pred, waiting at most d.
func (r *recorder) waitFor(ctx context.Context, d time.Duration, pred func(Msg) bool) (Msg, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		r.mu.Lock()
		for _, m := range r.msgs {
			if pred(m) {
				r.mu.Unlock()
				return m, true
			}
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			return Msg{}, false
		case <-ctx.Done():
			return Msg{}, false
		}
	}
}

// settle waits until r has received nothing new for quiet (at least one
// quiet period after the first look, at most max) and returns how many
// messages it then holds. A wide subscription's retained messages have
// then been delivered, so a control published next does not meet a client
// queue at the broker that they filled (after a load run there is one
// retained status per device, queued once per overlapping filter); a
// reconnecting client's offline queue has been drained.
func (r *recorder) settle(ctx context.Context, quiet, max time.Duration) (int, error) {
	n := -1
	for deadline := time.Now().Add(max); time.Now().Before(deadline); {
		if err := sleepCtx(ctx, quiet); err != nil {
			return n, err
		}
		m := len(r.all())
		if m == n {
			break
		}
		n = m
	}
	return n, nil
}

func payloadHas(s string) func(Msg) bool {
	return func(m Msg) bool { return bytes.Contains(m.Payload, []byte(s)) }
}

// publisher is what a legitimate owner needs to publish a barrier, whatever
// protocol version its client speaks.
type publisher interface {
	publish(ctx context.Context, topic string, qos byte, retain bool, payload []byte) error
}

// client311 is a paho.mqtt.golang (MQTT 3.1.1) client with every received
// message recorded and the connection loss observable.
type client311 struct {
	mqtt.Client
	id   string
	rec  *recorder
	lost chan error // receives once when the connection drops
	mu   sync.Mutex
	conn net.Conn // the raw connection, so a check can drop TCP without DISCONNECT
}

// opts311 adjusts the paho options of one client (will, clean session, ...).
type opts311 func(*mqtt.ClientOptions)

// connect311 connects identity id (its certificate from the PKI) to the mTLS
// listener with MQTT 3.1.1. The client id is the identity unless an option
// overrides it. No auto-reconnect: a check must see every disconnect.
func (e *Env) connect311(ctx context.Context, id string, opts ...opts311) (*client311, error) {
	cfg, err := e.clientTLS(id)
	if err != nil {
		return nil, err
	}
	return e.connect311TLS(ctx, id, cfg, opts...)
}

func (e *Env) connect311TLS(ctx context.Context, id string, cfg *tls.Config, opts ...opts311) (*client311, error) {
	c := &client311{id: id, rec: newRecorder(), lost: make(chan error, 1)}
	o := mqtt.NewClientOptions().
		AddBroker("ssl://" + e.T.MQTTSAddr()).
		SetClientID(id).
		SetTLSConfig(cfg).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetCleanSession(true).
		SetConnectTimeout(5 * time.Second).
		SetWriteTimeout(5 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetOrderMatters(false).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			c.rec.add(Msg{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...), Retained: m.Retained(), At: time.Now()})
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case c.lost <- err:
			default:
			}
		}).
		SetCustomOpenConnectionFn(func(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
			d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: o.TLSConfig}
			conn, err := d.DialContext(ctx, "tcp", u.Host)
			if err != nil {
				return nil, err
			}
			c.mu.Lock()
			c.conn = conn
			c.mu.Unlock()
			return conn, nil
		})
	for _, f := range opts {
		f(o)
	}
	c.Client = mqtt.NewClient(o)
	if err := waitToken(ctx, c.Connect()); err != nil {
		return nil, fmt.Errorf("connect %s (3.1.1): %w", id, err)
	}
	return c, nil
}

// dropTCP closes the raw connection without DISCONNECT, which makes the
// broker publish the client's Will.
func (c *client311) dropTCP() {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

func (c *client311) close() {
	if c != nil && c.Client != nil {
		c.Disconnect(100)
	}
}

func (c *client311) publish(ctx context.Context, topic string, qos byte, retain bool, payload []byte) error {
	return waitToken(ctx, c.Publish(topic, qos, retain, payload))
}

func (c *client311) subscribe(ctx context.Context, filters ...string) (map[string]byte, error) {
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = 1
	}
	tok := c.SubscribeMultiple(m, nil)
	if err := waitToken(ctx, tok); err != nil {
		return nil, err
	}
	return tok.(*mqtt.SubscribeToken).Result(), nil
}

// waitToken bridges a paho token to the context: the only way checks wait.
func waitToken(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second):
		return errors.New("no answer within 10s")
	}
}

// client5 is a paho.golang (MQTT 5) client with received messages recorded
// and the server's DISCONNECT reason observable.
type client5 struct {
	*paho.Client
	id         string
	rec        *recorder
	connack    *paho.Connack
	disconnect chan byte  // reason code of a server DISCONNECT
	errs       chan error // client errors (EOF, reset)
}

func (e *Env) connect5(ctx context.Context, id string, cp *paho.Connect) (*client5, error) {
	cfg, err := e.clientTLS(id)
	if err != nil {
		return nil, err
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", e.T.MQTTSAddr())
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", id, err)
	}
	c := &client5{id: id, rec: newRecorder(), disconnect: make(chan byte, 1), errs: make(chan error, 4)}
	c.Client = paho.NewClient(paho.ClientConfig{
		Conn: packets.NewThreadSafeConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			c.rec.add(Msg{Topic: pr.Packet.Topic, Payload: append([]byte(nil), pr.Packet.Payload...), Retained: pr.Packet.Retain, At: time.Now()})
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case c.disconnect <- d.ReasonCode:
			default:
			}
		},
		OnClientError: func(err error) {
			select {
			case c.errs <- err:
			default:
			}
		},
		PacketTimeout: 5 * time.Second,
	})
	if cp == nil {
		cp = &paho.Connect{}
	}
	if cp.ClientID == "" {
		cp.ClientID = id
	}
	if cp.KeepAlive == 0 {
		cp.KeepAlive = 30
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ca, err := c.Connect(cctx, cp)
	c.connack = ca
	if err != nil {
		_ = conn.Close()
		return c, fmt.Errorf("connect %s (v5): %w", id, err)
	}
	return c, nil
}

func (c *client5) close() {
	if c != nil && c.Client != nil {
		_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
	}
}

func (c *client5) publish(ctx context.Context, topic string, qos byte, retain bool, payload []byte) error {
	rc, err := c.publishCode(ctx, &paho.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: payload})
	if err != nil {
		return err
	}
	if rc >= 0x80 {
		return fmt.Errorf("reason code 0x%02x", rc)
	}
	return nil
}

// publishCode publishes p, waiting at most 5 s, and returns the reason
// code the broker answered with, -1 when no answer came, and paho's error
// (a refusal comes with both a code and an error).
func (c *client5) publishCode(ctx context.Context, p *paho.Publish) (int, error) {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := c.Publish(pctx, p)
	if r == nil {
		return -1, err
	}
	return int(r.ReasonCode), err
}

// waitClosed reports whether a raw connection is closed by the peer within d
// (EOF, reset or TLS alert on read); it drains whatever the peer sends.
func waitClosed(conn net.Conn, d time.Duration) (bool, error) {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return false, err
			}
			return true, err
		}
	}
}
