package security

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/host"
	"github.com/mqttstack/mqttstack/target"
)

// Options configures a run of the catalog.
type Options struct {
	Target *target.Target
	// AllowLoad permits floods against a target that is not the local
	// stack (Target.Local == nil). Without it those checks are Skipped.
	AllowLoad bool
	// Parallel is how many checks run at once (default 8). Checks use
	// their own identities and topics, so they do not interfere.
	Parallel int
	// Watcher is the read-only identity of the canary/barrier watcher
	// (default observer-7). PasswordIdentity (default observer-8) is the
	// identity whose password the checks of password listeners use (its
	// .pass is in the broker's password file from init). Both are reserved
	// for this suite, so it never kicks a load test's observers.
	Watcher          string
	PasswordIdentity string
	// Host reaches the machine the stack runs on: the local stack's
	// (infra/local) or a deployed VPS's over SSH (host/sshhost). The
	// host-side checks read the broker's and nginx's configuration, the
	// ACL the broker loaded and the listening sockets through it, and the
	// suite reloads the daemons' CRL with it on a local target (and, when
	// the Host can, has it rewrite the broker's password files: AUTH-05).
	// nil: no host access; those checks are Skipped with the reason, never
	// passed.
	Host host.Host
	// Log receives progress lines (nil: discarded).
	Log io.Writer
}

// Env is the shared state of one run: the target, the trust material, the
// watcher and the identities Prepare issued. Safe for concurrent use by
// checks.
type Env struct {
	T    *target.Target
	opts Options
	host host.Host // nil: no host access

	caPool *x509.CertPool
	root   *certs.Authority

	watch    *watcher
	watchErr error

	// pwMu serialises connections of PasswordIdentity (observer-8) and
	// backendMu those of the suite's backend identity (backend-8): with
	// use_username_as_clientid two of them would kick each other. A check
	// that needs both takes pwMu first.
	pwMu      sync.Mutex
	backendMu sync.Mutex

	certMu sync.Mutex
	certs  map[string]tls.Certificate // cache: identity → key pair

	neg map[NegativeKind]tls.Certificate
	// negErr says why a negative identity could not be prepared (the
	// check is then Inconclusive, not Pass).
	negErr map[NegativeKind]error
	// subCAGood is a valid identity issued by the CI sub-CA: the positive
	// control that sub-CA chains are accepted at all.
	subCAGood string
	subCADir  string

	// wsLs are the broker's websockets listeners, read through the host
	// once (nil without host access).
	wsLs []wsListener
}

// Actor names the identity of role for check id: "ACL-03","b" → "sec-acl03-b".
func (e *Env) Actor(id, role string) string { return actorName(id, role) }

func actorName(id, role string) string {
	return "sec-" + strings.ToLower(strings.ReplaceAll(id, "-", "")) + "-" + role
}

// Prepare issues every identity the checks need (idempotent), connects the
// watcher and returns the environment. Close releases it.
func Prepare(ctx context.Context, opts Options, checks []Check) (*Env, error) {
	e, err := newEnv(opts)
	if err != nil {
		return nil, err
	}
	opts = e.opts

	if e.host != nil {
		// The websockets listeners decide which password listeners the
		// checks use; a broker config that cannot be read here is reported
		// by the host-side checks themselves.
		if conf, err := e.brokerConf(ctx); err == nil {
			e.wsLs = readWSListeners(conf)
		} else {
			fmt.Fprintf(opts.Log, "security: %v\n", err)
		}
	}
	ids := []string{wssCertID}
	negs := map[NegativeKind]bool{}
	for _, c := range checks {
		for _, r := range c.Actors {
			ids = append(ids, actorName(c.ID, r))
		}
		for _, n := range c.Negative {
			negs[n] = true
		}
	}
	if len(ids) > 0 {
		if _, err := e.root.IssueClients(ctx, ids); err != nil {
			return nil, fmt.Errorf("security: issue test identities: %w", err)
		}
	}
	if len(negs) > 0 {
		if err := e.prepareNegatives(ctx, negs); err != nil {
			return nil, err
		}
	}
	e.watch, err = e.startWatcher(ctx, opts.Watcher)
	if err != nil {
		// Not fatal here: checks that need the watcher report Inconclusive
		// with this reason, standalone ones still run.
		e.watch = nil
		e.watchErr = fmt.Errorf("watcher %s: %w (every isolation check depends on it)", opts.Watcher, err)
		fmt.Fprintf(opts.Log, "security: %v\n", e.watchErr)
	}
	return e, nil
}

