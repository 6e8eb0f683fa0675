// Package hostconfig renders the files that make up the MQTT stack on a host
// (mosquitto.conf, the ACL, nginx.conf, the status page, systemd drop-ins,
// cloud-init and a provisioning script) from one Stack description.
//
// Everything here is a pure function of its inputs: no file system, no
// network, no clock. The Pulumi program and infra/local both render through
// this package, so the configuration that the local tests run against real
// daemons is byte for byte the configuration that ships (only the paths and
// ports differ). The hardening follows SECURITY.md §4–5; the comments next to
// each directive name the finding it closes.
package hostconfig

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"regexp"
	"strings"

	"github.com/mqttstack/mqttstack/certs"
)

// File is one rendered file: where it goes on the host, its mode and its
// bytes. Owner ("user:group") is set where the daemon must own the file (the
// broker reads its config after dropping root); empty means root.
type File struct {
	Path    string
	Mode    os.FileMode
	Content []byte
	Owner   string
}

// Stack describes one MQTT stack. Build it with VPSStack or LocalStack and
// adjust fields; Validate reports every problem at once.
type Stack struct {
	// ServerName is the TLS name of the broker and of nginx (a SAN of the
	// server certificate), e.g. "mqtt.example.com" or "mqtt.local.test".
	ServerName string
	// ServerAliases are extra nginx server_name values. nginx answers 421
	// when the Host header differs from the TLS SNI on a server that asks
	// for client certificates, so every name a client may use must be one
	// that it also sends as SNI: an IP address never works (no SNI for IPs).
	ServerAliases []string
	// BindAddress is where the public listeners (8883, 443, 80) bind:
	// "0.0.0.0" on a VPS, "127.0.0.1" locally. The WebSocket and ops
	// listeners always bind 127.0.0.1.
	BindAddress string
	// IPv6 adds [::] listeners for nginx on a VPS (only with BindAddress
	// 0.0.0.0). The broker's 8883 listener stays IPv4 (socket_domain ipv4);
	// add a v6 one deliberately if devices need it.
	IPv6      bool
	MQTTSPort int // mTLS device listener (8883)
	// WSPort is the first of mosquitto's loopback WebSocket listeners behind
	// nginx (9001): WSSIdentities[i] gets WSPort+i, the shared device
	// listener (DeviceWSS) the port after the last identity.
	WSPort    int
	OpsPort   int // loopback password listener for ops tools; 0 = none
	HTTPSPort int // nginx TLS (443)
	HTTPPort  int // nginx plain HTTP: ACME webroot + redirect (80)

	Paths Paths

	// Observers get read-only access to devices/# and $SYS/#; Backends get
	// readwrite devices/#. Every other authenticated identity is confined to
	// devices/<its name>/# by the pattern line.
	Observers []string
	Backends  []string

	// WSSIdentities may use MQTT over wss (default: Observers then
	// Backends). Mosquitto 2.0.11's WebSocket listeners cannot tie a
	// certificate to a username (F8), so each identity gets its own loopback
	// listener whose password file holds only its own hash, and nginx routes
	// a verified certificate by its CN to that listener: X's certificate
	// only ever reaches X's listener, where Y's password fails (WEB-05).
	// Devices are not in this list: they connect on MQTTSPort, where the
	// identity is the certificate (SECURITY.md WEB-05, option 1).
	WSSIdentities []string
	// DeviceWSS adds one shared WebSocket listener (password file of every
	// client identity) that nginx uses for verified certificates that are
	// not WSSIdentities, so devices can load-test the wss path. This mode
	// does NOT bind the certificate to the username (F8): the security
	// suite's WEB-05 fails against it. Never on a production stack.
	DeviceWSS bool

	Limits Limits

	// PublicDomain means ServerName resolves publicly and nginx's 443
	// certificate comes from Let's Encrypt (certbot --webroot, deploy hook);
	// otherwise nginx serves the private server certificate.
	PublicDomain bool
	ACMEEmail    string
	// AdminCIDR may reach SSH on a VPS (nftables rule); empty = SSH closed
	// except through the provider console.
	AdminCIDR string
	// StatusAllow are the CIDRs allowed to read nginx's /status
	// (stub_status); everyone else gets 403 (WEB-06).
	StatusAllow []string
	// RunAsUser is the user the daemons run as. Locally it is the current
	// user, so mosquitto does not drop to "mosquitto" and lose access to the
	// 0600 keys in the PKI directory. Empty on a VPS (Debian's defaults).
	RunAsUser string
	// Local renders for infra/local: nginx in the foreground with every
	// writable path in the state directory, no systemd.
	Local bool
	// LegacyTLS, when set, adds a second mTLS listener for boards the main
	// listener refuses by design (docs/DEVICES.md): nil = none.
	LegacyTLS *LegacyTLS
}

