package hostconfig

import (
	"bytes"
	"fmt"
	"html"
	"path"
	"strconv"
	"strings"
)

// NginxConf renders nginx's whole configuration (SECURITY.md §5): TLS 1.2+
// with AEAD suites, security headers on every response, the /mqtt WebSocket
// proxy gated by a device certificate, /healthz, /ca.crt, the status page,
// an allow-listed /status, port 80 for ACME and a fixed-name redirect, and a
// catch-all that rejects unknown SNI. nginx 1.22 needs `listen … ssl http2`
// (`http2 on` arrived in 1.25.1). s must be valid (Render validates).
//
// Locally every writable path (pid, logs, temp dirs) is in the state
// directory and nginx stays in the foreground, so it runs as a plain child
// of infra/local, unprivileged if need be.
func NginxConf(s Stack) []byte {
	var b bytes.Buffer
	ind := 0
	w := func(format string, a ...any) {
		if format == "" {
			b.WriteByte('\n')
			return
		}
		for i := 0; i < ind; i++ {
			b.WriteString("  ")
		}
		fmt.Fprintf(&b, format+"\n", a...)
	}
	open := func(format string, a ...any) { w(format+" {", a...); ind++ }
	closeb := func() { ind--; w("}") }
	p := s.Paths
	l := s.Limits

	w("# Rendered by mqttstack (infra/hostconfig). Do not edit on the host.")
	switch {
	case s.Local && s.RunAsUser == "root":
		// Workers as root locally: the state dir lives in 0700 temp dirs
		// that "nobody" cannot enter. Never done on a VPS.
		w("user root;")
	case !s.Local:
		w("user www-data;")
	}
	// A non-root local run has no user directive: nginx warns and ignores it.
	if s.Local {
		w("# foreground: infra/local starts and stops the master itself")
		w("daemon off;")
		w("worker_processes 1;")
	} else {
		w("worker_processes auto;")
	}
	w("pid %s;", p.NginxPID)
	w("error_log %s notice;", p.NginxErrorLog)
	w("worker_rlimit_nofile %d;", l.NoFile)
	open("events")
	w("worker_connections %d;", l.NginxWorkerConnections)
	closeb()
	open("http")
	w("server_tokens off;")
	open("types")
	w("text/html html;")
	w("text/plain txt;")
	w("application/x-x509-ca-cert crt;")
	closeb()
	w("default_type application/octet-stream;")
	w("access_log %s;", p.NginxAccessLog)
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		w("%s_temp_path %s;", t, path.Join(p.NginxTempDir, t))
	}
	w("client_max_body_size 16k;")
	w("client_header_timeout 10s;")
	w("client_body_timeout 10s;")
	w("send_timeout 10s;")
	w("keepalive_timeout 15s;")
	w("large_client_header_buffers 4 8k;")
	w("limit_conn_zone $binary_remote_addr zone=peraddr:10m;")
	w("limit_req_zone $binary_remote_addr zone=wsreq:10m rate=5r/s;")
	w("map $http_upgrade $connection_upgrade { default upgrade; '' close; }")
	w("# WEB-07: an upgrade must offer the mqtt subprotocol (paho sends \"mqtt\",")
	w("# MQTT 3.1 clients \"mqttv3.1\"); anything else is refused here, not proxied.")
	w("# Case-sensitive: the broker's libwebsockets drops \"MQTT\" (nginx would say 502).")
	open("map $http_sec_websocket_protocol $ws_mqtt")
	w("default 0;")
	w(`"~(^|,)\s*mqtt(v3\.1)?\s*(,|$)" 1;`)
	closeb()
	w("# WEB-05 (F8): the verified client certificate's CN picks the broker listener")
	w("# whose password file holds only that identity; unknown CNs get none (403).")
	w("# $ssl_client_s_dn is RFC 2253 (\"CN=x,O=y\"): the CN is anchored by ',' or the ends.")
	open("map $ssl_client_s_dn $mqtt_ws_backend")
	def := `""`
	for _, ws := range s.WSListeners() {
		if ws.Identity == "" {
			w("# DeviceWSS: every other certificate reaches the shared device listener,")
			w("# which does NOT bind the certificate to the username (F8)")
			def = fmt.Sprintf("127.0.0.1:%d", ws.Port)
		}
	}
	w("default %s;", def)
	for _, ws := range s.WSListeners() {
		if ws.Identity != "" {
			w(`"~(^|,)CN=%s(,|$)" 127.0.0.1:%d;`, ws.Identity, ws.Port)
		}
	}
	closeb()
	w("ssl_protocols TLSv1.2 TLSv1.3;")
	w("ssl_ciphers %s;", TLS12Ciphers)
	w("ssl_prefer_server_ciphers off;")
	// no resumption at all (WEB-09/10): a ticket key would decrypt every
	// recorded session, and a session resumed from the cache (which
	// survives a reload) skips the CRL, so a revoked WSS identity could
	// come back through /mqtt until its session expired
	w("ssl_session_tickets off;")
	w("ssl_session_cache off;")
	w("")

	httpsTarget := "https://" + s.ServerName
	if s.HTTPSPort != 443 {
		httpsTarget += ":" + strconv.Itoa(s.HTTPSPort)
	}
	w("# port %d: ACME http-01 webroot and a redirect to a fixed name (WEB-01: never $host)", s.HTTPPort)
	open("server")
	for _, a := range s.listenAddrs(s.HTTPPort) {
		w("listen %s default_server;", a)
	}
	w("server_name %s;", s.ServerName)
	open("location ^~ /.well-known/acme-challenge/")
	w("root %s;", p.ACMERoot)
	w("default_type text/plain;")
	closeb()
	open("location /")
	w("return 301 %s$request_uri;", httpsTarget)
	closeb()
	closeb()
	w("")

	w("# unknown SNI or Host: no certificate is shown, nothing is served (WEB-03)")
	open("server")
	for _, a := range s.listenAddrs(s.HTTPSPort) {
		w("listen %s ssl http2 default_server;", a)
	}
	w("ssl_reject_handshake on;")
	w("return 444;")
	closeb()
	w("")

	open("server")
	for _, a := range s.listenAddrs(s.HTTPSPort) {
		w("listen %s ssl http2;", a)
	}
	w("server_name %s;", strings.Join(append([]string{s.ServerName}, s.ServerAliases...), " "))
	w("ssl_certificate %s;", p.NginxCert)
	w("ssl_certificate_key %s;", p.NginxKey)
	w("# the private device CA, for /mqtt only; optional so browsers still see the page;")
	w("# during a CA rollover both generations; the CRL file holds both CRLs")
	w("ssl_client_certificate %s;", p.CAFile)
	w("ssl_crl %s;", p.CRLFile)
	w("ssl_verify_client optional;")
	w("ssl_verify_depth 2;")
	w("# add_header is not inherited by a location that has its own; none has")
	w(`add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;`)
	w("add_header X-Content-Type-Options nosniff always;")
	w("add_header X-Frame-Options DENY always;")
	w("add_header Referrer-Policy no-referrer always;")
	w(`add_header Content-Security-Policy "default-src 'self'" always;`)
	w("limit_conn peraddr %d;", nginxPerAddrConns(s))
	w("")
	w("# MQTT over WebSocket: a valid, unrevoked client certificate of a WSS identity,")
	w("# proxied to that identity's own listener, AND the broker's password check there.")
	open("location = /mqtt")
	w("if ($ssl_client_verify != SUCCESS) { return 403; }")
	w("# no listener for this certificate's CN: devices use port %d (WEB-05)", s.MQTTSPort)
	w(`if ($mqtt_ws_backend = "") { return 403; }`)
	w("# a plain GET would reach the broker's listener and come back as a 502 (WEB-07)")
	w(`if ($http_upgrade !~* "^websocket$") { return 426; }`)
	w("if ($ws_mqtt = 0) { return 400; }")
	w("limit_req zone=wsreq burst=%d nodelay;", nginxWSBurst(s))
	w("# an IP:port needs no resolver")
	w("proxy_pass http://$mqtt_ws_backend;")
	w("proxy_http_version 1.1;")
	w("proxy_set_header Upgrade $http_upgrade;")
	w("proxy_set_header Connection $connection_upgrade;")
	w("# read by mosquitto >= 2.0.15 only")
	w("proxy_set_header X-Forwarded-For $remote_addr;")
	w("# >= 1.5 x the longest device keepalive (max_keepalive %d s)", l.MaxKeepalive)
	w("proxy_read_timeout %ds;", nginxProxyTimeout(s))
	w("proxy_send_timeout %ds;", nginxProxyTimeout(s))
	closeb()
	open("location = /healthz")
	w("default_type text/plain;")
	w(`return 200 "ok";`)
	closeb()
	w("# the device CA certificate, for firmware builds and browsers")
	open("location = /ca.crt")
	w("alias %s;", p.CAFile)
	closeb()
	w("# stub_status for the ops network only (WEB-06)")
	open("location = /status")
	for _, c := range s.StatusAllow {
		w("allow %s;", c)
	}
	w("deny all;")
	w("stub_status;")
	closeb()
	open("location /")
	w("root %s;", p.WebRoot)
	w("index index.html;")
	closeb()
	closeb()
	closeb()
	return b.Bytes()
}

