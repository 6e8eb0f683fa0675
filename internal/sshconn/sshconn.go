// Package sshconn is mqttstack's one way to reach a host over SSH: a pinned
// host key (or, for a fresh cloud server, a key recorded on first contact
// that the caller stores and pins from then on), public-key authentication,
// and a bounded retry budget for a host that is still booting.
//
// Host key verification is never skipped. A pinned key that does not match
// fails the dial during the key exchange, before authentication and before
// any command runs. Only network errors that a booting host produces
// (connection refused, timeouts, no route, a reset while sshd starts) are
// retried; a key mismatch or an authentication failure is final.
package sshconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Config says how to reach one host.
type Config struct {
	Host       string        // name or address
	Port       int           // 0 means 22
	User       string        // login user
	PrivateKey []byte        // PEM or OpenSSH private key, unencrypted (never logged)
	HostKey    string        // authorized_keys line ("ssh-ed25519 AAAA... [comment]"); "" records the key on first contact
	Budget     time.Duration // how long to keep retrying a host that does not answer yet; 0 means one attempt
}

// Defaults for dialling.
const (
	DefaultPort = 22
	// attemptTimeout bounds one TCP connect plus SSH handshake.
	attemptTimeout = 15 * time.Second
	minAttempt     = 5 * time.Second
	firstBackoff   = 250 * time.Millisecond
	maxBackoff     = 5 * time.Second
)

// ErrAuth is wrapped by a dial error when the host refused our key.
var ErrAuth = errors.New("ssh authentication failed")

// HostKeyMismatchError is returned when the host presents a key other than
// the pinned one. It is never retried.
type HostKeyMismatchError struct {
	Addr      string // host:port
	Want, Got string // fingerprints (SHA256:...)
	GotKey    string // the presented key as an authorized_keys line
}

func (e *HostKeyMismatchError) Error() string {
	return fmt.Sprintf("ssh %s: host key mismatch: pinned %s, host presented %s; "+
		"nothing was sent to the host. If the host was rebuilt, verify the new key out of band "+
		"(on its console: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and update the pinned host key; "+
		"otherwise someone may be intercepting the connection", e.Addr, e.Want, e.Got)
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Host) == "" {
		errs = append(errs, errors.New("host: empty (set the server's name or address)"))
	} else if strings.ContainsAny(c.Host, " \t\n/") {
		errs = append(errs, fmt.Errorf("host: %q is not a host name or address", c.Host))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port: %d out of range (1-65535, 0 means 22)", c.Port))
	}
	if strings.TrimSpace(c.User) == "" {
		errs = append(errs, errors.New("user: empty (set the login user, e.g. root)"))
	}
	if len(c.PrivateKey) == 0 {
		errs = append(errs, errors.New("privateKey: empty (give the PEM/OpenSSH private key whose public half is in the host's authorized_keys)"))
	} else if _, err := ParsePrivateKey(c.PrivateKey); err != nil {
		errs = append(errs, fmt.Errorf("privateKey: %w", err))
	}
	if c.HostKey != "" {
		if _, err := ParseHostKey(c.HostKey); err != nil {
			errs = append(errs, fmt.Errorf("hostKey: %w", err))
		}
	}
	if c.Budget < 0 {
		errs = append(errs, fmt.Errorf("budget: %s is negative (0 means one attempt)", c.Budget))
	}
	return errors.Join(errs...)
}

// Addr is host:port with the default port filled in.
func (c Config) Addr() string {
	p := c.Port
	if p == 0 {
		p = DefaultPort
	}
	return net.JoinHostPort(c.Host, strconv.Itoa(p))
}

// ParsePrivateKey parses an unencrypted private key with a clear error.
func ParsePrivateKey(pemBytes []byte) (ssh.Signer, error) {
	s, err := ssh.ParsePrivateKey(pemBytes)
	var pm *ssh.PassphraseMissingError
	if errors.As(err, &pm) {
		return nil, errors.New("the key is protected by a passphrase; give an unencrypted key (ssh-keygen -p -N '' -f KEY on a copy)")
	}
	if err != nil {
		return nil, fmt.Errorf("not a private key (%v); give the content of an OpenSSH or PEM private key file", err)
	}
	return s, nil
}