// LegacyTLS is a second mTLS listener for boards without ECDSA or AEAD
// (RSA-only modems, BearSSL "less secure"): its own port, an RSA server
// certificate (certs.IssueLegacyServer) and its own cipher list, with the
// same CA, CRL, ACL, identity rules and TLS 1.2 minimum as the main
// listener, which stays exactly as it is. Opened in the firewall like the
// main one; give it only to the boards that need it.
type LegacyTLS struct {
	Port int
	// CertFile and KeyFile are the RSA server certificate and key on the host.
	CertFile, KeyFile string
	// Ciphers is the OpenSSL TLS 1.2 cipher string (default LegacyCiphers).
	Ciphers string
}

// Paths are where the rendered files and the files they reference live on
// the host. VPSPaths and LocalPaths give the two layouts.
type Paths struct {
	MosquittoConf   string // the broker's only config file (no include_dir)
	ACLFile         string
	PasswordFile    string // every identity's hash: ops listener, DeviceWSS listener
	PasswordDir     string // <dir>/<id>: one WSS identity's hash, for its own listener
	MosquittoPID    string
	MosquittoLog    string
	PersistenceDir  string // mosquitto.db lives here
	CAFile          string // the private device CA (only it: CRT-02)
	CRLFile         string
	ServerCert      string // 8883's certificate (private CA)
	ServerKey       string
	NginxConf       string
	NginxCert       string // 443's certificate (ACME copy or private server cert)
	NginxKey        string
	NginxPID        string
	NginxErrorLog   string
	NginxAccessLog  string
	NginxTempDir    string // parent of the *_temp_path directories
	WebRoot         string // status page
	ACMERoot        string // certbot --webroot
	SystemdDropins  string // /etc/systemd/system (VPS only)
	DeployHook      string // certbot deploy hook (VPS, PublicDomain)
	NftablesConf    string // VPS firewall
	ProvisionScript string // where the provisioning script is written on the host
}

// Limits bound what one client can make the broker hold (SECURITY.md §4,
// DOS-01..05, PRO-04). Zero means "leave the directive out" for the optional
// ones; MaxConnections -1 means unlimited.
type Limits struct {
	MaxPacketSize       int // bytes; also caps pre-auth allocation (PRO-03)
	MessageSizeLimit    int // bytes of payload; 0 = not set
	MaxInflightMessages int // also the v5 Receive Maximum
	MaxQueuedMessages   int
	MaxQueuedBytes      int // 0 = not set
	MaxConnections      int // per mTLS listener; advisory on 2.0.11 (F3); -1 = unlimited
	MaxWSConnections    int // WebSocket listener; -1 = unlimited
	MaxKeepalive        int // seconds; v5 only on 2.0.11 (F4)
	// NoFile is LimitNOFILE for the systemd units and nginx's
	// worker_rlimit_nofile: every connection is a descriptor.
	NoFile int
	// NginxWorkerConnections per nginx worker (a proxied WebSocket uses two).
	NginxWorkerConnections int
	// NginxConnsPerAddr is nginx's limit_conn per client address (DOS-02):
	// 0 selects 20 on a VPS and NginxWorkerConnections locally, where the
	// load generator is one address. Raise it on a VPS before a wss load
	// test from one machine.
	NginxConnsPerAddr int
	// NginxWSBurst is the burst of the 5 upgrades/s per address limit on
	// /mqtt (AUTH-04): 0 selects 10 on a VPS and NginxWorkerConnections
	// locally (the load generator's whole fleet arrives from 127.0.0.1).
	NginxWSBurst int
}

// DefaultLimits are starting points sized for a fleet of a few thousand
// devices; the load tests run ~19,000 connections on the local stack.
func DefaultLimits() Limits {
	return Limits{
		MaxPacketSize:          16384,
		MaxInflightMessages:    20,
		MaxQueuedMessages:      1000,
		MaxQueuedBytes:         0,
		MaxConnections:         -1,
		MaxWSConnections:       -1,
		MaxKeepalive:           120,
		NoFile:                 65536,
		NginxWorkerConnections: 8192,
	}
}

