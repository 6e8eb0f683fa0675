package security

import (
	"fmt"
	"io"
	"regexp"
	"strings"
)

// The catalog document (docs/SECURITY.md) is written from Catalog() and
// the tables below by WriteCatalog; a test fails when the file in the
// repository differs (regenerate: go test ./security -run TestCatalogDoc
// -update). `mqttstack security --list` prints the same Catalog().

// Finding is one weakness of Debian's Mosquitto 2.0.11 (or of the stack
// around it) that checks guard against.
type Finding struct {
	ID, What, Evidence string
}

// Findings are F1…F10: observed on Debian bookworm's mosquitto
// 2.0.11-1.2+deb12u2 with OpenSSL 3.0 and libwebsockets 4.1.6, and nginx
// 1.22.1, and read in the Mosquitto source at tag v2.0.11.
var Findings = []Finding{
	{"F1", "A listener-scoped option (cafile, certfile, password_file with per_listener_settings, allow_zero_length_clientid, …) written before the first `listener` line, in the main file or an included one, opens an extra listener on 0.0.0.0:1883 and [::]:1883 that accepts anonymous clients.",
		"an anonymous CONNECT on the stray port got CONNACK 0 and could publish; fixed upstream in 2.0.12 (#2283), not listed in Debian's changelog"},
	{"F2", "A websockets listener ignores its bind address: `listener 9001 127.0.0.1` listens on every interface, IPv4 and IPv6. `socket_domain ipv4` makes it bind 127.0.0.1 only.",
		"observed with the bundled libwebsockets 4.1.6; bind_interface does not help"},
	{"F3", "`max_connections` is not a cap you can rely on: the connection counter drifts (closed connections are subtracted twice), so after some connect/disconnect churn more clients get in than configured.",
		"10 of 12 admitted on a fresh broker, 25 of 25 after 30 cycles; fixed upstream in 2.0.12"},
	{"F4", "`max_keepalive` applies to MQTT 5 only: a 3.1.1 client with keepalive 0 is never timed out (the CVE-2020-13849 mitigation came in 2.0.12).",
		"a keepalive-0 3.1.1 session was still open after 175 s"},
	{"F5", "A connection that sends nothing is closed after about 96 s, but a CONNECT whose declared length is large, fed one byte every 20 s, stays open for ever: every read refreshes the activity time while more than 1000 bytes are outstanding.",
		"still open after 181 s; cannot be fixed by configuration"},
	{"F6", "With use_identity_as_username alone, a device that connects with another device's client id kicks it (and may fire its Will), and with clean session 0 resumes its session, whose queued messages are then filtered against the intruder's ACL and lost. use_username_as_clientid makes the client id the certificate's CN and prevents both.",
		"victim kicked on an identity-only listener, not on one with use_username_as_clientid"},
	{"F7", "The certificate CN is used verbatim as the ACL's %u: a CA-issued CN `devA/sub` may write inside `devices/devA/`. A CN with '+' or '#' gets every ACL check denied (the CVE-2017-7650 guard). The CA's naming policy is part of the ACL.",
		"CN devA/sub wrote devices/devA/sub/cmd; CN dev+# got 0x87 everywhere"},
	{"F8", "nginx's certificate check on the WebSocket path does not bind the certificate to the MQTT username: Mosquitto's websocket listeners support neither require_certificate nor use_identity_as_username, so with one shared password file a certificate of A plus the password of B logs in as B.",
		"accepted as B over wss; the stack gives each WSS identity its own listener and password file and routes by CN"},
	{"F9", "Without tls_version the listener still enables TLS 1.1 at the protocol level (fixed in 2.0.16; OpenSSL 3 then fails it with internal_error), and the default cipher list accepts CBC/SHA-1 suites.",
		"ECDHE-ECDSA-AES128-SHA negotiated on a listener without `ciphers`"},
	{"F10", "Revocation does not reach live sessions: a reload (SIGHUP) re-reads certificate, key and CRL for new handshakes only; a revoked client that is connected stays connected (Mosquitto's own test 08-ssl-hup-disconnect asserts exactly that).",
		"the stack ends them by a same-CN takeover after the reload (CRT-10), or a restart"},
	{"F11", "nginx's shared TLS session cache survives a reload, and a session resumed from it keeps the client verification of the handshake before: a revoked certificate that holds a session gets through /mqtt again after revoke + CRL + reload, until the session times out. (Mosquitto starts a new TLS context on reload, so its sessions die with it.)",
		"HTTP 101 on a resumed TLS 1.3 session after the revocation with `ssl_session_cache shared:TLS:10m`; the stack now renders `ssl_session_cache off`"},
	{"F12", "ACL patterns apply to every user, also those with their own `user` block: `pattern readwrite devices/%u/#` gave each observer a writable `devices/<observer>/#`, whose messages backends and dashboards read as a device's.",
		"observer-8's publish to devices/observer-8/telemetry got 0x00 and reached the watcher; the stack now renders `topic deny devices/<observer>/#` (a user's deny is checked before its grants and the patterns)"},
	{"F13", "Mosquitto 2.0.11 issues TLS 1.2 session tickets on 8883 and has no option to stop it: whoever obtains the ticket key (process memory) can decrypt recorded TLS 1.2 sessions. The key is renewed on every reload, so periodic reloads (the CRL timer) bound its life; TLS 1.3 clients are not affected the same way.",
		"a second TLS 1.2 handshake with the first one's ticket resumed; after a reload it did not"},
}