// listenAddrs are nginx listen addresses for port: the bind address, plus
// [::] when the stack serves IPv6.
func (s Stack) listenAddrs(port int) []string {
	out := []string{fmt.Sprintf("%s:%d", s.BindAddress, port)}
	if s.IPv6 && s.BindAddress == "0.0.0.0" {
		out = append(out, fmt.Sprintf("[::]:%d", port))
	}
	return out
}

// nginxPerAddrConns caps connections from one address (DOS-02). Locally the
// load generator is that one address, so the cap follows the fleet size.
func nginxPerAddrConns(s Stack) int {
	if s.Limits.NginxConnsPerAddr > 0 {
		return s.Limits.NginxConnsPerAddr
	}
	if s.Local {
		return s.Limits.NginxWorkerConnections
	}
	return 20
}

// nginxWSBurst: upgrades beyond 5/s from one address are refused (AUTH-04);
// locally the whole fleet is one address, so the burst is the fleet size.
func nginxWSBurst(s Stack) int {
	if s.Limits.NginxWSBurst > 0 {
		return s.Limits.NginxWSBurst
	}
	if s.Local {
		return s.Limits.NginxWorkerConnections
	}
	return 10
}

func nginxProxyTimeout(s Stack) int {
	t := s.Limits.MaxKeepalive * 3 / 2
	if t < 300 {
		t = 300
	}
	return t
}

// StatusPage renders the static index.html nginx serves at /: what this
// host is and where the device CA and the WebSocket endpoint are. It names
// no software versions (WEB-04).
func StatusPage(s Stack) []byte {
	name := html.EscapeString(s.ServerName)
	var b bytes.Buffer
	fmt.Fprintf(&b, `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>%[1]s</title></head>
<body>
<h1>%[1]s</h1>
<p>MQTT broker for devices with a client certificate from this host's private CA.</p>
<ul>
<li>MQTT over TLS (mutual): port %[2]d</li>
<li>MQTT over WebSocket for dashboards and backends (client certificate and its own password): <code>wss://%[1]s%[3]s/mqtt</code></li>
<li>Device CA certificate: <a href="/ca.crt">/ca.crt</a></li>
<li>Health: <a href="/healthz">/healthz</a></li>
</ul>
</body>
</html>
`, name, s.MQTTSPort, portSuffix(s.HTTPSPort, 443))
	return b.Bytes()
}

func portSuffix(port, def int) string {
	if port == def {
		return ""
	}
	return ":" + strconv.Itoa(port)
}