// VPSPaths is the Debian layout: the broker owns /etc/mosquitto, nginx
// /etc/nginx, the status page /var/www/mqttstack.
func VPSPaths() Paths {
	return Paths{
		MosquittoConf:   "/etc/mosquitto/mosquitto.conf",
		ACLFile:         "/etc/mosquitto/acl",
		PasswordFile:    "/etc/mosquitto/passwd",
		PasswordDir:     "/etc/mosquitto/passwd.d",
		MosquittoPID:    "/run/mosquitto/mosquitto.pid",
		MosquittoLog:    "/var/log/mosquitto/mosquitto.log",
		PersistenceDir:  "/var/lib/mosquitto/",
		CAFile:          "/etc/mosquitto/ca_certificates/device-ca.crt",
		CRLFile:         "/etc/mosquitto/ca_certificates/device-ca.crl",
		ServerCert:      "/etc/mosquitto/certs/server.crt",
		ServerKey:       "/etc/mosquitto/certs/server.key",
		NginxConf:       "/etc/nginx/nginx.conf",
		NginxCert:       "/etc/nginx/tls/server.crt",
		NginxKey:        "/etc/nginx/tls/server.key",
		NginxPID:        "/run/nginx.pid",
		NginxErrorLog:   "/var/log/nginx/error.log",
		NginxAccessLog:  "/var/log/nginx/access.log",
		NginxTempDir:    "/var/lib/nginx",
		WebRoot:         "/var/www/mqttstack",
		ACMERoot:        "/var/www/acme",
		SystemdDropins:  "/etc/systemd/system",
		DeployHook:      "/etc/letsencrypt/renewal-hooks/deploy/mqttstack",
		NftablesConf:    "/etc/nftables.conf",
		ProvisionScript: "/usr/local/sbin/mqttstack-provision",
	}
}

// LocalPaths puts every file the daemons write under stateDir and points the
// TLS files straight into the PKI directory, so `certs revoke` + a CRL
// rewrite + SIGHUP is all a revocation needs locally.
func LocalPaths(stateDir, pkiDir string) Paths {
	j := path.Join
	return Paths{
		MosquittoConf:  j(stateDir, "mosquitto", "mosquitto.conf"),
		ACLFile:        j(stateDir, "mosquitto", "acl"),
		PasswordFile:   j(stateDir, "mosquitto", "passwd"),
		PasswordDir:    j(stateDir, "mosquitto", "passwd.d"),
		MosquittoPID:   j(stateDir, "mosquitto", "mosquitto.pid"),
		MosquittoLog:   j(stateDir, "mosquitto", "mosquitto.log"),
		PersistenceDir: j(stateDir, "mosquitto", "data") + "/",
		CAFile:         j(pkiDir, "ca.crt"),
		CRLFile:        j(pkiDir, "ca.crl"),
		ServerCert:     j(pkiDir, "server.crt"),
		ServerKey:      j(pkiDir, "server.key"),
		NginxConf:      j(stateDir, "nginx", "nginx.conf"),
		NginxCert:      j(pkiDir, "server.crt"),
		NginxKey:       j(pkiDir, "server.key"),
		NginxPID:       j(stateDir, "nginx", "nginx.pid"),
		NginxErrorLog:  j(stateDir, "nginx", "error.log"),
		NginxAccessLog: j(stateDir, "nginx", "access.log"),
		NginxTempDir:   j(stateDir, "nginx", "tmp"),
		WebRoot:        j(stateDir, "nginx", "www"),
		ACMERoot:       j(stateDir, "nginx", "acme"),
	}
}

// VPSStack is the production description for serverName: public listeners
// on all IPv4 addresses, Debian paths, default identities and limits.
func VPSStack(serverName string) Stack {
	l := DefaultLimits()
	// defence in depth only (F3: the counter drifts on 2.0.11); sized under
	// LimitNOFILE so the broker refuses before it runs out of descriptors
	l.MaxConnections = 50000
	l.MaxWSConnections = 5000
	return Stack{
		ServerName:    serverName,
		BindAddress:   "0.0.0.0",
		MQTTSPort:     8883,
		WSPort:        9001,
		HTTPSPort:     443,
		HTTPPort:      80,
		Paths:         VPSPaths(),
		Observers:     certs.DefaultObservers(),
		Backends:      certs.DefaultBackends(),
		WSSIdentities: DefaultWSSIdentities(),
		Limits:        l,
	}
}