// newEnv is the part of Prepare that every use of the suite needs: the
// defaults, the private CA as trust anchor and the PKI (the suite issues its
// own identities and needs the CA key).
func newEnv(opts Options) (*Env, error) {
	t := opts.Target
	if t == nil {
		return nil, errors.New("security: no target")
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 8
	}
	if opts.Watcher == "" {
		opts.Watcher = "observer-7"
	}
	if opts.PasswordIdentity == "" {
		opts.PasswordIdentity = "observer-8"
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	e := &Env{T: t, opts: opts, host: opts.Host, certs: map[string]tls.Certificate{},
		neg: map[NegativeKind]tls.Certificate{}, negErr: map[NegativeKind]error{}}
	caPEM, err := os.ReadFile(t.CACert)
	if err != nil {
		return nil, fmt.Errorf("security: read CA %s: %w", t.CACert, err)
	}
	e.caPool = x509.NewCertPool()
	if !e.caPool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("security: %s holds no PEM certificate", t.CACert)
	}
	e.root, err = certs.Open(t.PKIDir)
	if err != nil {
		return nil, fmt.Errorf("security: the suite issues its own test identities and needs the CA key: %w", err)
	}
	return e, nil
}

// Close disconnects the watcher.
func (e *Env) Close() {
	if e != nil && e.watch != nil {
		e.watch.c.close()
	}
}

// clientCert loads (once) the key pair of an identity of the root CA.
func (e *Env) clientCert(id string) (tls.Certificate, error) {
	return e.loadPair(filepath.Join(e.T.PKIDir, "clients"), id)
}

func (e *Env) loadPair(dir, id string) (tls.Certificate, error) {
	key := dir + "\x00" + id
	e.certMu.Lock()
	defer e.certMu.Unlock()
	if c, ok := e.certs[key]; ok {
		return c, nil
	}
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, id+".crt"), filepath.Join(dir, id+".key"))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("identity %s: %w", id, err)
	}
	e.certs[key] = c
	return c, nil
}

// baseTLS verifies the server against the private CA and the target's name.
func (e *Env) baseTLS() *tls.Config {
	return &tls.Config{RootCAs: e.caPool, ServerName: e.T.ServerName, MinVersion: tls.VersionTLS12}
}

func (e *Env) clientTLS(id string) (*tls.Config, error) {
	c, err := e.clientCert(id)
	if err != nil {
		return nil, err
	}
	return e.certTLS(c), nil
}

// certTLS is baseTLS presenting the client certificate c.
func (e *Env) certTLS(c tls.Certificate) *tls.Config {
	cfg := e.baseTLS()
	cfg.Certificates = []tls.Certificate{c}
	return cfg
}

func (e *Env) dialTLS(ctx context.Context, cfg *tls.Config) (*tls.Conn, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	dctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", e.T.MQTTSAddr())
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

// dialRaw opens a TLS connection for identity id for hand-built packets.
func (e *Env) dialRaw(ctx context.Context, id string) (*rawConn, error) {
	cfg, err := e.clientTLS(id)
	if err != nil {
		return nil, err
	}
	c, err := e.dialTLS(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", id, err)
	}
	return newRawConn(c), nil
}

// rawSession dials identity id and completes a CONNECT (3.1.1 or v5).
func (e *Env) rawSession(ctx context.Context, id string, v5 bool) (*rawConn, rawPacket, error) {
	c, err := e.dialRaw(ctx, id)
	if err != nil {
		return nil, rawPacket{}, err
	}
	rc, p, err := c.connack(rawConnect{V5: v5, ClientID: id, KeepAlive: 30})
	if err != nil {
		c.Close()
		return nil, p, err
	}
	if rc != 0 {
		c.Close()
		return nil, p, fmt.Errorf("CONNACK code 0x%02x for %s", rc, id)
	}
	return c, p, nil
}

// alive is the liveness probe after a robustness check: a fresh
// authenticated connection gets CONNACK 0 and a PINGRESP within 2 s, and
// the watcher's long-lived session was not dropped (a broker restart or crash
// would drop it).
func (e *Env) alive(ctx context.Context, id string) error {
	c, err := e.dialRaw(ctx, id)
	if err != nil {
		return fmt.Errorf("liveness: %w", err)
	}
	defer c.Close()
	if rc, _, err := c.connack(rawConnect{ClientID: id, KeepAlive: 30}); err != nil || rc != 0 {
		return fmt.Errorf("liveness: CONNACK rc=%d err=%v", rc, err)
	}
	if err := c.send(pingreq); err != nil {
		return fmt.Errorf("liveness: PINGREQ: %w", err)
	}
	p, err := c.read(2 * time.Second)
	if err != nil || p.Type != 13 {
		return fmt.Errorf("liveness: no PINGRESP within 2s (type %d, %v)", p.Type, err)
	}
	if e.watch == nil {
		return nil
	}
	if err := e.watch.lostErr(); err != nil {
		return fmt.Errorf("liveness: watcher lost its connection (broker restarted or crashed?): %w", err)
	}
	return nil
}

func nonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }
