package security

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/host"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/infra/local"
	"github.com/mqttstack/mqttstack/internal/atomicfile"
	"github.com/mqttstack/mqttstack/internal/stacktest"
)

// dropWebsocketSocketDomain removes `socket_domain ipv4` from the
// websockets listener block only (F2): the other listeners keep theirs.
func dropWebsocketSocketDomain(files []hostconfig.File) []hostconfig.File {
	hit := false
	for i, f := range files {
		if !strings.HasSuffix(f.Path, "mosquitto.conf") {
			continue
		}
		lines := strings.Split(string(f.Content), "\n")
		// Split into listener blocks, find the websockets one.
		start := -1
		var blocks [][2]int
		for j, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), "listener ") {
				if start >= 0 {
					blocks = append(blocks, [2]int{start, j})
				}
				start = j
			}
		}
		if start >= 0 {
			blocks = append(blocks, [2]int{start, len(lines)})
		}
		drop := map[int]bool{}
		for _, b := range blocks {
			ws := false
			for j := b[0]; j < b[1]; j++ {
				ws = ws || strings.TrimSpace(lines[j]) == "protocol websockets"
			}
			if !ws {
				continue
			}
			for j := b[0]; j < b[1]; j++ {
				if strings.TrimSpace(lines[j]) == "socket_domain ipv4" {
					drop[j], hit = true, true
				}
			}
		}
		var out []string
		for j, l := range lines {
			if !drop[j] {
				out = append(out, l)
			}
		}
		files[i].Content = []byte(strings.Join(out, "\n"))
	}
	if !hit {
		panic("dropWebsocketSocketDomain: no socket_domain in a websockets listener block")
	}
	return files
}

// hiddenDefaultListener puts listener-scoped options before the first
// listener (F1). bind_address and port keep the implicit listener on a free
// loopback port (not 0.0.0.0:1883, which other engineers' stacks may hold);
// allow_zero_length_clientid is the trigger of F1 (docs/SECURITY.md).
func hiddenDefaultListener(t *testing.T) func([]hostconfig.File) []hostconfig.File {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return stacktest.ReplaceLine("mosquitto.conf", "per_listener_settings true",
		fmt.Sprintf("per_listener_settings true\nbind_address 127.0.0.1\nport %d\nallow_zero_length_clientid true", port))
}

// configMutation is one weakening of the rendered configuration and the
// checks that must FAIL on it.
type configMutation struct {
	name   string
	mutate func(t *testing.T) func([]hostconfig.File) []hostconfig.File
	fails  []string // must FAIL
	also   []string // run and logged (may fail too)
	// unready: the mutation breaks stacktest's readiness probe, so
	// mosquitto is restarted on the mutated config by hand.
	unready bool
}

// TestMutations removes one hardening at a time from the rendered config,
// starts a real stack with it, and requires the matching check to FAIL
// (not be inconclusive): each check is shown to notice the weakness it
// guards against.
func TestMutations(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a stack per mutation")
	}
	for _, tc := range configMutations() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var opts Options
			if tc.unready {
				opts = startStackUnready(t, tc.mutate(t))
			} else {
				opts = startStack(t, tc.mutate(t))
			}
			checks, err := Select(Catalog(), 1, append(append([]string{}, tc.fails...), tc.also...))
			if err != nil {
				t.Fatal(err)
			}
			rs := runSuite(t, opts, checks)
			for _, r := range rs {
				t.Logf("%s %s: %s", r.Check.ID, r.Outcome.Status, r.Outcome.Evidence)
				for _, id := range tc.fails {
					if r.Check.ID == id && r.Outcome.Status != Fail {
						t.Errorf("with %s removed, %s is %s, want FAIL: %s", tc.name, id, r.Outcome.Status, r.Outcome.Evidence)
					}
				}
			}
		})
	}
}