// LocalStack is the description infra/local runs: loopback only,
// unprivileged default ports, files under stateDir, TLS files in pkiDir.
func LocalStack(stateDir, pkiDir, runAsUser string) Stack {
	return Stack{
		// "localhost" resolves everywhere without /etc/hosts edits, and a
		// client's SNI and Host must agree (see ServerAliases).
		ServerName:    "localhost",
		BindAddress:   "127.0.0.1",
		MQTTSPort:     8883,
		WSPort:        9001,
		HTTPSPort:     8443,
		HTTPPort:      8080,
		Paths:         LocalPaths(stateDir, pkiDir),
		Observers:     certs.DefaultObservers(),
		Backends:      certs.DefaultBackends(),
		WSSIdentities: DefaultWSSIdentities(),
		Limits:        DefaultLimits(),
		RunAsUser:     runAsUser,
		Local:         true,
	}
}

// DefaultWSSIdentities are the identities that may use wss by default: the
// default observers, then the default backends (not devices).
func DefaultWSSIdentities() []string {
	return append(certs.DefaultObservers(), certs.DefaultBackends()...)
}

// WSListener is one of mosquitto's loopback WebSocket listeners behind
// nginx. Identity is the only user its password file knows; "" marks the
// shared device listener of DeviceWSS (every identity's password).
type WSListener struct {
	Identity     string
	Port         int
	PasswordFile string
}

// WSListeners lists the WebSocket listeners in port order: one per
// WSSIdentities entry (WSPort, WSPort+1, …), then the shared device
// listener when DeviceWSS is set.
func (s Stack) WSListeners() []WSListener {
	out := make([]WSListener, 0, len(s.WSSIdentities)+1)
	for i, id := range s.WSSIdentities {
		out = append(out, WSListener{Identity: id, Port: s.WSPort + i, PasswordFile: s.IdentityPasswordFile(id)})
	}
	if s.DeviceWSS {
		out = append(out, WSListener{Port: s.WSPort + len(s.WSSIdentities), PasswordFile: s.Paths.PasswordFile})
	}
	return out
}

// IdentityPasswordFile is where the password file of WSS identity id lives.
func (s Stack) IdentityPasswordFile(id string) string {
	return path.Join(s.Paths.PasswordDir, id)
}

// identityRE is the CA's naming policy (CRT-07): a CN is used verbatim as
// the ACL's %u, so '/', '+' and '#' must never appear in one.
var identityRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// serverNameRE is a DNS name (letters, digits, hyphens, dots).
var serverNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