// CVE is one advisory the patch level or a check covers.
type CVE struct {
	ID, What, Fixed, Debian string
}

// CVEs are the Mosquitto advisories relevant to a 2.0.11 broker and how
// Debian bookworm's package stands (from its changelog and the upstream
// fixes).
var CVEs = []CVE{
	{"CVE-2017-7650", "'+'/'#' in a username or client id bypass pattern ACLs", "1.4.12", "fixed"},
	{"CVE-2018-12546", "a retained message is still served after its publisher lost write access", "1.5.6 (check_retain_source)", "fixed"},
	{"CVE-2018-12550", "an empty ACL file is treated permissively", "1.5.6", "fixed"},
	{"CVE-2018-12551", "a malformed password file is treated permissively", "1.5.6", "fixed"},
	{"CVE-2020-13849", "3.1.1 keepalive semantics allow idle connections for ever", "2.0.12 (max_keepalive for v3)", "NOT fixed (F4)"},
	{"CVE-2021-28166", "a v5 CONNACK sent to the broker dereferences NULL", "2.0.10", "fixed (base version)"},
	{"CVE-2021-34431", "a crafted v5 CONNECT leaks memory", "2.0.11", "fixed (base version)"},
	{"CVE-2021-34432", "a PUBLISH with a zero-length topic crashes the broker", "2.0.8", "not affected"},
	{"CVE-2021-41039", "a v5 CONNECT with many user properties burns CPU", "2.0.12", "fixed in 2.0.11-1.2 / deb12u1"},
	{"CVE-2023-0809", "a non-CONNECT first packet allocates by its declared length", "2.0.16", "fixed in deb12u1"},
	{"CVE-2023-3592", "a v5 Will with invalid property types leaks memory", "2.0.16", "fixed in deb12u1"},
	{"CVE-2023-28366", "duplicate QoS 2 message ids without PUBREL leak memory", "2.0.16", "fixed in deb12u1, completed in deb12u2"},
	{"CVE-2024-3935", "a bridge with remapped topics double-frees on a crafted PUBLISH", "2.0.19", "fixed in deb12u2 (bridges only)"},
	{"CVE-2024-8376", "mixed shared/normal subscription sequences leak or crash", "2.0.19", "fixed in deb12u2"},
	{"CVE-2024-10525", "libmosquitto: a SUBACK without reason codes reads out of bounds", "2.0.20", "fixed in deb12u2 (client library)"},
}

var families = []struct{ prefix, name string }{
	{"NET", "Network exposure"}, {"TLS", "Broker TLS on 8883"}, {"CRT", "Client certificates and revocation"},
	{"AUTH", "Password authentication"}, {"ACL", "Authorisation: isolation and least privilege"},
	{"SES", "Sessions and identities"}, {"PRO", "Protocol robustness"}, {"DOS", "Resource exhaustion"},
	{"WEB", "nginx: HTTPS, WebSockets, status page"}, {"OPS", "Operations"},
}

