package security

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
)

// wsConn adapts a WebSocket to net.Conn so hand-built MQTT packets travel
// over ws/wss exactly as over TCP: one packet per binary message out,
// a byte stream in.
type wsConn struct {
	*websocket.Conn
	mu  sync.Mutex
	cur io.Reader
}

func (w *wsConn) Read(p []byte) (int, error) {
	for {
		if w.cur == nil {
			_, r, err := w.NextReader()
			if err != nil {
				return 0, err
			}
			w.cur = r
		}
		n, err := w.cur.Read(p)
		if errors.Is(err, io.EOF) {
			w.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (w *wsConn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *wsConn) SetDeadline(t time.Time) error {
	if err := w.SetReadDeadline(t); err != nil {
		return err
	}
	return w.SetWriteDeadline(t)
}

// dialWS opens an MQTT-over-WebSocket connection. It returns the HTTP
// status of a refused upgrade in the error text.
func dialWS(ctx context.Context, url string, tlsCfg *tls.Config) (*rawConn, int, error) {
	return dialWSFrom(ctx, url, tlsCfg, nil)
}

// dialWSFrom is dialWS from a chosen source address: nginx's limit_req is
// keyed on the client address, so a check that provokes throttling uses
// its own loopback address and does not throttle the others.
func dialWSFrom(ctx context.Context, url string, tlsCfg *tls.Config, src net.IP) (*rawConn, int, error) {
	nd := &net.Dialer{Timeout: 5 * time.Second}
	if src != nil {
		nd.LocalAddr = &net.TCPAddr{IP: src}
	}
	d := websocket.Dialer{Subprotocols: []string{"mqtt"}, TLSClientConfig: tlsCfg, HandshakeTimeout: 5 * time.Second, NetDialContext: nd.DialContext}
	var hdr http.Header
	if tlsCfg != nil && tlsCfg.ServerName != "" {
		// nginx answers 421 when the Host differs from the SNI name on a
		// server that verifies client certificates: send the same name.
		hdr = http.Header{"Host": {tlsCfg.ServerName}}
	}
	c, resp, err := d.DialContext(ctx, url, hdr)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		resp.Body.Close()
	}
	if err != nil {
		return nil, status, fmt.Errorf("websocket %s: %w (HTTP %d)", url, err, status)
	}
	return newRawConn(&wsConn{Conn: c}), status, nil
}

// pwListener is a listener authenticated by MQTT username/password.
type pwListener struct {
	name string
	dial func(ctx context.Context, e *Env) (*rawConn, string, error)
}

// passwordListeners are the password-authenticated ways in: locally the
// ops listener and the password identity's websocket backend directly,
// plus nginx's wss path; remotely only the wss path (presenting the
// password identity's certificate: nginx proxies a certificate only to the
// listener of its CN).
func (e *Env) passwordListeners() []pwListener {
	return e.passwordListenersOf(e.opts.PasswordIdentity)
}

// passwordListenersOf are the password-authenticated ways in for identity
// id (its own websocket listener, its certificate on the wss path).
func (e *Env) passwordListenersOf(id string) []pwListener {
	out := e.opsListeners()
	// the broker's websocket listeners are loopback-only on the host: dialled
	// directly only when that host is this machine
	if port := e.wsPortOf(id); port > 0 && e.T.Local != nil {
		out = append(out, pwListener{name: "ws backend 127.0.0.1:" + strconv.Itoa(port), dial: func(ctx context.Context, e *Env) (*rawConn, string, error) {
			c, st, err := dialWS(ctx, "ws://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(port))+"/", nil)
			return c, fmt.Sprintf("HTTP %d", st), err
		}})
	}
	if e.T.WSSURL != "" {
		out = append(out, pwListener{name: "wss " + e.T.WSSURL, dial: func(ctx context.Context, e *Env) (*rawConn, string, error) {
			// nginx routes a certificate by its CN to that identity's
			// own listener: the password identity presents its own
			cfg, err := e.clientTLS(id)
			if err != nil {
				return nil, "", err
			}
			c, st, err := dialWS(ctx, e.T.WSSURL, cfg)
			return c, fmt.Sprintf("HTTP %d", st), err
		}})
	}
	return out
}

// opsListeners is the local stack's ops listener, the password listener
// that reads the broker's shared password file of every identity (none
// without Local.OpsPort, or remotely: it is loopback on the host).
func (e *Env) opsListeners() []pwListener {
	if e.T.Local == nil || e.T.Local.OpsPort <= 0 {
		return nil
	}
	port := e.T.Local.OpsPort
	return []pwListener{{name: "ops listener 127.0.0.1:" + strconv.Itoa(port), dial: func(ctx context.Context, e *Env) (*rawConn, string, error) {
		d := net.Dialer{Timeout: 3 * time.Second}
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return nil, "", err
		}
		return newRawConn(c), "", nil
	}}}
}

func (e *Env) passwordListener() (pwListener, bool) {
	ls := e.passwordListeners()
	if len(ls) == 0 {
		return pwListener{}, false
	}
	return ls[0], true
}

// onPasswordListeners runs fn against every password listener with the
// suite's password identity, holding e.pwMu (one connection per
// identity); without a password listener the check is skipped.
func (e *Env) onPasswordListeners(fn func(ls []pwListener, user, pw string) Outcome) Outcome {
	return e.onPasswordListenersAs(e.opts.PasswordIdentity, &e.pwMu, fn)
}

// onPasswordListenersAs is onPasswordListeners for identity id, whose
// connections mu serialises.
func (e *Env) onPasswordListenersAs(id string, mu *sync.Mutex, fn func(ls []pwListener, user, pw string) Outcome) Outcome {
	ls := e.passwordListenersOf(id)
	if len(ls) == 0 {
		return skipped("the target has no password-authenticated listener")
	}
	pw, err := certs.ClientPassword(e.T.PKIDir, id)
	if err != nil {
		return inconclusive("%v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return fn(ls, id, pw)
}

// pwCreds is the password identity of the suite: the second watcher
// identity (its password is in the broker's password file from init).
// Callers hold e.pwMu while connected: one connection per identity.
func (e *Env) pwCreds() (string, string, error) {
	id := e.opts.PasswordIdentity
	pw, err := certs.ClientPassword(e.T.PKIDir, id)
	if err != nil {
		return "", "", err
	}
	return id, pw, nil
}

// wssCertID is a device certificate of the suite: on the wss path nginx
// must refuse it (403, devices use 8883) unless the target runs the opt-in
// DeviceWSS mode, where WEB-05 shows it logging in with another identity's
// password (F8).
const wssCertID = "sec-wss-cert"

func authChecks() []Check {
	return []Check{
		{
			ID: "AUTH-01", Tier: 1, Title: "Anonymous connect denied on every password listener",
			Attack: "CONNECT without username (3.1.1 and v5) on the ops listener, the ws backend and nginx's wss path; control: the suite's password identity logs in",
			Fix:    "allow_anonymous false in every listener block (per_listener_settings true)",
			Proves: "no password listener (ops, websocket backends, wss) accepts an anonymous CONNECT, and every listener states allow_anonymous false",
			Gaps:   "use_username_as_clientid refuses a username-less CONNECT by itself, which hides a missing allow_anonymous false: the config read catches it",
			Run:    runAUTH01,
		},
		{
			ID: "AUTH-02", Tier: 1, Title: "Wrong password denied, and its Will is not published",
			Attack: "correct username, wrong password, with a Will on a watched topic; control: the right password with a Will that is published on TCP drop",
			Fix:    "password_file with mosquitto_passwd $7$ hashes; allow_anonymous false",
			Proves: "a wrong password is refused on every password listener and the refused client's Will is never published; the right password's Will is",
			Guards: "CVE-2018-12551 class (permissive password handling)",
			Run:    runAUTH02,
		},
		{
			ID: "AUTH-03", Tier: 1, Title: "Zero-length client id rejected",
			Attack: "CONNECT with an empty client id (3.1.1 and v5) on 8883 with a valid certificate and on the password listeners",
			Fix:    "allow_zero_length_clientid false inside every listener block",
			Proves: "an empty client id is refused on 8883 and on the password listeners (3.1.1 and v5)",
			Actors: []string{"a"},
			Run:    runAUTH03,
		},
		{
			ID: "AUTH-05", Tier: 1, Title: "A revoked identity's password is refused",
			Attack:   "CONNECT on the ops listener as a revoked CI identity of the root CA (" + revokedPwID + ") with its correct password, after the stack rewrote its password files from the PKI; control: its valid twin " + goodPwID + ", issued with it, logs in; the shared password file and every one the broker names are read on the host",
			Fix:      "the broker's password files are rendered without revoked identities (certs.MosquittoPasswordFile, infra/broker); after `certs revoke` load them: --reload-local, or deploy up",
			Proves:   "revocation reaches the password listeners too: a revoked identity's password no longer logs in where the CRL does not apply (the ops listener, the WebSocket listeners), and no password file of the broker lists it (without an ops listener, as on `local up`'s default stack, the verdict rests on that read)",
			Gaps:     "Mosquitto reads a password file at start and on a reload (SIGHUP) only: a file rewritten without the identity changes nothing until the broker reloads it",
			Negative: []NegativeKind{NegRevokedPassword},
			Run:      runAUTH05,
		},
		{
			ID: "AUTH-04", Tier: 2, Title: "Password brute force is throttled outside Mosquitto",
			Attack:     "30 wrong-password CONNECTs in 10 s through wss",
			Fix:        "nginx limit_req on /mqtt; nftables meter on 8883",
			Proves:     "repeated wss logins from one source are throttled by nginx (limit_req) before they reach Mosquitto",
			Gaps:       "Mosquitto has no login rate limit of its own",
			Guards:     "password brute force",
			Standalone: true,
			Exclusive:  true,
			Run:        runAUTH04,
		},
	}
}

// pwAttempt dials l and sends cp; it returns the CONNACK code, or an error
// when the connection closed without one.
func (e *Env) pwAttempt(ctx context.Context, l pwListener, cp rawConnect) (byte, error) {
	c, _, err := l.dial(ctx, e)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	code, _, err := c.connack(cp)
	return code, err
}

// pwLogin requires CONNACK want for cp on l.
func (e *Env) pwLogin(ctx context.Context, l pwListener, cp rawConnect, want byte) error {
	code, err := e.pwAttempt(ctx, l, cp)
	if err != nil {
		return err
	}
	if code != want {
		return fmt.Errorf("CONNACK 0x%02x, want 0x%02x", code, want)
	}
	return nil
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// runAUTH01 runs AUTH-01 (its catalog entry is in this file).
func runAUTH01(ctx context.Context, e *Env) Outcome {
	return e.onPasswordListeners(func(ls []pwListener, user, pw string) Outcome {
		var parts []string
		for _, l := range ls {
			if err := e.pwLogin(ctx, l, rawConnect{ClientID: user, Username: &user, Password: &pw, KeepAlive: 30}, 0); err != nil {
				return inconclusive("positive control on %s: %v", l.name, err)
			}
			for _, v5 := range []bool{false, true} {
				code, err := e.pwAttempt(ctx, l, rawConnect{V5: v5, ClientID: "sec-anon-" + nonce()[:6], KeepAlive: 30})
				ver := map[bool]string{false: "3.1.1", true: "v5"}[v5]
				if err != nil {
					parts = append(parts, fmt.Sprintf("%s %s: closed (%v)", l.name, ver, shortErr(err)))
					continue
				}
				if code == 0 {
					return fail("anonymous %s CONNECT ACCEPTED on %s (CONNACK 0)", ver, l.name)
				}
				parts = append(parts, fmt.Sprintf("%s %s: CONNACK 0x%02x", l.name, ver, code))
			}
		}
		// Locally also read the config: with use_username_as_clientid a
		// username-less CONNECT is refused (CONNACK 5) even when
		// allow_anonymous is true, which hides a missing
		// allow_anonymous false until someone drops the other option.
		lint, err := e.lintMatching(ctx, "allow_anonymous")
		if err != nil {
			return pass("%s; control login as %s ok everywhere; allow_anonymous lint not run: %v", strings.Join(parts, "; "), user, err)
		}
		if len(lint) > 0 {
			return fail("%s; refused today, but %s", strings.Join(parts, "; "), strings.Join(lint, "; "))
		}
		return pass("%s; control login as %s ok everywhere; every listener states allow_anonymous false", strings.Join(parts, "; "), user)
	})
}

// runAUTH02 runs AUTH-02 (its catalog entry is in this file).
func runAUTH02(ctx context.Context, e *Env) Outcome {
	// The backend, not the observer: the control Will must be
	// one the ACL lets through (observers write nothing, ACL-11).
	return e.onPasswordListenersAs(sesBackend, &e.backendMu, func(ls []pwListener, user, pw string) Outcome {
		willTopic := "devices/" + user + "/will"
		var parts []string
		for _, l := range ls {
			canary := "canary-" + nonce()
			ctl := "willctl-" + nonce()
			tap := e.watch.tap(func(m Msg) bool { return m.Topic == willTopic })
			for _, v5 := range []bool{false, true} {
				bad := "wrong-" + nonce()
				code, err := e.pwAttempt(ctx, l, rawConnect{V5: v5, ClientID: user, Username: &user, Password: &bad, KeepAlive: 30,
					WillTopic: &willTopic, WillMsg: []byte(canary), WillQoS: 1})
				if err == nil && code == 0 {
					e.watch.untap(tap)
					return fail("wrong password ACCEPTED on %s (CONNACK 0)", l.name)
				}
				parts = append(parts, fmt.Sprintf("%s v%s: CONNACK 0x%02x", l.name, map[bool]string{false: "3", true: "5"}[v5], code))
			}
			// Control: the right password, a Will, then a TCP drop.
			c, _, err := l.dial(ctx, e)
			if err != nil {
				e.watch.untap(tap)
				return inconclusive("control dial %s: %v", l.name, err)
			}
			code, _, err := c.connack(rawConnect{ClientID: user, Username: &user, Password: &pw, KeepAlive: 30, WillTopic: &willTopic, WillMsg: []byte(ctl), WillQoS: 1})
			c.Close()
			if err != nil || code != 0 {
				e.watch.untap(tap)
				return inconclusive("positive control login on %s: code %d %v", l.name, code, err)
			}
			_, ok := tap.waitFor(ctx, barrierWait, payloadHas(ctl))
			seen := tap.matching(payloadHas(canary))
			e.watch.untap(tap)
			if len(seen) > 0 {
				return fail("Will of the refused client was PUBLISHED on %s (%s)", willTopic, l.name)
			}
			if !ok {
				return inconclusive("positive control: the Will of the accepted client was not delivered on %s", l.name)
			}
		}
		return pass("%s; refused clients' Wills never published, control Will delivered", strings.Join(parts, "; "))
	})
}

// runAUTH03 runs AUTH-03 (its catalog entry is in this file).
func runAUTH03(ctx context.Context, e *Env) Outcome {
	a := e.Actor("AUTH-03", "a")
	var parts []string
	for _, v5 := range []bool{false, true} {
		c, err := e.dialRaw(ctx, a)
		if err != nil {
			return inconclusive("%v", err)
		}
		code, _, err := c.connack(rawConnect{V5: v5, ClientID: "", KeepAlive: 30})
		c.Close()
		ver := map[bool]string{false: "3.1.1", true: "v5"}[v5]
		if err != nil {
			return inconclusive("8883 %s: %v", ver, err)
		}
		if code == 0 {
			return fail("8883 %s: empty client id ACCEPTED", ver)
		}
		parts = append(parts, fmt.Sprintf("8883 %s: CONNACK 0x%02x", ver, code))
	}
	// control: the same identity with a client id connects
	if err := e.alive(ctx, a); err != nil {
		return inconclusive("positive control: %v", err)
	}
	if ls := e.passwordListeners(); len(ls) > 0 {
		user, pw, err := e.pwCreds()
		if err != nil {
			return inconclusive("%v", err)
		}
		e.pwMu.Lock()
		defer e.pwMu.Unlock()
		for _, l := range ls {
			code, err := e.pwAttempt(ctx, l, rawConnect{ClientID: "", Username: &user, Password: &pw, KeepAlive: 30})
			if err != nil {
				return inconclusive("%s: %v", l.name, err)
			}
			if code == 0 {
				return fail("%s: empty client id ACCEPTED", l.name)
			}
			parts = append(parts, fmt.Sprintf("%s: CONNACK 0x%02x", l.name, code))
		}
	}
	return pass("%s; control with an id connected", strings.Join(parts, "; "))
}

// runAUTH05 runs AUTH-05 (its catalog entry is in this file).
func runAUTH05(ctx context.Context, e *Env) Outcome {
	if err := e.negErr[NegRevokedPassword]; err != nil {
		return inconclusive("could not prepare the revoked identity %s: %v", revokedPwID, err)
	}
	revoked, good := revokedPwID, goodPwID
	pwRevoked, err := certs.ClientPassword(e.T.PKIDir, revoked)
	if err != nil {
		return inconclusive("%v", err)
	}
	pwGood, err := certs.ClientPassword(e.T.PKIDir, good)
	if err != nil {
		return inconclusive("%v", err)
	}
	hint := " (the files predate the suite's preparation: on the local stack `mqttstack local passwords` rewrites them; a deployed one needs `deploy up` after the suite's first run)"
	var parts []string
	ops := e.opsListeners()
	for _, l := range ops {
		if err := e.pwLogin(ctx, l, rawConnect{ClientID: good, Username: &good, Password: &pwGood, KeepAlive: 30}, 0); err != nil {
			return inconclusive("positive control on %s: %s, the valid twin issued with %s, could not log in with its password: %v%s", l.name, good, revoked, err, hint)
		}
		code, err := e.pwAttempt(ctx, l, rawConnect{ClientID: revoked, Username: &revoked, Password: &pwRevoked, KeepAlive: 30})
		switch {
		case err == nil && code == 0:
			return fail("REVOKED identity %s logged in with its correct password on %s (CONNACK 0): the broker's password file still lists it, though its certificate is on the CRL", revoked, l.name)
		case err != nil:
			parts = append(parts, fmt.Sprintf("%s: revoked %s's correct password refused (closed: %s), valid twin %s logged in", l.name, revoked, shortErr(err), good))
		default:
			parts = append(parts, fmt.Sprintf("%s: revoked %s's correct password refused (CONNACK 0x%02x), valid twin %s logged in", l.name, revoked, code, good))
		}
	}
	if e.host == nil {
		if len(ops) == 0 {
			return skipped("no ops listener reads the broker's shared password file here (local up --ops-port), and the files cannot be read: %v", errNoHost)
		}
		return pass("%s; the password files were not read: %v", strings.Join(parts, "; "), errNoHost)
	}
	files, err := e.passwordFileUsers(ctx)
	if err != nil {
		return inconclusive("%s; %v", strings.Join(parts, "; "), err)
	}
	for _, f := range files {
		if f.users[revoked] {
			return fail("%s lists the REVOKED identity %s: every listener that reads it accepts its password", f.path, revoked)
		}
	}
	if !files[0].users[good] {
		return inconclusive("%s; the shared password file %s does not list the valid twin %s%s", strings.Join(parts, "; "), files[0].path, good, hint)
	}
	if len(ops) == 0 {
		parts = append(parts, "no ops listener reads the shared password file here (local up --ops-port proves it by login)")
	}
	return pass("%s; read on the host: the shared password file and the %d the broker names list no revoked %s, the shared one lists its twin %s", strings.Join(parts, "; "), len(files)-1, revoked, good)
}

// passwordFile is one password file of the broker and its users.
type passwordFile struct {
	path  string
	users map[string]bool
}

// passwordFileUsers reads on the host every password_file the broker's
// configuration names (each WSS identity's; the shared one with an ops
// listener) and the shared password file of every identity, which the
// stack renders whether or not a listener reads it (each WSS identity's
// file is cut from it: hostconfig.PasswordFiles). The shared one is first.
func (e *Env) passwordFileUsers(ctx context.Context) ([]passwordFile, error) {
	conf, err := e.brokerConf(ctx)
	if err != nil {
		return nil, err
	}
	shared := hostconfig.VPSPaths().PasswordFile
	if e.T.Local != nil {
		shared = hostconfig.LocalPaths(e.T.Local.StateDir, e.T.PKIDir).PasswordFile
	}
	paths := []string{shared}
	seen := map[string]bool{shared: true}
	for _, d := range conf {
		if d.key == "password_file" && !seen[d.value] {
			seen[d.value] = true
			paths = append(paths, d.value)
		}
	}
	var out []passwordFile
	for _, p := range paths {
		b, err := e.hostFile(ctx, p)
		if err != nil {
			return nil, err
		}
		f := passwordFile{path: p, users: map[string]bool{}}
		for _, line := range strings.Split(string(b), "\n") {
			if user, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
				f.users[user] = true
			}
		}
		out = append(out, f)
	}
	return out, nil
}
