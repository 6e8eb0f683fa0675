package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// BackendConfig describes the backend identity that sends commands.
type BackendConfig struct {
	Addr       string
	ServerName string
	RootCAs    *x509.CertPool
	// ID and Cert: "backend", or "backend-<k+1>" for shard k of a sharded run.
	ID             string
	Cert           *tls.Certificate
	QoS            byte
	ConnectTimeout time.Duration
	PublishTimeout time.Duration
	Sink           *Sink
}

// Backend publishes relay commands to devices/<id>/cmd/relay.
type Backend struct {
	cfg    BackendConfig
	client mqtt.Client
}

// NewBackend connects the backend identity. Close disconnects it.
func NewBackend(ctx context.Context, cfg BackendConfig) (*Backend, error) {
	if cfg.ID == "" || cfg.Cert == nil || cfg.RootCAs == nil || cfg.Addr == "" {
		return nil, errors.New("backend: id, certificate, root CAs and broker address required")
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 10 * time.Second
	}
	opts := mqtt.NewClientOptions()
	opts.AddBroker("tls://" + cfg.Addr)
	opts.SetClientID(cfg.ID)
	opts.SetCleanSession(true)
	opts.SetAutoReconnect(false)
	opts.SetConnectRetry(false)
	opts.SetOrderMatters(true)
	opts.SetProtocolVersion(4)
	opts.SetKeepAlive(30 * time.Second)
	opts.SetConnectTimeout(cfg.ConnectTimeout)
	opts.SetWriteTimeout(5 * time.Second)
	opts.SetTLSConfig(&tls.Config{RootCAs: cfg.RootCAs, ServerName: cfg.ServerName, Certificates: []tls.Certificate{*cfg.Cert}, MinVersion: tls.VersionTLS12})
	opts.SetConnectionLostHandler(func(mqtt.Client, error) {}) // commands then fail and are counted
	c := mqtt.NewClient(opts)
	actx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	tok := c.Connect()
	if err := waitToken(actx, tok); err != nil {
		<-tok.Done()
		c.Disconnect(0)
		return nil, fmt.Errorf("backend %s: connect: %w", cfg.ID, err)
	}
	return &Backend{cfg: cfg, client: c}, nil
}

// Run sends commands at rate r until stage ends, to targets in turn
// (alternating ON and OFF per round), waiting for each acknowledgement. A
// command to a device that is down is still sent: the broker drops it, as it
// would in the field. It returns how many commands were acknowledged.
func (b *Backend) Run(stage context.Context, r Rate, targets []string) int {
	if len(targets) == 0 || r.Validate() != nil {
		return 0
	}
	acked := 0
	pace(stage, r, bound(stage, r), func(i int) bool {
		id := targets[i%len(targets)]
		payload := "ON"
		if (i/len(targets))%2 == 1 {
			payload = "OFF"
		}
		tok := b.client.Publish("devices/"+id+"/cmd/relay", b.cfg.QoS, false, payload)
		pctx, cancel := context.WithTimeout(stage, b.cfg.PublishTimeout)
		err := waitToken(pctx, tok)
		cancel()
		switch {
		case err == nil:
			acked++
			b.cfg.Sink.Emit(Event{Kind: KindCommandSent, At: time.Now()})
		case stage.Err() != nil:
			return false
		default:
			b.cfg.Sink.Emit(Event{Kind: KindError, At: time.Now(), Cause: "backend: " + Classify(StageCommand, err)})
		}
		return true
	})
	return acked
}

// Close disconnects the backend.
func (b *Backend) Close() { b.client.Disconnect(250) }