// guardedBy lists the checks whose Guards name id (a whole word).
func guardedBy(all []Check, id string) []string {
	re := regexp.MustCompile(`(^|[^A-Za-z0-9-])` + regexp.QuoteMeta(id) + `($|[^0-9])`)
	var out []string
	for _, c := range all {
		if re.MatchString(c.Guards) || (strings.HasPrefix(id, "CVE-") && re.MatchString(c.Title+" "+c.Attack)) {
			out = append(out, c.ID)
		}
	}
	return out
}

func cell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }

// WriteCatalog writes the catalog document (Markdown) for the checks all.
func WriteCatalog(w io.Writer, all []Check) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	t1, t2, hostSide := 0, 0, 0
	for _, c := range all {
		if c.Tier == 1 {
			t1++
		} else {
			t2++
		}
		if c.Host {
			hostSide++
		}
	}
	p("%s", docIntro)
	p("The catalog has **%d checks**: %d in tier 1 (every CI run, seconds each) and %d in tier 2 (staging or nightly: floods, reloads, minutes). %d read the stack's host.\n\n", len(all), t1, t2, hostSide)
	p("%s", docBehaviour)
	p("## 1. Findings on Debian's Mosquitto 2.0.11 and the stack around it\n\n")
	p("| id | finding | observed | guarded by |\n|---|---|---|---|\n")
	for _, f := range Findings {
		p("| %s | %s | %s | %s |\n", f.ID, cell(f.What), cell(f.Evidence), strings.Join(guardedBy(all, f.ID), ", "))
	}
	p("\n### 1.1 Advisories and the Debian patch level\n\n")
	p("OPS-01 requires mosquitto and libmosquitto1 at `%s` or later, the revision with every backport below.\n\n", debianFloor)
	p("| advisory | what | fixed upstream in | Debian bookworm | checks |\n|---|---|---|---|---|\n")
	for _, c := range CVEs {
		p("| %s | %s | %s | %s | %s |\n", c.ID, cell(c.What), cell(c.Fixed), cell(c.Debian), strings.Join(guardedBy(all, c.ID), ", "))
	}
	p("\n%s", docMethod)
	p("## 3. The checks\n\n")
	for _, fam := range families {
		p("### %s (%s)\n\n", fam.name, fam.prefix)
		for _, c := range all {
			if !strings.HasPrefix(c.ID, fam.prefix+"-") {
				continue
			}
			p("#### %s: %s\n\n", c.ID, c.Title)
			p("| | |\n|---|---|\n")
			tier := fmt.Sprintf("%d", c.Tier)
			var notes []string
			if c.Host {
				notes = append(notes, "reads the host: skipped without host access, NET-01/02 then judge a deployed target from outside only")
			}
			if c.Exclusive {
				notes = append(notes, "runs alone")
			}
			if len(notes) > 0 {
				tier += " (" + strings.Join(notes, "; ") + ")"
			}
			p("| tier | %s |\n", tier)
			p("| attack | %s |\n", cell(c.Attack))
			p("| a PASS proves | %s |\n", cell(c.Proves))
			p("| fix | %s |\n", cell(c.Fix))
			gaps := c.Gaps
			if gaps == "" {
				gaps = "none known"
			}
			p("| known gaps on 2.0.11 | %s |\n", cell(gaps))
			guards := c.Guards
			if guards == "" {
				guards = "general hardening"
			}
			p("| guards | %s |\n\n", cell(guards))
		}
	}
	p("%s", docRevocation)
	p("%s", docConfig)
	_, err := io.WriteString(w, b.String())
	return err
}

const docIntro = "# Security regression catalog\n\n" +
	"<!-- Generated from security.Catalog() by `go test ./security -run TestCatalogDoc -update`; do not edit by hand. -->\n\n" +
	"`mqttstack security` attacks a running stack (Mosquitto 2.0.11 with one client certificate per device and ACLs, " +
	"nginx for MQTT over WebSockets and a status page, a private CA) and decides every check by what the broker and " +
	"nginx actually do: what is delivered, stored, accepted at the TLS layer, listening. This document is the catalog " +
	"of those checks; `mqttstack security --list` prints the same catalog, both from `security.Catalog()`.\n\n" +
	"The facts below come from the project's security research on Debian bookworm's packages (mosquitto " +
	"2.0.11-1.2+deb12u2 with OpenSSL 3.0 and its bundled libwebsockets 4.1.6, nginx 1.22.1): behaviour observed on the " +
	"real binaries, read in the Mosquitto source at tag v2.0.11, and asserted by Mosquitto's own test suite " +
	"(`test/broker/`), the mosquitto.conf(5) man page and Debian's changelog. The checks re-verify them on every run.\n\n" +
	"## 0. Reading a result\n\n" +
	"- **PASS**: the attack was made, its positive control worked (the legitimate client connected, the barrier arrived), and the insecure thing did not happen.\n" +
	"- **FAIL**: the attack worked: a canary was delivered or stored, a weak handshake completed, a hardening line is missing. A failure needs no control.\n" +
	"- **INCONCLUSIVE**: the positive control failed, so nothing was proven. It fails the run like FAIL; it is never a pass.\n" +
	"- **SKIPPED**: the check does not apply (a flood against a deployed target without `--allow-load`, a firewall cap on the local stack) or cannot run: a check that reads the host without host access says so in its evidence. JUnit marks it `<skipped>`, never passed.\n\n" +
	"**Host access.** Checks marked *reads the host* look at the machine through `host.Host`: the broker's effective configuration " +
	"(include_dir followed), the ACL it loaded, the CRL files of Mosquitto and nginx, the daemons' listening sockets, and a reload. " +
	"The CLI opens the local stack's host for a target from `mqttstack local up`, and an SSH connection with a pinned host key " +
	"for a target with an `ssh` section (`mqttstack deploy up` writes it). Without either, those checks are SKIPPED with the reason.\n\n"

const docBehaviour = "## 0.1 What Mosquitto 2.0.11 really does, and why every verdict is a delivery\n\n" +
	"1. **A denied SUBSCRIBE is granted.** With `acl_file`, the SUBACK carries the requested QoS for any filter (`#`, `$SYS/#`, another device's subtree), in 3.1.1 and in MQTT 5: the default ACL check accepts every subscription and enforces read rights on each delivery and each retained replay instead, silently dropping what is denied. A SUBACK failure code only comes from an auth plugin. Checks therefore prove non-delivery and never read SUBACK codes.\n" +
	"2. **A denied 3.1.1 PUBLISH looks successful.** QoS 0 is dropped, QoS 1 gets a plain PUBACK, QoS 2 a PUBREC/PUBCOMP: the reason byte exists only in MQTT 5. paho.mqtt.golang reports success for all three.\n" +
	"3. **MQTT 5 says 0x87.** A denied QoS 1 publish gets PUBACK 0x87 (paho.golang returns an error); a denied QoS 2 publish gets PUBREC 0x87 with *no* client error, so checks read the reason code. A permitted publish nobody reads gets 0x10 (no matching subscribers), a success. Where nobody may read a topic, the 0x87 is the only evidence a check has, and it says so.\n" +
	"4. **paho.mqtt.golang speaks 3.1/3.1.1 only** and does not validate publish topics (NUL, invalid UTF-8 and wildcards go on the wire), but it does validate subscribe filters. MQTT 5 checks use paho.golang; malformed SUBSCRIBEs and lying lengths are written by hand (internal/mqttwire).\n" +
	"5. **TLS 1.3 rejects a client certificate after the handshake.** The alert (certificate required, unknown CA, revoked, expired, unsupported) arrives on the first read, so certificate checks send CONNECT and require that no CONNACK arrives, under TLS 1.3 and again under TLS 1.2 (where the handshake itself fails).\n" +
	"6. **`#` never matches `$SYS`.** An identity that may read `$SYS` needs its own `$SYS/#` grant; publishing to `$SYS` is refused for everyone.\n" +
	"7. **Patterns apply to every user.** `pattern readwrite devices/%u/#` also gives an observer or a backend the subtree named after it; the rendered ACL denies that subtree to observers (`topic deny`, checked before grants and patterns; ACL-11).\n" +
	"8. **Comments are whole lines.** 2.0.11 keeps an inline `# note` as part of a string value (`cafile /x.pem # note` names a file that does not exist); the ACL parser takes the rest of a `user` line as the name.\n\n"