// unmutated are the checks no configuration change can defeat, or that
// are not mutation-proven yet, each with the reason. TestEveryCheckMutated
// keeps the list honest: a new check needs a mutation or an entry here.
var unmutated = map[string]string{
	"TLS-03":  "the server certificate, not a directive",
	"CRT-02":  "its foreign CA is made in memory at run time, so no rendered cafile can trust it; a cafile holding another CA is OPS-02's lint",
	"CRT-03":  "OpenSSL's validity check is built in; no directive turns it off",
	"CRT-04":  "OpenSSL's validity check is built in; no directive turns it off",
	"CRT-06":  "OpenSSL's purpose check is built in; no directive turns it off",
	"CRT-07":  "the CA's naming policy is code (certs.ValidateID), not configuration",
	"CRT-08":  "not mutated yet: without use_identity_as_username certificate-only clients lose their username, so the stack fails its readiness probe (the unready path)",
	"AUTH-02": "password checking is built in; without a password_file nobody logs in",
	"ACL-08":  "the CVE-2017-7650 guard is compiled in",
	"SES-03":  "tier 2; its weakening (use_username_as_clientid) is mutated for SES-01/02",
	"PRO-01":  "the broker's topic validation is built in",
	"PRO-02":  "the broker's filter and Will validation is built in",
	"PRO-03":  "the pre-CONNECT check is the deb12u1 patch; its length half is max_packet_size, mutated for PRO-04",
	"PRO-05":  "built in on 2.0.11",
	"PRO-06":  "the CVE fixes are in the binary, not the configuration",
	"PRO-07":  "the CVE fix is in the binary, not the configuration",
	"PRO-08":  "the CVE fix is in the binary, not the configuration",
	"DOS-01":  "judged against the broker's own configured limits (read through the host), so changing them moves the bound; their values are the lint's",
	"DOS-02":  "deployed targets only (a firewall rule the local stack lacks)",
	"DOS-03":  "records a gap 2.0.11 cannot close (F5); 110 s",
	"DOS-05":  "judged against the broker's own max_queued_messages and max_inflight_messages (read through the host), so changing them moves the bound",
	"NET-03":  "a stray listener is NET-01's mutation (F1)",
	"OPS-01":  "the installed package version, not the configuration",
}

// TestEveryCheckMutated: every check of the catalog is shown to FAIL on
// some weakened configuration, or says in unmutated why it cannot be.
func TestEveryCheckMutated(t *testing.T) {
	proven := map[string]bool{}
	for _, m := range configMutations() {
		for _, id := range m.fails {
			proven[id] = true
		}
	}
	for _, m := range wssMutations() {
		proven[m.fails] = true
	}
	for _, m := range hostMutations() {
		proven[m.fails] = true
	}
	for _, c := range Catalog() {
		switch why, listed := unmutated[c.ID]; {
		case proven[c.ID] && listed:
			t.Errorf("%s is mutation-proven now: drop it from unmutated (%q)", c.ID, why)
		case !proven[c.ID] && !listed:
			t.Errorf("%s has no mutation that makes it FAIL: add one to configMutations (or say why not in unmutated)", c.ID)
		}
	}
}