// ParseHostKey parses an authorized_keys/known_hosts style public key line
// ("ssh-ed25519 AAAA... comment"; a leading known_hosts host pattern is
// accepted too).
func ParseHostKey(line string) (ssh.PublicKey, error) {
	line = strings.TrimSpace(line)
	if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err == nil {
		return k, nil
	}
	if _, _, k, _, _, err := ssh.ParseKnownHosts([]byte(line)); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("%q is not a public key line; give a line like \"ssh-ed25519 AAAA...\" (from the host: cat /etc/ssh/ssh_host_ed25519_key.pub, or ssh-keyscan -t ed25519 HOST)", abbreviate(line, 40))
}

// Fingerprint is the SHA256 fingerprint of an authorized_keys line, or "" if
// the line does not parse.
func Fingerprint(line string) string {
	k, err := ParseHostKey(line)
	if err != nil {
		return ""
	}
	return ssh.FingerprintSHA256(k)
}

// Client is one authenticated SSH connection. It is safe for concurrent use:
// every Run opens its own session.
type Client struct {
	conn    *ssh.Client
	addr    string
	hostKey ssh.PublicKey
}

// Dial connects and authenticates, retrying within cfg.Budget while the host
// does not answer yet. ctx cancels the whole dial.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ssh config: %w", err)
	}
	signer, _ := ParsePrivateKey(cfg.PrivateKey) // validated above
	var pinned ssh.PublicKey
	if cfg.HostKey != "" {
		pinned, _ = ParseHostKey(cfg.HostKey)
	}
	addr := cfg.Addr()
	deadline := time.Now().Add(cfg.Budget)
	backoff := firstBackoff
	for attempt := 1; ; attempt++ {
		c, err := dialOnce(ctx, addr, cfg.User, signer, pinned, deadline)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ssh %s: %w (after %d attempts: %v)", addr, ctx.Err(), attempt, err)
		}
		if !retryable(err) {
			return nil, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			cause := err
			var ne *netError
			if errors.As(err, &ne) {
				cause = ne.err
			}
			return nil, fmt.Errorf("ssh %s: not reachable within the retry budget of %s (%d attempts): %w; check the address, port and firewall, or raise the budget for a server that is still booting", addr, cfg.Budget, attempt, cause)
		}
		wait := min(backoff, left)
		backoff = min(backoff*2, maxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("ssh %s: %w (after %d attempts: %v)", addr, ctx.Err(), attempt, err)
		case <-t.C:
		}
	}
}

// dialOnce is one TCP connect + SSH handshake, bounded by attemptTimeout and
// by what is left of the budget (but never less than minAttempt, so a zero
// budget still gets one real attempt).
func dialOnce(ctx context.Context, addr, user string, signer ssh.Signer, pinned ssh.PublicKey, deadline time.Time) (*Client, error) {
	limit := time.Now().Add(min(attemptTimeout, max(time.Until(deadline), minAttempt)))
	actx, cancel := context.WithDeadline(ctx, limit)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(actx, "tcp", addr)
	if err != nil {
		return nil, &netError{addr: addr, err: err}
	}
	// The handshake reads and writes raw; a deadline and the context bound it.
	_ = raw.SetDeadline(limit)
	stop := context.AfterFunc(actx, func() { _ = raw.Close() })
	defer stop()

	var presented ssh.PublicKey
	var mismatch *HostKeyMismatchError
	conf := &ssh.ClientConfig{
		User: user,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			presented = key
			if pinned != nil && !bytes.Equal(key.Marshal(), pinned.Marshal()) {
				mismatch = &HostKeyMismatchError{
					Addr: addr, Want: ssh.FingerprintSHA256(pinned), Got: ssh.FingerprintSHA256(key),
					GotKey: authorizedLine(key),
				}
				return mismatch
			}
			return nil
		},
		Timeout: time.Until(limit),
	}
	if pinned != nil {
		// Ask for the pinned key's algorithm, so that a host with several
		// keys presents the one we pinned rather than its favourite.
		conf.HostKeyAlgorithms = algorithmsFor(pinned.Type())
	}
	cc, chans, reqs, err := ssh.NewClientConn(raw, addr, conf)
	if err != nil {
		_ = raw.Close()
		switch {
		case mismatch != nil:
			return nil, mismatch
		case presented != nil && strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("ssh %s: user %q: %w: the host refused our key (is its public half in ~%s/.ssh/authorized_keys?): %v", addr, user, ErrAuth, user, err)
		case presented == nil && pinned != nil && strings.Contains(err.Error(), "no common algorithm for host key"):
			return nil, &HostKeyMismatchError{Addr: addr, Want: ssh.FingerprintSHA256(pinned), Got: "no key of type " + pinned.Type()}
		case ctx.Err() == nil && (actx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded)):
			return nil, &netError{addr: addr, err: fmt.Errorf("TCP connected but no SSH handshake within %s: %w", time.Duration(conf.Timeout).Round(time.Second), context.DeadlineExceeded)}
		}
		return nil, &netError{addr: addr, err: fmt.Errorf("ssh handshake: %w", err), handshake: true}
	}
	_ = raw.SetDeadline(time.Time{})
	return &Client{conn: ssh.NewClient(cc, chans, reqs), addr: addr, hostKey: presented}, nil
}