const docMethod = "## 2. How the checks prove things\n\n" +
	"- **Canary and barrier.** One long-lived watcher (`observer-7`, which reads `devices/#` and `$SYS/#`) is tapped by every check. The attacker publishes payloads carrying a random canary; then the legitimate owner publishes a QoS 1 barrier on its own topic. PASS when the barrier reaches the watcher and no canary did within 1 s after it; no barrier is INCONCLUSIVE.\n" +
	"- **Non-receipt.** An attacker's subscriptions are proven to work (it receives its own message) before the absence of foreign messages counts.\n" +
	"- **Stored, not only delivered.** Retained attempts are followed by a fresh subscription of the watcher, which replays what the broker stored.\n" +
	"- **Identities.** Each check has its own device identities (`sec-<check>-<role>`, issued on demand from the target's PKI), so checks run 8 at a time without kicking each other (`use_username_as_clientid` makes the CN the client id). The suite owns `observer-7` (watcher), `observer-8` (the observer class and the password identity) and `backend-8` (the backend class); connections of each are serialised. Negative certificates (expired, not yet valid, revoked, serverAuth only, CN with `+#` or `/`, a revoked certificate with a WSS identity's CN) come from a CI sub-CA below the PKI, never from the production CA itself; foreign-CA and self-signed ones are made in memory.\n" +
	"- **Classes of identities.** Mosquitto decides every ACL question from the username's rules plus the patterns, so users whose rule sets are equal (their own name written as %u) behave alike. ACL-11/12/13 prove the observer and backend classes through the suite's members; ACL-14 reads the ACL the broker loaded and fails on any block outside a proven class.\n" +
	"- **Liveness.** Every robustness check ends with a fresh CONNECT (CONNACK 0) and a PINGRESP within 2 s, and the watcher's session must still be up (a crash or restart would drop it).\n" +
	"- **Bounded.** Every flood has a fixed count and a deadline; floods run only against the local stack unless `--allow-load`.\n" +
	"- **Mutation-proven.** `security/mutations_test.go` removes one hardening at a time from the rendered configuration, starts real daemons on it, and requires the check that guards it to FAIL.\n\n"