// configMutations are the weakenings TestMutations applies, one stack each.
func configMutations() []configMutation {
	return []configMutation{
		{"use_username_as_clientid", m(stacktest.DropLines("mosquitto.conf", "use_username_as_clientid")), []string{"SES-01", "SES-02"}, []string{"OPS-02"}, false},
		{"tls_version", m(stacktest.DropLines("mosquitto.conf", "tls_version")), []string{"TLS-01"}, nil, false},
		{"ciphers", m(stacktest.DropLines("mosquitto.conf", "ciphers ")), []string{"TLS-02"}, nil, false},
		{"acl %u->%c", m(stacktest.ReplaceLine("/acl", "pattern readwrite devices/%u/#", "pattern readwrite devices/%c/#")), []string{"ACL-09", "OPS-02"}, nil, false},
		// With use_username_as_clientid a username-less CONNECT is refused
		// anyway: AUTH-01 catches the lone mutation by reading the config...
		{"allow_anonymous", m(stacktest.ReplaceLine("mosquitto.conf", "allow_anonymous false", "allow_anonymous true")), []string{"AUTH-01", "OPS-02"}, nil, false},
		// ...and the anonymous CONNECT itself once both are gone.
		{"allow_anonymous + use_username_as_clientid", func(*testing.T) func([]hostconfig.File) []hostconfig.File {
			a := stacktest.ReplaceLine("mosquitto.conf", "allow_anonymous false", "allow_anonymous true")
			b := stacktest.DropLines("mosquitto.conf", "use_username_as_clientid")
			return func(f []hostconfig.File) []hostconfig.File { return b(a(f)) }
		}, []string{"AUTH-01"}, nil, false},
		{"F1 option before first listener", hiddenDefaultListener, []string{"NET-01", "OPS-02"}, nil, false},
		{"F2 websocket socket_domain", m(dropWebsocketSocketDomain), []string{"NET-02", "OPS-02"}, nil, false},
		{"require_certificate", m(stacktest.DropLines("mosquitto.conf", "require_certificate")), []string{"CRT-01"}, nil, true},
		{"nginx server_tokens", m(stacktest.DropLines("nginx.conf", "server_tokens")), []string{"WEB-04"}, nil, false},
		// tier 2, proven too: without check_retain_source the retained value
		// of a de-authorised publisher is replayed (CVE-2018-12546).
		{"check_retain_source", m(stacktest.ReplaceLine("mosquitto.conf", "check_retain_source true", "check_retain_source false")), []string{"ACL-10"}, nil, false},
		// More hardenings, so that every check a config change can defeat
		// is shown to fail at least once.
		{"nginx host-reflecting redirect", m(regexMutation("nginx.conf", `return 301 https://[^$ ]+\$request_uri;`, `return 301 https://$$host$$request_uri;`)), []string{"WEB-01"}, nil, false},
		{"nginx ssl_reject_handshake", m(catchAllServesCertificate), []string{"WEB-03"}, nil, false},
		{"nginx /status allow all", m(stacktest.ReplaceLine("nginx.conf", "deny all;", "allow all;")), []string{"WEB-06"}, nil, false},
		{"max_packet_size", m(stacktest.DropLines("mosquitto.conf", "max_packet_size")), []string{"PRO-04"}, nil, false},
		{"max_keepalive", m(stacktest.DropLines("mosquitto.conf", "max_keepalive")), []string{"DOS-04"}, nil, false},
		{"crlfile", m(stacktest.DropLines("mosquitto.conf", "crlfile")), []string{"CRT-05", "CRT-09", "CRT-10"}, nil, false},
		// least privilege (ACL-11…14): each class loses one limit
		{"observer writes through the device pattern", m(stacktest.DropLines("/acl", "topic deny")), []string{"ACL-11", "ACL-14"}, nil, false},
		{"observer readwrite devices", m(regexMutation("/acl", `user observer-8\ntopic read devices/#`, "user observer-8\ntopic readwrite devices/#")), []string{"ACL-11", "ACL-14"}, nil, false},
		{"backend readwrite all", m(regexMutation("/acl", `user backend-8\n`, "user backend-8\ntopic readwrite #\n")), []string{"ACL-12", "ACL-14"}, nil, false},
		{"backend read SYS", m(regexMutation("/acl", `user backend-8\n`, "user backend-8\ntopic read $$SYS/#\n")), []string{"ACL-13", "ACL-14"}, nil, false},
		{"an identity no check covers", m(regexMutation("/acl", `\z`, "\nuser ops-tool\ntopic readwrite #\n")), []string{"ACL-14"}, nil, false},
		// revocation and TLS on nginx (WEB-08/09, CRT-09)
		{"nginx ssl_crl", m(stacktest.DropLines("nginx.conf", "ssl_crl")), []string{"WEB-08", "CRT-09"}, nil, false},
		{"nginx loads a stale CRL", m(staleNginxCRL), []string{"CRT-09"}, []string{"WEB-08"}, false},
		// each directive of nginx's TLS block, weakened (WEB-03, WEB-05, WEB-09)
		{"nginx CBC ciphers", m(regexMutation("nginx.conf", `ssl_ciphers [^;]+;`, "ssl_ciphers HIGH;")), []string{"WEB-03"}, nil, false},
		{"nginx TLS 1.0 and 1.1", m(regexMutation("nginx.conf", `ssl_protocols [^;]+;\n\s*ssl_ciphers [^;]+;`, "ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;\n  ssl_ciphers DEFAULT:@SECLEVEL=0;")), []string{"WEB-03"}, nil, false},
		// optional_no_ca alone still fails a foreign chain on the missing
		// CRL of its issuer (ssl_crl), and the 403 on $ssl_client_verify
		// backs both up: all three must go before a foreign certificate
		// with a WSS identity's CN is routed to that identity's listener
		{"nginx client verification without CA", func(*testing.T) func([]hostconfig.File) []hostconfig.File {
			a := stacktest.ReplaceLine("nginx.conf", "ssl_verify_client optional;", "ssl_verify_client optional_no_ca;")
			b := stacktest.DropLines("nginx.conf", "if ($ssl_client_verify != SUCCESS)")
			c := stacktest.DropLines("nginx.conf", "ssl_crl")
			return func(f []hostconfig.File) []hostconfig.File { return c(b(a(f))) }
		}, []string{"WEB-05", "WEB-08"}, nil, false},
		{"nginx session cache", m(stacktest.ReplaceLine("nginx.conf", "ssl_session_cache off;", "ssl_session_cache shared:TLS:10m;")), []string{"WEB-09", "WEB-10"}, nil, false},
		{"nginx session tickets", m(stacktest.ReplaceLine("nginx.conf", "ssl_session_tickets off;", "ssl_session_tickets on;")), []string{"WEB-09"}, nil, false},
		{"allow_zero_length_clientid", m(stacktest.ReplaceLine("mosquitto.conf", "allow_zero_length_clientid false", "allow_zero_length_clientid true")), []string{"AUTH-03"}, nil, false},
		{"acl everyone readwrite all devices", m(stacktest.ReplaceLine("/acl", "pattern readwrite devices/%u/#", "pattern readwrite devices/#")),
			[]string{"ACL-01", "ACL-02", "ACL-03", "ACL-04", "ACL-06", "ACL-07", "ACL-09"}, nil, false},
		{"acl pattern read SYS", m(stacktest.ReplaceLine("/acl", "pattern readwrite devices/%u/#", "pattern readwrite devices/%u/#\npattern read $SYS/#")), []string{"ACL-05"}, nil, false},
		{"nginx HSTS", m(stacktest.DropLines("nginx.conf", "add_header Strict-Transport-Security")), []string{"WEB-02"}, nil, false},
		{"nginx limit_req on /mqtt", m(stacktest.DropLines("nginx.conf", "limit_req zone=wsreq")), []string{"AUTH-04"}, nil, false},
	}
}

