package security

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mqttstack/mqttstack/certs"
)

// webAddrs returns the nginx TLS address (host:port) and plain HTTP base.
func (e *Env) webAddrs() (httpsAddr, httpBase string, err error) {
	if e.T.HTTPSURL == "" {
		return "", "", fmt.Errorf("target has no https_url")
	}
	u, err := url.Parse(e.T.HTTPSURL)
	if err != nil {
		return "", "", fmt.Errorf("https_url: %w", err)
	}
	httpsAddr = u.Host
	if u.Port() == "" {
		httpsAddr = net.JoinHostPort(u.Hostname(), "443")
	}
	port := 80
	if e.T.Local != nil && e.T.Local.HTTPPort > 0 {
		port = e.T.Local.HTTPPort
	}
	return httpsAddr, "http://" + net.JoinHostPort(u.Hostname(), strconv.Itoa(port)), nil
}

// webRoots trusts the system roots (an ACME certificate) and the private CA.
func (e *Env) webRoots() *x509.CertPool {
	p, err := x509.SystemCertPool()
	if err != nil || p == nil {
		p = x509.NewCertPool()
	}
	if b, err := readFile(e.T.CACert); err == nil {
		p.AppendCertsFromPEM(b)
	}
	return p
}

// webClient never follows redirects (the checks judge the redirect) and
// optionally binds its source address (WEB-06 probes from a loopback
// address outside the allow list).
func (e *Env) webClient(cert *tls.Certificate, source net.IP) *http.Client {
	cfg := &tls.Config{RootCAs: e.webRoots(), ServerName: e.T.ServerName, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	if source != nil {
		d.LocalAddr = &net.TCPAddr{IP: source}
	}
	return &http.Client{
		Timeout:       8 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{TLSClientConfig: cfg, DialContext: d.DialContext, ForceAttemptHTTP2: false, DisableKeepAlives: true},
	}
}

type webResp struct {
	status int
	header http.Header
	body   string
}

func (e *Env) fetch(ctx context.Context, c *http.Client, method, u, host string, hdr map[string]string) (webResp, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return webResp{}, err
	}
	if host == "" {
		// nginx answers 421 when Host and SNI differ on a server that
		// verifies client certificates; SNI is the target's server name.
		host = e.T.ServerName
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return webResp{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return webResp{status: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

var maxAgeRE = regexp.MustCompile(`max-age=(\d+)`)

func webChecks() []Check {
	return []Check{
		{
			ID: "WEB-01", Standalone: true, Tier: 1, Title: "HTTP→HTTPS redirect to a fixed name; no Host reflection; ACME path intact",
			Attack: "GET http://<host>/x with the real Host and with Host: evil.example; GET /.well-known/acme-challenge/<probe>",
			Fix:    "port 80 server: `return 301 https://<fixed name>$request_uri;` and `location ^~ /.well-known/acme-challenge/ { root ...; }`",
			Proves: "port 80 redirects permanently to the fixed https name, never to a Host header, and leaves the ACME path to the webroot",
			Guards: "open redirect / Host reflection",
			Run:    runWEB01,
		},
		{
			ID: "WEB-02", Standalone: true, Tier: 1, Title: "HSTS on every HTTPS response, including errors",
			Attack: "GET /, /status, a missing page and /mqtt without a certificate; read Strict-Transport-Security",
			Fix:    `add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always; (server level, no location with its own add_header)`,
			Proves: "every HTTPS answer, errors included, carries HSTS of at least a year",
			Run:    runWEB02,
		},
		{
			ID: "WEB-03", Standalone: true, Tier: 1, Title: "TLS on the nginx port: versions, ciphers, unknown SNI/Host, certificate",
			Attack: "TLS 1.0/1.1 and CBC-only handshakes; unknown SNI; known SNI with Host evil.example; verify the chain and expiry",
			Fix:    "ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers <AEAD list>; ssl_session_tickets off; catch-all default_server with ssl_reject_handshake on; return 444;",
			Proves: "nginx refuses TLS 1.0/1.1 and CBC-only offers, rejects an unknown SNI without showing a certificate, does not serve an unknown Host, and its chain verifies with 14 days left",
			Run:    runWEB03,
		},
		{
			ID: "WEB-04", Standalone: true, Tier: 1, Title: "No version disclosure",
			Attack: "HEAD /, GET a missing page, a refused WebSocket upgrade: read Server, X-Powered-By and the error body",
			Fix:    "server_tokens off; (headers-more to drop Server entirely); no http_dir in mosquitto.conf",
			Proves: "no version in Server headers or error pages, no X-Powered-By, no files served by the broker's websocket listener",
			Guards: "version disclosure",
			Run:    runWEB04,
		},
		{
			ID: "WEB-05", Tier: 1, Title: "wss /mqtt needs a client certificate AND MQTT authentication bound to it",
			Attack:   "wss /mqtt with (a) no cert, (b) a foreign-CA cert (a device's CN, and a WSS identity's CN with its password), (c) a valid cert without credentials, (d) a valid cert + its own password, (e) a device's cert + a WSS identity's password, and WSS identity X's cert + identity Y's password",
			Fix:      "nginx: ssl_verify_client optional + `if ($ssl_client_verify != SUCCESS) { return 403; }` on /mqtt, ssl_client_certificate = private CA, ssl_crl; to bind cert and username (e): no MQTT-over-WSS for devices (no DeviceWSS), and route each WSS identity's CN (map $ssl_client_s_dn) to its own listener whose password file holds only it; or stream+ssl_preread to 8883, or an auth plugin",
			Proves:   "/mqtt needs a valid client certificate and the broker password of the same identity: a device certificate or another identity's password gets nothing",
			Gaps:     "websocket listeners of 2.0.11 cannot require or read client certificates, so nginx must bind certificate and username; ssl_verify_depth is not probed (a chain deeper than the CA's would fail on its intermediate's missing CRL first, so no probe can isolate the depth)",
			Guards:   "F8",
			Negative: []NegativeKind{NegForeign, NegForeignWSS},
			Run:      runWEB05,
		},
		{
			ID: "WEB-06", Standalone: true, Tier: 1, Title: "The status page is restricted",
			Attack: "GET /status from an address outside the allow list (a second loopback address locally); control: /healthz answers",
			Fix:    "location = /status { allow <ops-cidr>; deny all; stub_status; }",
			Proves: "the status page is refused to an address outside its allow list while the site answers",
			Run:    runWEB06,
		},
		{
			ID: "WEB-08", Tier: 1, Title: "A revoked WSS identity is refused by nginx on /mqtt",
			Attack:   "wss /mqtt with a revoked CI certificate whose CN is a WSS identity (observer-8), with that identity's correct password; control: its valid twin",
			Fix:      "nginx: ssl_crl <the CA's CRL> in the /mqtt server, reloaded after every revocation (CRT-09)",
			Proves:   "nginx checks the CRL on the WebSocket path: a revoked certificate never reaches the broker, whose websocket listeners cannot check certificates",
			Gaps:     "Mosquitto's websocket listeners ignore client certificates (F8): nginx is the only CRL check on this path",
			Guards:   "F8, F10 on the wss path",
			Negative: []NegativeKind{NegRevokedWSS, NegWSSGood},
			Run:      runWEB08,
		},
		{
			ID: "WEB-09", Standalone: true, Tier: 1, Title: "nginx resumes no TLS session; OCSP staple absent or valid",
			Attack: "two TLS 1.2 handshakes sharing a client session cache (ticket resumption), two TLS 1.3 ones (session cache), and the stapled OCSP response",
			Fix:    "ssl_session_tickets off; ssl_session_cache off; no ssl_stapling with the private CA (or a valid one)",
			Proves: "no session is resumed: not from a ticket (whose key would decrypt recorded TLS 1.2 sessions: no forward secrecy) nor from the session cache (a resumed session skips the CRL, WEB-10); any stapled OCSP answer is a good, current one for the leaf",
			Gaps:   "every handshake is a full one (a cost the few WSS identities and status-page visitors can carry)",
			Guards: "F11, forward secrecy of the nginx TLS block",
			Run:    runWEB09,
		},
		{
			ID: "WEB-10", Tier: 2, Exclusive: true, Host: true, Title: "A revoked WSS identity cannot come back through a resumed TLS session",
			Attack: "a CI certificate with a WSS identity's CN upgrades /mqtt over TLS 1.3 with a client session cache; it is revoked, the CRL rewritten, nginx reloaded; the client retries with its cached session",
			Fix:    "ssl_session_cache off (and tickets off): nginx's shared session cache survives a reload, and a resumed session keeps the verification of the handshake before the revocation",
			Proves: "after revoke + CRL + nginx reload the revoked certificate gets nothing on /mqtt, whether it offers a cached session or makes a full handshake",
			Gaps:   "local only (a deployed nginx loads the CRL deployed with it); on the broker a reload starts a new TLS context, so its tickets die with it (CRT-10)",
			Guards: "F11 (F10 on the wss path: revocation bypassed by TLS session resumption)",
			Run:    runWEB10,
		},
		{
			ID:         "WEB-07",
			Tier:       2,
			Title:      "Non-WebSocket and abusive requests to /mqtt",
			Attack:     "plain GET, wrong subprotocol, 20 KB header, 50 upgrades/s",
			Fix:        "limit_req, limit_conn, large_client_header_buffers, client_header_timeout, proxy_read_timeout",
			Proves:     "plain GETs, foreign subprotocols and oversized headers on /mqtt get 4xx from nginx, never a proxied 5xx",
			Standalone: true,
			Run:        runWEB07,
		},
	}
}

// presenting makes cfg send cert whatever the server's CertificateRequest
// says: nginx lists its client CA there, and Go's client withholds a
// certificate that list does not cover (it would send none, and a check of
// a foreign certificate would only prove the no-certificate case).
func presenting(cfg *tls.Config, cert tls.Certificate) *tls.Config {
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	return cfg
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func runWEB05(ctx context.Context, e *Env) Outcome {
	if e.T.WSSURL == "" {
		return skipped("target offers no wss transport")
	}
	// X = the password identity (a WSS identity: observer-8 by default),
	// Y = the watcher identity (observer-7): both belong to the suite, so a
	// successful attack kicks nobody else's session (it may kick the
	// watcher, on a stack that fails anyway).
	user, pw, err := e.pwCreds()
	if err != nil {
		return inconclusive("%v", err)
	}
	other := e.opts.Watcher
	otherPW, err := certs.ClientPassword(e.T.PKIDir, other)
	if err != nil {
		return inconclusive("%v", err)
	}
	e.pwMu.Lock()
	defer e.pwMu.Unlock()
	var parts []string
	// (a) no certificate
	if c, st, err := dialWS(ctx, e.T.WSSURL, &tls.Config{RootCAs: e.webRoots(), ServerName: e.T.ServerName}); err == nil {
		c.Close()
		return fail("(a) no certificate: upgrade ACCEPTED (HTTP %d)", st)
	} else {
		parts = append(parts, fmt.Sprintf("(a) no cert: HTTP %d", st))
	}
	// (b) foreign CA
	if ferr := e.negErr[NegForeign]; ferr != nil {
		return inconclusive("foreign identity: %v", ferr)
	}
	fc := e.neg[NegForeign]
	if c, st, err := dialWS(ctx, e.T.WSSURL, presenting(&tls.Config{RootCAs: e.webRoots(), ServerName: e.T.ServerName}, fc)); err == nil {
		c.Close()
		return fail("(b) foreign-CA certificate: upgrade ACCEPTED (HTTP %d)", st)
	} else {
		parts = append(parts, fmt.Sprintf("(b) foreign cert: HTTP %d", st))
	}
	// (b) again with a WSS identity's CN: the CN map would route this one
	// to that identity's listener, so only nginx's verification stops it
	if ferr := e.negErr[NegForeignWSS]; ferr != nil {
		return inconclusive("foreign identity with CN %s: %v", user, ferr)
	}
	if c, st, err := dialWS(ctx, e.T.WSSURL, presenting(&tls.Config{RootCAs: e.webRoots(), ServerName: e.T.ServerName}, e.neg[NegForeignWSS])); err == nil {
		code, _, cerr := c.connack(rawConnect{ClientID: user, Username: &user, Password: &pw, KeepAlive: 30})
		c.Close()
		return fail("(b) foreign-CA certificate with CN %s: upgrade ACCEPTED (HTTP %d) and routed to its listener (CONNACK %d %v): nginx does not verify client certificates on /mqtt", user, st, code, cerr)
	} else {
		parts = append(parts, fmt.Sprintf("(b) foreign cert with CN %s: HTTP %d", user, st))
	}
	own, err := e.clientTLS(user)
	if err != nil {
		return inconclusive("%v", err)
	}
	own.RootCAs = e.webRoots()
	dev, err := e.clientTLS(wssCertID)
	if err != nil {
		return inconclusive("%v", err)
	}
	dev.RootCAs = e.webRoots()
	// mqttOver returns the CONNACK code, or the HTTP status of a refused
	// upgrade (status > 0, err set).
	mqttOver := func(cfg *tls.Config, cp rawConnect) (code byte, status int, err error) {
		c, st, err := dialWS(ctx, e.T.WSSURL, cfg)
		if err != nil {
			return 0, st, fmt.Errorf("upgrade refused (HTTP %d): %w", st, err)
		}
		defer c.Close()
		code, _, err = c.connack(cp)
		return code, 0, err
	}
	mode := ""
	if e.T.WSSDevices {
		mode = "; the target runs DeviceWSS (wss_devices: a shared device websocket listener with every identity's password)"
	}
	// (e) another identity's password behind a valid certificate: judged
	// first, a login is a FAIL whatever the controls say
	// (e1) a device certificate with a WSS identity's password
	code, st, err := mqttOver(dev, rawConnect{ClientID: user, Username: &user, Password: &pw, KeepAlive: 30})
	if err == nil && code == 0 {
		return fail("%s; (e) device %s's certificate + %s's password ACCEPTED as %s: nginx does not bind the certificate to the MQTT username (F8)%s", strings.Join(parts, "; "), wssCertID, user, user, mode)
	}
	e1 := fmt.Sprintf("(e) device cert + %s's password: %s", user, refusal(code, st, err))
	// (e2) WSS identity X's certificate with WSS identity Y's password
	code, st, err = mqttOver(own, rawConnect{ClientID: other, Username: &other, Password: &otherPW, KeepAlive: 30})
	if err == nil && code == 0 {
		return fail("%s; (e) %s's certificate + %s's password ACCEPTED as %s: nginx does not bind the certificate to the MQTT username (F8)%s", strings.Join(parts, "; "), user, other, other, mode)
	}
	e2 := fmt.Sprintf("(e) %s's cert + %s's password: %s", user, other, refusal(code, st, err))
	// (c) valid certificate, no credentials
	code, _, err = mqttOver(own, rawConnect{ClientID: user, KeepAlive: 30})
	if err != nil {
		return inconclusive("(c) %s's certificate: %v", user, err)
	}
	if code == 0 {
		return fail("(c) valid certificate without MQTT credentials: CONNACK 0 (anonymous over wss)")
	}
	parts = append(parts, fmt.Sprintf("(c) cert, no creds: CONNACK %d", code))
	// (d) positive control: the identity's own certificate and password
	code, _, err = mqttOver(own, rawConnect{ClientID: user, Username: &user, Password: &pw, KeepAlive: 30})
	if err != nil || code != 0 {
		return inconclusive("(d) positive control: %s's certificate + password: CONNACK %d %v (the rejections in (e) prove nothing without it)", user, code, err)
	}
	parts = append(parts, "(d) own cert+password: CONNACK 0", e1, e2)
	return pass("%s", strings.Join(parts, "; "))
}

// refusal describes how a login attempt was turned away.
func refusal(code byte, status int, err error) string {
	switch {
	case status > 0:
		return fmt.Sprintf("HTTP %d", status)
	case err != nil:
		return err.Error()
	default:
		return fmt.Sprintf("CONNACK %d", code)
	}
}

// runWEB01 runs WEB-01 (its catalog entry is in this file).
func runWEB01(ctx context.Context, e *Env) Outcome {
	_, base, err := e.webAddrs()
	if err != nil {
		return skipped("%v", err)
	}
	c := e.webClient(nil, nil)
	path := "/sec-" + nonce() + "?q=1"
	good, err := e.fetch(ctx, c, "GET", base+path, e.T.ServerName, nil)
	if err != nil {
		return inconclusive("positive control GET %s: %v", base, err)
	}
	loc := good.header.Get("Location")
	if good.status != 301 && good.status != 308 {
		return fail("GET %s answered %d, not a permanent redirect", path, good.status)
	}
	lu, err := url.Parse(loc)
	if err != nil || lu.Scheme != "https" || lu.Hostname() != e.T.ServerName || lu.RequestURI() != path {
		return fail("redirect Location %q is not https://%s…%s", loc, e.T.ServerName, path)
	}
	evil, err := e.fetch(ctx, c, "GET", base+path, "evil.example", nil)
	evilDesc := ""
	switch {
	case err != nil:
		evilDesc = "Host evil.example: connection closed"
	case strings.Contains(evil.header.Get("Location"), "evil.example"):
		return fail("Host header REFLECTED: Location %q", evil.header.Get("Location"))
	default:
		evilDesc = fmt.Sprintf("Host evil.example: %d Location %q", evil.status, evil.header.Get("Location"))
	}
	acme, err := e.fetch(ctx, c, "GET", base+"/.well-known/acme-challenge/sec-probe-"+nonce(), e.T.ServerName, nil)
	if err != nil {
		return fail("ACME path: %v", err)
	}
	if acme.status >= 300 && acme.status < 400 {
		return fail("ACME path redirected (%d to %q): http-01 renewals break", acme.status, acme.header.Get("Location"))
	}
	return pass("301 → %s; %s; ACME path served from the webroot (%d)", loc, evilDesc, acme.status)
}

// runWEB02 runs WEB-02 (its catalog entry is in this file).
func runWEB02(ctx context.Context, e *Env) Outcome {
	if e.T.HTTPSURL == "" {
		return skipped("target has no https_url")
	}
	c := e.webClient(nil, nil)
	base := strings.TrimSuffix(e.T.HTTPSURL, "/")
	var parts []string
	codes := map[int]bool{}
	for _, p := range []string{"/", "/status", "/sec-missing-" + nonce(), "/mqtt"} {
		r, err := e.fetch(ctx, c, "GET", base+p, "", nil)
		if err != nil {
			return inconclusive("GET %s: %v", p, err)
		}
		codes[r.status/100] = true
		h := r.header.Get("Strict-Transport-Security")
		m := maxAgeRE.FindStringSubmatch(h)
		if m == nil {
			return fail("GET %s (%d): no Strict-Transport-Security header", p, r.status)
		}
		if n, _ := strconv.Atoi(m[1]); n < 31536000 {
			return fail("GET %s (%d): HSTS max-age %s < 31536000", p, r.status, m[1])
		}
		parts = append(parts, fmt.Sprintf("%s %d", p, r.status))
	}
	if !codes[4] {
		return inconclusive("positive control: no 4xx response was produced (%s), so error pages were not covered", strings.Join(parts, ", "))
	}
	return pass("HSTS max-age >= 1y on %s", strings.Join(parts, ", "))
}

// runWEB03 runs WEB-03 (its catalog entry is in this file).
func runWEB03(ctx context.Context, e *Env) Outcome {
	addr, _, err := e.webAddrs()
	if err != nil {
		return skipped("%v", err)
	}
	base := func() *tls.Config {
		return &tls.Config{RootCAs: e.webRoots(), ServerName: e.T.ServerName, MinVersion: tls.VersionTLS12}
	}
	st, _, err := probeTLS(ctx, addr, base())
	if err != nil {
		return fail("verified handshake with SNI %s failed: %v", e.T.ServerName, err)
	}
	leaf := leafVerdict(st, e.T.ServerName)
	if leaf.Status != Pass {
		return leaf
	}
	var parts []string
	for _, v := range []uint16{tls.VersionTLS11, tls.VersionTLS10} {
		cfg := base()
		cfg.MinVersion, cfg.MaxVersion = v, v
		if _, alert, err := probeTLS(ctx, addr, cfg); err == nil {
			return fail("%s handshake COMPLETED on %s", tls.VersionName(v), addr)
		} else {
			parts = append(parts, tls.VersionName(v)+" refused ("+alertName(alert)+")")
		}
	}
	ciph := tlsCipherProbe(ctx, addr, base)
	if ciph.Status != Pass {
		return ciph
	}
	parts = append(parts, "CBC-only refused")
	unk := base()
	unk.ServerName = "sec-" + nonce() + ".invalid"
	unk.InsecureSkipVerify = true // proving refusal: no certificate may be shown for an unknown name
	if st, alert, err := probeTLS(ctx, addr, unk); err == nil {
		return fail("unknown SNI %s got a handshake (certificate %q)", unk.ServerName, st.PeerCertificates[0].Subject.CommonName)
	} else {
		parts = append(parts, "unknown SNI refused ("+alertName(alert)+")")
	}
	c := e.webClient(nil, nil)
	r, err := e.fetch(ctx, c, "GET", strings.TrimSuffix(e.T.HTTPSURL, "/")+"/", "evil.example", nil)
	switch {
	case err == nil && r.status < 400:
		return fail("known SNI with Host evil.example served %d", r.status)
	case err == nil:
		parts = append(parts, fmt.Sprintf("Host evil.example → %d", r.status))
	default:
		parts = append(parts, "Host evil.example → closed (444)")
	}
	return pass("%s; %s", strings.Join(parts, "; "), leaf.Evidence)
}

// runWEB04 runs WEB-04 (its catalog entry is in this file).
func runWEB04(ctx context.Context, e *Env) Outcome {
	if e.T.HTTPSURL == "" {
		return skipped("target has no https_url")
	}
	c := e.webClient(nil, nil)
	base := strings.TrimSuffix(e.T.HTTPSURL, "/")
	reqs := []struct {
		m, p string
		h    map[string]string
	}{
		{"HEAD", "/", nil},
		{"GET", "/sec-missing-" + nonce(), nil},
		{"GET", "/mqtt", map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "mqtt"}},
	}
	var parts []string
	verRE := regexp.MustCompile(`nginx/\d`)
	for _, q := range reqs {
		r, err := e.fetch(ctx, c, q.m, base+q.p, "", q.h)
		if err != nil {
			return inconclusive("%s %s: %v", q.m, q.p, err)
		}
		srv := r.header.Get("Server")
		if verRE.MatchString(srv) || strings.Contains(srv, "/") {
			return fail("%s %s (%d): Server: %q discloses the version", q.m, q.p, r.status, srv)
		}
		if verRE.MatchString(r.body) {
			return fail("%s %s (%d): error body discloses %q", q.m, q.p, r.status, verRE.FindString(r.body))
		}
		if xp := r.header.Get("X-Powered-By"); xp != "" {
			return fail("%s %s: X-Powered-By: %q", q.m, q.p, xp)
		}
		parts = append(parts, fmt.Sprintf("%s %s %d Server=%q", q.m, q.p, r.status, srv))
	}
	if conf, err := e.brokerConf(ctx); errors.Is(err, errNoHost) {
		parts = append(parts, "http_dir not checked (no host access)")
	} else if err != nil {
		return inconclusive("%v", err)
	} else {
		for _, d := range conf {
			if d.key == "http_dir" {
				return fail("mosquitto http_dir %s: the websocket listener serves files", d.value)
			}
		}
		parts = append(parts, "no http_dir")
	}
	return pass("%s", strings.Join(parts, "; "))
}

// runWEB06 runs WEB-06 (its catalog entry is in this file).
func runWEB06(ctx context.Context, e *Env) Outcome {
	if e.T.HTTPSURL == "" {
		return skipped("target has no https_url")
	}
	var src net.IP
	srcDesc := "this host"
	if e.T.Local != nil {
		// 127.0.0.2 is loopback but not 127.0.0.1: it stands for
		// "the Internet" unless the allow list covers 127/8.
		src, srcDesc = net.ParseIP("127.0.0.2"), "127.0.0.2"
	}
	c := e.webClient(nil, src)
	base := strings.TrimSuffix(e.T.HTTPSURL, "/")
	hz, err := e.fetch(ctx, c, "GET", base+"/healthz", "", nil)
	if err != nil || hz.status != 200 {
		hz2, err2 := e.fetch(ctx, c, "GET", base+"/", "", nil)
		if err2 != nil || hz2.status != 200 {
			return inconclusive("positive control: neither /healthz nor / answered 200 from %s (%v %v)", srcDesc, err, err2)
		}
	}
	r, err := e.fetch(ctx, c, "GET", base+"/status", "", nil)
	if err != nil {
		return inconclusive("GET /status: %v", err)
	}
	if r.status == 200 {
		return fail("/status served (200) to %s: %q", srcDesc, firstLine(r.body))
	}
	return pass("/status → %d from %s; /healthz control answered", r.status, srcDesc)
}