const docRevocation = "## 4. The hardened broker configuration\n\n" +
	"`infra/hostconfig` renders it, for a VPS and for the local stack alike; `infra/hostconfig/testdata/vps/etc_mosquitto_mosquitto.conf.golden` and `etc_mosquitto_acl.golden` are exactly what a VPS receives, each directive with a comment naming the check or finding it serves. In short: `per_listener_settings true` first and no listener option before the first `listener` (F1); an explicit address on every listener and `socket_domain ipv4` on the loopback websockets listeners (F2); on 8883 `require_certificate`, `use_identity_as_username`, `use_username_as_clientid` (F6), `tls_version tlsv1.2` and an AEAD-only `ciphers` list (F9), the private CA alone as `cafile` and its `crlfile`; `allow_anonymous false` everywhere; `max_packet_size`, `max_inflight_messages`, `max_queued_messages`, `max_keepalive` (v5 only on 2.0.11, F4), `check_retain_source true`; an ACL keyed on `%u`, never `%c`. `hostconfig.Lint` holds any configuration to these rules with file:line (OPS-02 runs it on what the host holds).\n\n" +
	"## 5. The hardened nginx configuration\n\n" +
	"`infra/hostconfig/testdata/vps/etc_nginx_nginx.conf.golden`: `ssl_protocols TLSv1.2 TLSv1.3`, AEAD-only `ssl_ciphers`, `ssl_session_tickets off` and `ssl_session_cache off` (WEB-09, WEB-10, F11), a catch-all `default_server` with `ssl_reject_handshake on` and `return 444` (WEB-03), `server_tokens off` (WEB-04), HSTS with `always` at server level (WEB-02), port 80 redirecting to a fixed name with the ACME path left to the webroot (WEB-01), `/status` for the ops network only (WEB-06). On `/mqtt`: `ssl_verify_client optional` with the private CA and its `ssl_crl`, 403 unless verification succeeded, the verified CN mapped to that identity's own broker listener (403 for any other CN, F8), 400 for a missing `mqtt` subprotocol and 426 without an upgrade (WEB-07), `limit_req` (AUTH-04). No OCSP stapling: the private CA publishes a CRL.\n\n" +
	"## 6. Revoking an identity, on every path\n\n" +
	"A client certificate is accepted in two places: Mosquitto's mTLS listener (8883) and nginx's `/mqtt` (for the WSS identities, whose broker listeners cannot check certificates, F8). Both must load the CA's CRL (CRT-09), and a reload only affects new handshakes (F10). A password is accepted where no certificate is checked: the ops listener and the broker's WebSocket listeners read password files, which are rendered from the PKI without revoked identities (an identity each of whose certificates, in every trusted CA generation, is in its CA's `revoked.json`). The procedure:\n\n" +
	"1. `mqttstack certs revoke <id>` rewrites `<pki>/ca.crl`; the identity's password leaves the password files at their next rendering. The command names the files that changed.\n" +
	"2. Put that CRL where both daemons read it and rewrite the password files (the local stack reads the PKI's CRL directly: `certs revoke --reload-local` rewrites its password files and reloads both daemons; a VPS gets both with the next `mqttstack deploy up`, `deploy preview` names them), and reload Mosquitto and nginx.\n" +
	"3. End the identity's live sessions: `mqttstack security --end-sessions <id>` (it refuses while the broker still accepts the certificate). It works without disturbing other clients by a **same-CN takeover**: a short-lived certificate (10 minutes) with the revoked identity's CN connects once with clean session 0 (the CONNACK's session-present flag tells whether the broker held a session) and once with clean session 1 (which discards the stored session and its queue); with `use_identity_as_username` and `use_username_as_clientid` the broker closes the old connection. The takeover certificate's key is deleted at once and the certificate revoked (deploy the CRL again to publish that). A broker restart also ends the sessions, for every client at once.\n\n" +
	"CRT-10 proves steps 1–3 on the local stack: the revoked identity's new handshakes fail after the reload, its live session survives the reload (F10, recorded in the evidence), the takeover ends it, and it cannot reconnect. WEB-08 proves nginx refuses a revoked certificate with a WSS identity's CN and correct password. AUTH-05 proves a revoked identity's correct password is refused on the ops listener after the stack rewrote its password files, and that no password file of the broker lists it.\n\n"

const docConfig = "## 7. Running it\n\n" +
	"`mqttstack security` (tier 1 against the local stack), `--target t.json --tier 2 --junit sec.xml --json sec.json`, `--only ACL-11,WEB-08`, `--waive WEB-05` (an accepted risk stays a reported FAIL), `--list`. Exit 0 when every selected check passed or was skipped, 1 on any FAIL or INCONCLUSIVE, 2 bad input, 3 could not run. Tests: `go test ./security -run TestTier1`, `-run TestMutations`, `-run TestTier2` (`make security-tier2`), `-run TestHostSideOverSSH`.\n\n" +
	"## 8. What the daemons answer (observed on Debian bookworm)\n\n" +
	"- Client certificates on 8883: none → `certificate required`; foreign CA or self-signed → `unknown ca`; expired → `certificate expired`; not yet valid → `bad certificate`; revoked → `certificate revoked` (also after a CRL update and reload); serverAuth-only EKU → `unsupported certificate`. Under TLS 1.3 these arrive on the first read after the handshake.\n" +
	"- TLS on 8883 with `tls_version tlsv1.2`: TLS 1.0/1.1 get `protocol_version` (70); without it, TLS 1.1 gets `internal_error` (80).\n" +
	"- A CN with '+#' connects and gets 0x87 for every publish; a CN `devA/sub` writes under `devices/devA/`.\n" +
	"- Anonymous or wrong-password CONNECT: 3.1.1 CONNACK 5, v5 reason 0x87; empty client id: 3.1.1 CONNACK 2, v5 0x80.\n" +
	"- A PUBLISH as first packet declaring 256 MB, and a CONNECT declaring 200 MB: connection reset at once. 400 unreleased v5 QoS 2 publishes: PUBREC 0x00 up to the in-flight and queue limits, then 0x97, while another client is served in a millisecond.\n" +
	"- nginx: no certificate on `/mqtt` → 403; foreign-CA or revoked certificate → 400; unknown SNI → handshake rejected; `server_tokens off` → `Server: nginx`.\n"