// TestMutationsWSS proves that WEB-05 notices every way the certificate ↔
// username binding on the wss path can be lost, and WEB-07 the subprotocol
// check: the opt-in DeviceWSS mode (shared device listener, evidence must
// name it), a CN mapped to another identity's listener, unknown CNs
// routed to an identity's listener instead of refused, and nginx
// proxying upgrades without the mqtt subprotocol.
func TestMutationsWSS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four stacks")
	}
	for _, tc := range wssMutations() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := append([]stacktest.Option{stacktest.WithOpsPort(), stacktest.WithPrivatePKI()}, tc.opts(t)...)
			s := stacktest.Start(t, opts...)
			checks, err := Select(Catalog(), 1, []string{tc.fails, "OPS-02"})
			if err != nil {
				t.Fatal(err)
			}
			rs := runSuite(t, Options{Target: s.Target, Host: s.Host()}, checks)
			if len(rs) != 2 {
				t.Fatalf("%d results for %s and OPS-02", len(rs), tc.fails)
			}
			for _, r := range rs {
				t.Logf("%s %s: %s", r.Check.ID, r.Outcome.Status, r.Outcome.Evidence)
				switch {
				case r.Check.ID == tc.fails:
					if r.Outcome.Status != Fail || !strings.Contains(r.Outcome.Evidence, tc.evidence) {
						t.Errorf("with %s, %s is %s, want FAIL with evidence naming %q: %s", tc.name, tc.fails, r.Outcome.Status, tc.evidence, r.Outcome.Evidence)
					}
				case r.Outcome.Status != Pass:
					t.Errorf("with %s, OPS-02 is %s, want PASS: %s", tc.name, r.Outcome.Status, r.Outcome.Evidence)
				case strings.Contains(r.Outcome.Evidence, "warning") != strings.Contains(tc.name, "DeviceWSS"):
					t.Errorf("with %s, OPS-02 warning about a shared websockets password file: %s", tc.name, r.Outcome.Evidence)
				}
			}
		})
	}
}

// wssMutation is one way to lose the certificate ↔ username binding on the
// wss path (or the subprotocol check), and the check that must FAIL naming
// it.
type wssMutation struct {
	name     string
	opts     func(t *testing.T) []stacktest.Option
	fails    string
	evidence string
}