// userRE is a portable user name (POSIX portable filename characters, not
// starting with '-'): safe on a mosquitto/nginx directive line.
var userRE = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}$`)

// Validate reports every problem with the stack at once, each prefixed with
// the field name and saying what would be accepted.
func (s Stack) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if !serverNameRE.MatchString(s.ServerName) {
		add("ServerName: %q is not a DNS name (e.g. \"mqtt.example.com\")", s.ServerName)
	}
	for i, a := range s.ServerAliases {
		if !serverNameRE.MatchString(a) {
			add("ServerAliases[%d]: %q is not a DNS name or IPv4 address", i, a)
		}
	}
	if ip := net.ParseIP(s.BindAddress); ip == nil || ip.To4() == nil {
		add("BindAddress: %q is not an IPv4 address (\"0.0.0.0\" on a VPS, \"127.0.0.1\" locally)", s.BindAddress)
	} else if s.Local && !ip.IsLoopback() {
		add("BindAddress: %q: the local stack binds loopback only (use \"127.0.0.1\")", s.BindAddress)
	}
	if s.IPv6 && s.BindAddress != "0.0.0.0" {
		add("IPv6: only meaningful with BindAddress \"0.0.0.0\"")
	}
	ports := []struct {
		name     string
		v        int
		optional bool
	}{
		{"MQTTSPort", s.MQTTSPort, false},
		{"WSPort", s.WSPort, false},
		{"OpsPort", s.OpsPort, true},
		{"HTTPSPort", s.HTTPSPort, false},
		{"HTTPPort", s.HTTPPort, false},
	}
	if s.LegacyTLS != nil {
		ports = append(ports, struct {
			name     string
			v        int
			optional bool
		}{"LegacyTLS.Port", s.LegacyTLS.Port, false})
		errs = append(errs, s.LegacyTLS.validate()...)
	}
	seen := map[int]string{}
	for _, p := range ports {
		if p.optional && p.v == 0 {
			continue
		}
		if p.v < 1 || p.v > 65535 {
			add("%s: %d is not a TCP port (1-65535)", p.name, p.v)
			continue
		}
		if other, dup := seen[p.v]; dup {
			add("%s: port %d is already used by %s; give each listener its own port", p.name, p.v, other)
		}
		seen[p.v] = p.name
	}

	if n := len(s.WSListeners()); n > 1 && s.WSPort >= 1 && s.WSPort+n-1 > 65535 {
		add("WSPort: %d + %d WebSocket listeners (WSSIdentities, DeviceWSS) run past port 65535; pick a lower WSPort", s.WSPort, n)
	}
	for _, l := range s.WSListeners() {
		if l.Port == s.WSPort || l.Port > 65535 {
			continue
		}
		if other, dup := seen[l.Port]; dup {
			add("WSPort: the WebSocket listener of %s would take port %d, already used by %s; move WSPort (it needs %d consecutive ports)", wsName(l), l.Port, other, len(s.WSListeners()))
		}
	}
	wss := map[string]bool{}
	for i, id := range s.WSSIdentities {
		if !identityRE.MatchString(id) {
			add("WSSIdentities[%d]: %q is not a valid identity (letters, digits, '-', '_'; 1-64 chars)", i, id)
		}
		if wss[id] {
			add("WSSIdentities[%d]: %q appears twice; one listener per identity", i, id)
		}
		wss[id] = true
	}

	errs = append(errs, s.Paths.validate(s)...)

	if len(s.Observers) == 0 {
		add("Observers: at least one read-only identity is needed (e.g. certs.DefaultObservers())")
	}
	if len(s.Backends) == 0 {
		add("Backends: at least one backend identity is needed (e.g. certs.DefaultBackends())")
	}
	names := map[string]string{}
	for _, g := range []struct {
		field string
		list  []string
	}{{"Observers", s.Observers}, {"Backends", s.Backends}} {
		field := g.field
		for i, n := range g.list {
			if !identityRE.MatchString(n) {
				add("%s[%d]: %q is not a valid identity (letters, digits, '-', '_'; 1-64 chars)", field, i, n)
			}
			if prev, dup := names[n]; dup && prev != field {
				add("%s[%d]: %q is also in %s; an identity is either an observer or a backend", field, i, n, prev)
			}
			names[n] = field
		}
	}

	l := s.Limits
	if l.MaxPacketSize < 0 || (l.MaxPacketSize > 0 && l.MaxPacketSize < 20) {
		add("Limits.MaxPacketSize: %d is too small (>= 20 bytes; e.g. 16384)", l.MaxPacketSize)
	}
	if l.MessageSizeLimit < 0 {
		add("Limits.MessageSizeLimit: %d must be >= 0 (0 = not set)", l.MessageSizeLimit)
	}
	if l.MaxInflightMessages < 1 || l.MaxInflightMessages > 65535 {
		add("Limits.MaxInflightMessages: %d must be 1-65535 (e.g. 20)", l.MaxInflightMessages)
	}
	if l.MaxQueuedMessages < 1 {
		add("Limits.MaxQueuedMessages: %d must be >= 1 (e.g. 1000)", l.MaxQueuedMessages)
	}
	if l.MaxQueuedBytes < 0 {
		add("Limits.MaxQueuedBytes: %d must be >= 0 (0 = not set)", l.MaxQueuedBytes)
	}
	if l.MaxConnections == 0 || l.MaxConnections < -1 {
		add("Limits.MaxConnections: %d must be -1 (unlimited) or >= 1", l.MaxConnections)
	}
	if l.MaxWSConnections == 0 || l.MaxWSConnections < -1 {
		add("Limits.MaxWSConnections: %d must be -1 (unlimited) or >= 1", l.MaxWSConnections)
	}
	if l.MaxKeepalive < 10 || l.MaxKeepalive > 65535 {
		add("Limits.MaxKeepalive: %d must be 10-65535 seconds (e.g. 120)", l.MaxKeepalive)
	}
	if l.NoFile < 1024 {
		add("Limits.NoFile: %d is too small for a broker (>= 1024; e.g. 65536)", l.NoFile)
	}
	if l.NginxWSBurst < 0 {
		add("Limits.NginxWSBurst: %d must be >= 0 (0 = default)", l.NginxWSBurst)
	}
	if l.NginxConnsPerAddr < 0 {
		add("Limits.NginxConnsPerAddr: %d must be >= 0 (0 = default)", l.NginxConnsPerAddr)
	}
	if l.NginxWorkerConnections < 64 {
		add("Limits.NginxWorkerConnections: %d is too small (>= 64; e.g. 8192)", l.NginxWorkerConnections)
	}

	if s.PublicDomain {
		if s.Local {
			add("PublicDomain: the local stack cannot obtain an ACME certificate; leave it false")
		}
		if s.ACMEEmail == "" || !strings.Contains(s.ACMEEmail, "@") {
			add("ACMEEmail: %q: an e-mail address is required with PublicDomain (Let's Encrypt expiry notices)", s.ACMEEmail)
		}
		if s.HTTPPort != 80 {
			add("HTTPPort: %d: ACME http-01 needs port 80 with PublicDomain", s.HTTPPort)
		}
	}
	if s.AdminCIDR != "" {
		if _, err := netip.ParsePrefix(s.AdminCIDR); err != nil {
			add("AdminCIDR: %q is not a CIDR (e.g. \"203.0.113.0/24\")", s.AdminCIDR)
		}
	}
	for i, c := range s.StatusAllow {
		if _, err := netip.ParsePrefix(c); err != nil {
			add("StatusAllow[%d]: %q is not a CIDR (e.g. \"127.0.0.1/32\")", i, c)
		}
	}
	if s.RunAsUser != "" && !userRE.MatchString(s.RunAsUser) {
		add("RunAsUser: %q is not a user name", s.RunAsUser)
	}
	return errors.Join(errs...)
}

func wsName(l WSListener) string {
	if l.Identity == "" {
		return "the shared device listener (DeviceWSS)"
	}
	return l.Identity
}

func (p Paths) validate(s Stack) []error {
	var errs []error
	req := []struct {
		name, v string
	}{
		{"MosquittoConf", p.MosquittoConf}, {"ACLFile", p.ACLFile}, {"PasswordFile", p.PasswordFile}, {"PasswordDir", p.PasswordDir},
		{"MosquittoPID", p.MosquittoPID}, {"MosquittoLog", p.MosquittoLog}, {"PersistenceDir", p.PersistenceDir},
		{"CAFile", p.CAFile}, {"CRLFile", p.CRLFile}, {"ServerCert", p.ServerCert}, {"ServerKey", p.ServerKey},
		{"NginxConf", p.NginxConf}, {"NginxCert", p.NginxCert}, {"NginxKey", p.NginxKey}, {"NginxPID", p.NginxPID},
		{"NginxErrorLog", p.NginxErrorLog}, {"NginxAccessLog", p.NginxAccessLog}, {"NginxTempDir", p.NginxTempDir},
		{"WebRoot", p.WebRoot}, {"ACMERoot", p.ACMERoot},
	}
	if !s.Local {
		req = append(req, struct{ name, v string }{"SystemdDropins", p.SystemdDropins},
			struct{ name, v string }{"NftablesConf", p.NftablesConf},
			struct{ name, v string }{"ProvisionScript", p.ProvisionScript})
		if s.PublicDomain {
			req = append(req, struct{ name, v string }{"DeployHook", p.DeployHook})
		}
	}
	for _, r := range req {
		switch {
		case r.v == "":
			//lint:ignore ST1005 a Validate message starts with the Go field path
			errs = append(errs, fmt.Errorf("Paths.%s: required (an absolute path)", r.name))
		case !path.IsAbs(r.v):
			//lint:ignore ST1005 a Validate message starts with the Go field path
			errs = append(errs, fmt.Errorf("Paths.%s: %q must be absolute", r.name, r.v))
		case strings.ContainsAny(r.v, " \t\n\"'#;{}$\\"):
			// mosquitto keeps the rest of a line verbatim (spaces, '#') and
			// nginx treats ';{}' and '$' specially: refuse rather than quote.
			//lint:ignore ST1005 a Validate message starts with the Go field path
			errs = append(errs, fmt.Errorf("Paths.%s: %q contains a space or one of \"'#;{}$\\ which the config files cannot carry; use a plainer directory", r.name, r.v))
		}
	}
	if p.PersistenceDir != "" && !strings.HasSuffix(p.PersistenceDir, "/") {
		errs = append(errs, fmt.Errorf("Paths.PersistenceDir: %q must end with '/' (mosquitto appends the file name verbatim)", p.PersistenceDir))
	}
	return errs
}
