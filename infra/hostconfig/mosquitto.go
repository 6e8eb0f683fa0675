package hostconfig

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
)

// Cipher lists: AEAD only (TLS-02, F9). Debian's defaults accept CBC/SHA-1
// suites, so the lists are always explicit.
const (
	// TLS12Ciphers is the OpenSSL cipher string for TLS 1.2 on both daemons.
	TLS12Ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305"
	// TLS13Ciphers is the TLS 1.3 suite list for mosquitto's ciphers_tls1.3.
	TLS13Ciphers = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
	// LegacyCiphers is the default of the legacy listener (LegacyTLS) with
	// its RSA certificate: ECDHE-RSA AES-GCM first (BG96, A7670), then the
	// RSA key exchange CBC suites BearSSL's setCiphersLessSecure offers.
	// No 3DES, RC4, MD5 or export suites; TLS 1.0/1.1 stay off.
	LegacyCiphers = "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:AES128-SHA256:AES128-SHA:AES256-SHA"
)

func (l *LegacyTLS) ciphers() string {
	if l.Ciphers == "" {
		return LegacyCiphers
	}
	return l.Ciphers
}

// validate reports the legacy listener's problems.
func (l *LegacyTLS) validate() []error {
	var errs []error
	if !filepath.IsAbs(l.CertFile) || !filepath.IsAbs(l.KeyFile) {
		errs = append(errs, fmt.Errorf("LegacyTLS: CertFile %q and KeyFile %q must be absolute paths (certs.IssueLegacyServer writes server-rsa.crt/.key in the PKI)", l.CertFile, l.KeyFile))
	}
	for _, bad := range []string{"NULL", "RC4", "3DES", "DES-CBC", "MD5", "EXP", "SSLv3", "ALL", "DEFAULT", "@SECLEVEL=0"} {
		if strings.Contains(strings.ToUpper(l.ciphers()), strings.ToUpper(bad)) {
			errs = append(errs, fmt.Errorf("LegacyTLS: Ciphers %q contains %s; list the suites the boards need explicitly (default %s)", l.ciphers(), bad, LegacyCiphers))
			break
		}
	}
	return errs
}