func wssMutations() []wssMutation {
	return []wssMutation{
		// OPS-02 passes there but warns about the shared password file
		{"DeviceWSS shared device listener", func(*testing.T) []stacktest.Option {
			return []stacktest.Option{stacktest.WithDeviceWSS()}
		}, "WEB-05", "DeviceWSS"},
		{"CN mapped to another identity's listener", func(*testing.T) []stacktest.Option {
			// observer-8's certificate lands on observer-7's listener
			return []stacktest.Option{stacktest.WithMutation(remapCN("observer-8", "observer-7"))}
		}, "WEB-05", "does not bind the certificate to the MQTT username (F8)"},
		{"unknown CNs routed to a listener", func(*testing.T) []stacktest.Option {
			// the `= ""` guard has nothing to refuse when the default is
			// an identity's listener: a device certificate reaches it
			return []stacktest.Option{stacktest.WithMutation(defaultBackend("observer-8"))}
		}, "WEB-05", "does not bind the certificate to the MQTT username (F8)"},
		{"nginx proxies a foreign subprotocol", func(*testing.T) []stacktest.Option {
			return []stacktest.Option{stacktest.WithMutation(stacktest.DropLines("nginx.conf", "if ($ws_mqtt = 0)"))}
		}, "WEB-07", "proxied 5xx"},
	}
}

// cnMapLine matches one entry of nginx's CN → listener map.
func cnMapLine(id string) *regexp.Regexp {
	return regexp.MustCompile(`"~\(\^\|,\)CN=` + regexp.QuoteMeta(id) + `\(,\|\$\)" (127\.0\.0\.1:\d+);`)
}

// remapCN points id's map entry at other's listener.
func remapCN(id, other string) func([]hostconfig.File) []hostconfig.File {
	return func(files []hostconfig.File) []hostconfig.File {
		for i, f := range files {
			if !strings.HasSuffix(f.Path, "nginx.conf") {
				continue
			}
			to := cnMapLine(other).FindSubmatch(f.Content)
			from := cnMapLine(id).FindSubmatchIndex(f.Content)
			if to == nil || from == nil {
				panic("remapCN: no map entry for " + id + " or " + other)
			}
			c := append(append(append([]byte{}, f.Content[:from[2]]...), to[1]...), f.Content[from[3]:]...)
			files[i].Content = c
			return files
		}
		panic("remapCN: no nginx.conf")
	}
}

// defaultBackend makes the CN map's default id's listener.
func defaultBackend(id string) func([]hostconfig.File) []hostconfig.File {
	return func(files []hostconfig.File) []hostconfig.File {
		for i, f := range files {
			if !strings.HasSuffix(f.Path, "nginx.conf") {
				continue
			}
			to := cnMapLine(id).FindSubmatch(f.Content)
			if to == nil || !strings.Contains(string(f.Content), `default "";`) {
				panic("defaultBackend: no map entry for " + id + " or no empty default")
			}
			files[i].Content = []byte(strings.Replace(string(f.Content), `default "";`, "default "+string(to[1])+";", 1))
			return files
		}
		panic("defaultBackend: no nginx.conf")
	}
}

func m(f func([]hostconfig.File) []hostconfig.File) func(*testing.T) func([]hostconfig.File) []hostconfig.File {
	return func(*testing.T) func([]hostconfig.File) []hostconfig.File { return f }
}

// regexMutation replaces every match of expr in the file ending with
// suffix; it panics when nothing matches (a renamed directive must not turn
// a negative test into a positive one).
func regexMutation(suffix, expr, repl string) func([]hostconfig.File) []hostconfig.File {
	re := regexp.MustCompile(expr)
	return func(files []hostconfig.File) []hostconfig.File {
		hit := false
		for i, f := range files {
			if strings.HasSuffix(f.Path, suffix) && re.Match(f.Content) {
				files[i].Content = re.ReplaceAll(f.Content, []byte(repl))
				hit = true
			}
		}
		if !hit {
			panic("regexMutation: no match for " + expr + " in " + suffix)
		}
		return files
	}
}