// netError is a failure to reach sshd, possibly transient.
type netError struct {
	addr      string
	err       error
	handshake bool // the TCP connect worked; the SSH handshake did not
}

func (e *netError) Error() string { return fmt.Sprintf("ssh %s: %v", e.addr, e.err) }
func (e *netError) Unwrap() error { return e.err }

// retryable: what a booting or briefly unreachable host produces.
func retryable(err error) bool {
	var ne *netError
	if !errors.As(err, &ne) {
		return false // key mismatch, auth failure, bad config
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return true
	}
	// sshd that accepted and closed at once (still starting, MaxStartups).
	return ne.handshake && errors.Is(err, io.EOF)
}

func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

func authorizedLine(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// HostKey is the key the host presented, as an authorized_keys line (store it
// to pin the host on the next dial).
func (c *Client) HostKey() string { return authorizedLine(c.hostKey) }

// Fingerprint is the SHA256 fingerprint of the host's key ("SHA256:...").
func (c *Client) Fingerprint() string { return ssh.FingerprintSHA256(c.hostKey) }

// Addr is the host:port this client is connected to.
func (c *Client) Addr() string { return c.addr }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// ExitError is returned by Run when the command ran and exited non-zero.
type ExitError struct {
	Cmd    string // the command's first line, abbreviated
	Status int
	Stderr string // the end of its stderr, trimmed
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s: exit status %d", e.Cmd, e.Status)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Run runs cmd in a new session with stdin (may be nil) and returns its
// output. A non-zero exit is an *ExitError carrying the tail of stderr.
// Cancelling ctx closes the session (the remote command gets SIGHUP).
func (c *Client) Run(ctx context.Context, cmd string, stdin io.Reader) (stdout, stderr []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	s, err := c.conn.NewSession()
	if err != nil {
		return nil, nil, fmt.Errorf("ssh %s: new session: %w", c.addr, err)
	}
	defer s.Close()
	var outb, errb bytes.Buffer
	s.Stdout, s.Stderr = &outb, &errb
	if stdin != nil {
		s.Stdin = stdin
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// Ask the remote command to stop and close our side. sshd may keep
		// the channel until the command ends; the session's goroutine then
		// ends at the latest when the client is closed.
		_ = s.Signal(ssh.SIGTERM)
		_ = s.Close()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		return nil, nil, fmt.Errorf("ssh %s: %s: %w", c.addr, abbreviate(cmd, 60), ctx.Err())
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return outb.Bytes(), errb.Bytes(), &ExitError{Cmd: abbreviate(cmd, 60), Status: ee.ExitStatus(), Stderr: tail(errb.Bytes(), 2000)}
	}
	if err != nil {
		return outb.Bytes(), errb.Bytes(), fmt.Errorf("ssh %s: %s: %w", c.addr, abbreviate(cmd, 60), err)
	}
	return outb.Bytes(), errb.Bytes(), nil
}

func abbreviate(s string, n int) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

func tail(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