// MosquittoConf renders the broker's whole configuration (one file, no
// include_dir, so nothing from conf.d can slip a listener option in front of
// the first listener: F1). s must be valid (Render validates).
//
// Mosquitto 2.0.11 has no inline comments: a '#' after a value becomes part
// of the value. Every comment here sits on its own line.
func MosquittoConf(s Stack) []byte {
	var b bytes.Buffer
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	l := s.Limits
	p := s.Paths

	w("# Rendered by mqttstack (infra/hostconfig). Do not edit on the host:")
	w("# change the Stack and re-render. Rules: SECURITY.md §4.")
	w("#")
	w("# --- global options only until the first listener (F1: a listener option")
	w("# here would open a hidden anonymous listener on 0.0.0.0:1883) ---")
	w("per_listener_settings true")
	if s.RunAsUser != "" {
		w("# run as the invoking user: the broker must keep reading 0600 keys")
		w("user %s", s.RunAsUser)
	}
	w("pid_file %s", p.MosquittoPID)
	w("persistence true")
	w("persistence_location %s", p.PersistenceDir)
	w("autosave_interval 60")
	w("log_dest file %s", p.MosquittoLog)
	w("log_type error")
	w("log_type warning")
	w("log_type notice")
	w("log_type information")
	w("connection_messages true")
	w("log_timestamp true")
	w("log_timestamp_format %%Y-%%m-%%dT%%H:%%M:%%S")
	w("# without TCP_NODELAY a TLS 1.3 CONNACK waits ~40 ms for a delayed ACK")
	w("set_tcp_nodelay true")
	w("# largest legitimate packet + headroom; also caps pre-auth allocation (PRO-03/04)")
	w("max_packet_size %d", l.MaxPacketSize)
	if l.MessageSizeLimit > 0 {
		w("message_size_limit %d", l.MessageSizeLimit)
	}
	w("# also advertised as the MQTT 5 Receive Maximum (DOS-01)")
	w("max_inflight_messages %d", l.MaxInflightMessages)
	w("max_queued_messages %d", l.MaxQueuedMessages)
	if l.MaxQueuedBytes > 0 {
		w("max_queued_bytes %d", l.MaxQueuedBytes)
	}
	w("# enforced for MQTT 5 only on 2.0.11 (F4)")
	w("max_keepalive %d", l.MaxKeepalive)
	w("persistent_client_expiration 14d")
	w("check_retain_source true")
	w("upgrade_outgoing_qos false")
	w("sys_interval 10")
	w("")
	w("# --- devices: mTLS, certificate CN == username == client id ---")
	w("listener %d %s", s.MQTTSPort, s.BindAddress)
	w("socket_domain ipv4")
	w("protocol mqtt")
	if l.MaxConnections > 0 {
		w("# advisory on 2.0.11 (F3: the counter drifts); the firewall holds the real cap")
		w("max_connections %d", l.MaxConnections)
	}
	w("# the private device CA only (CRT-02): any CA here can mint usernames;")
	w("# during a CA rollover (certs ca next ... retire) both generations; the CRL file holds both CRLs")
	w("cafile %s", p.CAFile)
	w("crlfile %s", p.CRLFile)
	w("certfile %s", p.ServerCert)
	w("keyfile %s", p.ServerKey)
	w("tls_version tlsv1.2")
	w("ciphers %s", TLS12Ciphers)
	w("ciphers_tls1.3 %s", TLS13Ciphers)
	w("require_certificate true")
	w("use_identity_as_username true")
	w("# blocks client-id takeover and session hijack (F6, SES-01/02/03)")
	w("use_username_as_clientid true")
	w("allow_anonymous false")
	w("allow_zero_length_clientid false")
	w("acl_file %s", p.ACLFile)
	w("")
	if l := s.LegacyTLS; l != nil {
		w("# --- legacy boards (docs/DEVICES.md): RSA server certificate and RSA/CBC")
		w("# suites for devices without ECDSA; same CA, CRL, ACL and identity rules,")
		w("# TLS 1.2 minimum. The listener above is unchanged. ---")
		w("listener %d %s", l.Port, s.BindAddress)
		w("socket_domain ipv4")
		w("protocol mqtt")
		if s.Limits.MaxConnections > 0 {
			w("max_connections %d", s.Limits.MaxConnections)
		}
		w("cafile %s", p.CAFile)
		w("crlfile %s", p.CRLFile)
		w("certfile %s", l.CertFile)
		w("keyfile %s", l.KeyFile)
		w("tls_version tlsv1.2")
		w("ciphers %s", l.ciphers())
		w("require_certificate true")
		w("use_identity_as_username true")
		w("use_username_as_clientid true")
		w("allow_anonymous false")
		w("allow_zero_length_clientid false")
		w("acl_file %s", p.ACLFile)
		w("")
	}
	for i, ws := range s.WSListeners() {
		if i > 0 {
			w("")
		}
		if ws.Identity != "" {
			w("# --- WebSocket backend of WSS identity %s (loopback only): nginx proxies", ws.Identity)
			w("# only a certificate with CN=%s here, and the password file knows only", ws.Identity)
			w("# %s, so another identity's password fails (WEB-05, F8) ---", ws.Identity)
		} else {
			w("# --- DeviceWSS: shared WebSocket backend for device certificates (loopback).")
			w("# WARNING: its password file holds EVERY identity, so this mode does NOT")
			w("# bind the certificate to the username (F8): device X's certificate plus")
			w("# identity Y's password logs in as Y. For local wss load tests only. ---")
		}
		w("listener %d 127.0.0.1", ws.Port)
		w("# required on 2.0.11 + libwebsockets 4.1.6, else it binds *:%d (F2)", ws.Port)
		w("socket_domain ipv4")
		w("protocol websockets")
		if l.MaxWSConnections > 0 {
			w("max_connections %d", l.MaxWSConnections)
		}
		w("allow_anonymous false")
		w("password_file %s", ws.PasswordFile)
		w("use_username_as_clientid true")
		w("allow_zero_length_clientid false")
		w("acl_file %s", p.ACLFile)
	}
	if s.OpsPort > 0 {
		w("")
		w("# --- ops listener for CLI tools and health checks (loopback, passwords) ---")
		w("listener %d 127.0.0.1", s.OpsPort)
		w("socket_domain ipv4")
		w("protocol mqtt")
		w("allow_anonymous false")
		w("password_file %s", p.PasswordFile)
		w("use_username_as_clientid true")
		w("allow_zero_length_clientid false")
		w("acl_file %s", p.ACLFile)
	}
	return b.Bytes()
}

// ACL renders the acl_file (CONTRACTS.md): every identity is confined to
// devices/<its CN>/#; observers read devices/# and $SYS/# ('#' never matches
// $-topics, so $SYS needs its own line); backends read and write devices/#.
// The ACL parser keeps the rest of a `user` line as the name, so names were
// validated against the CN policy first.
func ACL(s Stack) []byte {
	var b strings.Builder
	b.WriteString("# Rendered by mqttstack (infra/hostconfig).\n")
	b.WriteString("# Every authenticated identity: its own subtree only, keyed on the username\n")
	b.WriteString("# (= certificate CN on the mTLS listener). Never %c (ACL-09).\n")
	b.WriteString("pattern readwrite devices/%u/#\n")
	for _, o := range s.Observers {
		// the pattern above applies to every user, observers too: the
		// deny (checked before grants and patterns) keeps a leaked observer
		// credential from publishing as a device named after it (ACL-11)
		b.WriteString("\n# read-only observer: no write anywhere\n")
		fmt.Fprintf(&b, "user %s\ntopic read devices/#\ntopic read $SYS/#\ntopic deny devices/%s/#\n", o, o)
	}
	for _, k := range s.Backends {
		b.WriteString("\n# backend: reads telemetry, writes commands\n")
		fmt.Fprintf(&b, "user %s\ntopic readwrite devices/#\n", k)
	}
	return []byte(b.String())
}

// Credential is one line of the password file: an identity and its
// plaintext password (from certs: <pki>/clients/<id>.pass).
type Credential struct {
	User     string
	Password string
}