// staleNginxCRL points nginx's ssl_crl at a copy of the CRL taken when the
// stack is rendered, before the suite's CI sub-CA revokes anything: the
// copy the daemon loads lags the PKI, as a CRL that was never redeployed
// does.
func staleNginxCRL(files []hostconfig.File) []hostconfig.File {
	re := regexp.MustCompile(`ssl_crl ([^;]+);`)
	for i, f := range files {
		if !strings.HasSuffix(f.Path, "nginx.conf") {
			continue
		}
		m := re.FindSubmatch(f.Content)
		if m == nil {
			panic("staleNginxCRL: no ssl_crl in nginx.conf")
		}
		b, err := os.ReadFile(string(m[1]))
		if err != nil {
			panic("staleNginxCRL: " + err.Error())
		}
		stale := filepath.Join(filepath.Dir(f.Path), "stale.crl")
		files[i].Content = re.ReplaceAll(f.Content, []byte("ssl_crl "+stale+";"))
		return append(files, hostconfig.File{Path: stale, Mode: 0o644, Content: b})
	}
	panic("staleNginxCRL: no nginx.conf")
}

// catchAllServesCertificate replaces `ssl_reject_handshake on;` in the
// catch-all server with the real certificate (nginx will not start a TLS
// server with neither): unknown SNI then gets a handshake.
func catchAllServesCertificate(files []hostconfig.File) []hostconfig.File {
	for i, f := range files {
		if !strings.HasSuffix(f.Path, "nginx.conf") {
			continue
		}
		var cert, key string
		for _, l := range strings.Split(string(f.Content), "\n") {
			t := strings.TrimSpace(l)
			if strings.HasPrefix(t, "ssl_certificate ") && cert == "" {
				cert = t
			}
			if strings.HasPrefix(t, "ssl_certificate_key ") && key == "" {
				key = t
			}
		}
		if cert == "" || key == "" || !strings.Contains(string(f.Content), "ssl_reject_handshake on;") {
			panic("catchAllServesCertificate: nginx.conf lacks ssl_certificate/_key or ssl_reject_handshake")
		}
		files[i].Content = []byte(strings.Replace(string(f.Content), "ssl_reject_handshake on;", cert+" "+key, 1))
		return files
	}
	panic("catchAllServesCertificate: no nginx.conf")
}

// hostMutation weakens what the stack's host does rather than the rendered
// configuration: wrap replaces the suite's Host of a started stack.
type hostMutation struct {
	name  string
	wrap  func(t *testing.T, o Options) Options
	fails string
}

func hostMutations() []hostMutation {
	return []hostMutation{
		{"a revoked identity's line back in the password file", revokedPasswordBack, "AUTH-05"},
	}
}

// TestMutationsHost requires each hostMutation's check to FAIL.
func TestMutationsHost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a stack per mutation")
	}
	for _, tc := range hostMutations() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := tc.wrap(t, startStack(t))
			checks, err := Select(Catalog(), 1, []string{tc.fails})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range runSuite(t, opts, checks) {
				t.Logf("%s %s: %s", r.Check.ID, r.Outcome.Status, r.Outcome.Evidence)
				if r.Outcome.Status != Fail || !strings.Contains(r.Outcome.Evidence, "REVOKED") {
					t.Errorf("with %s, %s is %s, want FAIL naming the revoked identity: %s", tc.name, tc.fails, r.Outcome.Status, r.Outcome.Evidence)
				}
			}
		})
	}
}

// linePutBack is the local stack's Host whose password refresh writes the
// files as the stack does and then puts revokedPwID's line back into the
// shared password file (what a renderer that ignores revocation writes)
// and reloads mosquitto.
type linePutBack struct {
	*local.Host
	passwd, pkiDir string
}

func (h linePutBack) RefreshPasswords(ctx context.Context) error {
	if err := h.Host.RefreshPasswords(ctx); err != nil {
		return err
	}
	pw, err := certs.ClientPassword(h.pkiDir, revokedPwID)
	if err != nil {
		return err
	}
	hash, err := certs.MosquittoPasswordHash(pw)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(h.passwd)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(h.passwd, append(b, revokedPwID+":"+hash+"\n"...), 0o600); err != nil {
		return err
	}
	return h.Reload(ctx, host.Mosquitto)
}

func revokedPasswordBack(t *testing.T, o Options) Options {
	lh, ok := o.Host.(*local.Host)
	if !ok {
		t.Fatalf("the stack's host is a %T, not infra/local's", o.Host)
	}
	l := o.Target.Local
	o.Host = linePutBack{Host: lh, passwd: hostconfig.LocalStack(l.StateDir, o.Target.PKIDir, "").Paths.PasswordFile, pkiDir: o.Target.PKIDir}
	return o
}
