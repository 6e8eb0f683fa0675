package hostconfig

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// listenerScoped are mosquitto options that belong to a listener. Before the
// first `listener` line, several of them make 2.0.11 open a hidden default
// listener on 0.0.0.0:1883 and [::]:1883 that accepts anonymous clients (F1);
// the rest are harmless there only by accident. Keep all inside listeners.
var listenerScoped = map[string]bool{
	"acl_file": true, "allow_anonymous": true, "allow_zero_length_clientid": true,
	"auth_plugin": true, "auto_id_prefix": true, "bind_interface": true,
	"cafile": true, "capath": true, "certfile": true, "ciphers": true, "ciphers_tls1.3": true,
	"crlfile": true, "dhparamfile": true, "http_dir": true, "keyfile": true,
	"max_connections": true, "mount_point": true, "password_file": true, "plugin": true,
	"protocol": true, "psk_file": true, "psk_hint": true, "require_certificate": true,
	"socket_domain": true, "tls_engine": true, "tls_engine_kpass_sha1": true,
	"tls_keyform": true, "tls_version": true, "use_identity_as_username": true,
	"use_subject_as_username": true, "use_username_as_clientid": true,
}

// LintMosquittoConf lints one mosquitto.conf (include_dir not followed; see
// MosquittoConf.Lint) and returns every finding as one error, each line
// "mosquitto.conf:N: …". Use Lint to read a whole configuration and its
// ACLs from a host.
func LintMosquittoConf(conf []byte) error {
	return findingsErr(ParseBrokerConfig("mosquitto.conf", conf).Lint())
}

// LintACL lints one acl_file (see ACL.Lint) and returns every finding as
// one error, each line "acl:N: …".
func LintACL(acl []byte) error {
	return findingsErr(ParseACLFile("acl", acl).Lint())
}

func findingsErr(fs []Finding) error {
	var errs []error
	for _, f := range fs {
		errs = append(errs, errors.New(f.String()))
	}
	return errors.Join(errs...)
}

// Lint checks a broker configuration against the rules of SECURITY.md
// OPS-02 that a static read can decide, and reports every violation with
// its file and line:
//   - per_listener_settings true comes first among the options;
//   - no listener-scoped option before the first listener (F1);
//   - every listener names an address; a websockets listener is on
//     loopback, has socket_domain ipv4 (F2) and a password_file;
//   - a TLS listener (cafile) has require_certificate, use_identity_as_username,
//     use_username_as_clientid, tls_version tlsv1.2, ciphers and crlfile;
//   - every listener has allow_anonymous false and an acl_file;
//   - set_tcp_nodelay true (else TLS 1.3 CONNACKs wait ~40 ms);
//   - no inline comments (2.0.11 keeps them as part of the value), no http_dir,
//     no include_dir (conf.d could put options in front of the listeners).
//
// Included files are linted in the broker's order, as if they were part of
// the main file at the include_dir line.
func (c *BrokerConfig) Lint() []Finding {
	out := append([]Finding(nil), c.problems...)
	bad := func(file string, line int, format string, a ...any) {
		out = append(out, Finding{File: file, Line: line, Msg: fmt.Sprintf(format, a...)})
	}
	nodelay := false
	for i, d := range c.Directives {
		line := d.Key + " " + d.Value
		if strings.Contains(d.Value, "#") && d.Key != "log_timestamp_format" {
			bad(d.File, d.Line, "%q: a '#' after a value becomes part of it on 2.0.11; put comments on their own line", line)
		}
		if i == 0 && d.Key != "per_listener_settings" {
			bad(d.File, d.Line, "%q: per_listener_settings true must be the first option", line)
		}
		switch {
		case d.Key == "per_listener_settings" && d.Value != "true":
			bad(d.File, d.Line, "per_listener_settings must be true")
		case d.Key == "set_tcp_nodelay":
			nodelay = d.Value == "true"
		case d.Key == "include_dir":
			bad(d.File, d.Line, "include_dir: files in it could put listener options before the first listener (F1); render one file")
		case d.Key == "http_dir":
			bad(d.File, d.Line, "http_dir: the WebSocket listener must not serve HTTP (WEB-04)")
		case d.Key == "listener":
			if len(d.Args()) < 2 {
				bad(d.File, d.Line, "%q: every listener needs an explicit address (F1/NET-01)", line)
			}
		case listenerScoped[d.Key] && d.Listener < 0:
			bad(d.File, d.Line, "%q before the first listener: 2.0.11 opens an anonymous listener on 0.0.0.0:1883 (F1)", line)
		}
	}
	if len(c.Listeners) == 0 {
		bad(c.Path, 0, "no listener")
	}
	if !nodelay {
		// measured on the local stack: CONNECT→CONNACK p50 44 ms without,
		// 3.7 ms with (the CONNACK waits for a delayed ACK under TLS 1.3)
		bad(c.Path, 0, "set_tcp_nodelay true is missing: every TLS 1.3 CONNACK stalls ~40 ms")
	}
	for _, l := range c.Listeners {
		o := func(k string) string { v, _ := l.Get(k); return v }
		if o("allow_anonymous") != "false" {
			bad(l.File, l.Line, "listener: allow_anonymous false is missing (AUTH-01)")
		}
		if o("acl_file") == "" {
			bad(l.File, l.Line, "listener: acl_file is missing (ACL-01)")
		}
		if l.Protocol() == "websockets" {
			if o("socket_domain") != "ipv4" {
				bad(l.File, l.Line, "websockets listener: socket_domain ipv4 is missing, 2.0.11 would bind every interface (F2)")
			}
			if ip := net.ParseIP(l.Address); ip == nil || !ip.IsLoopback() {
				bad(l.File, l.Line, "websockets listener: address %q is not loopback; nginx fronts it (NET-02)", l.Address)
			}
			if o("password_file") == "" {
				bad(l.File, l.Line, "websockets listener: password_file is missing; nginx's certificate check alone names no user (WEB-05)")
			}
		}
		if o("cafile") != "" || o("certfile") != "" {
			for _, kv := range [][2]string{
				{"require_certificate", "true"}, {"use_identity_as_username", "true"},
				{"use_username_as_clientid", "true"}, {"tls_version", "tlsv1.2"},
			} {
				if o(kv[0]) != kv[1] {
					bad(l.File, l.Line, "TLS listener: %s %s is missing", kv[0], kv[1])
				}
			}
			if o("crlfile") == "" {
				bad(l.File, l.Line, "TLS listener: crlfile is missing (CRT-05)")
			}
			if o("ciphers") == "" {
				bad(l.File, l.Line, "TLS listener: ciphers is missing; the default accepts CBC/SHA-1 suites (TLS-02)")
			}
		}
		if o("use_username_as_clientid") != "true" && o("password_file") != "" {
			bad(l.File, l.Line, "password listener: use_username_as_clientid true is missing (SES-01)")
		}
	}
	return out
}

// Lint checks an acl_file: a %u pattern confines devices, no %c (ACL-09),
// no write on '#' and no $SYS in patterns (ACL-05).
func (a *ACLFile) Lint() []Finding {
	out := append([]Finding(nil), a.problems...)
	confined := false
	for _, r := range a.Rules {
		line := r.Kind + " " + r.Access + " " + r.Topic
		switch {
		case strings.Contains(r.Topic, "%c"):
			out = append(out, Finding{r.File, r.Line, fmt.Sprintf("%q: %%c lets a client choose its ACL identity (ACL-09); use %%u", line)})
		case r.Kind == "pattern" && strings.Contains(r.Topic, "$SYS"):
			out = append(out, Finding{r.File, r.Line, fmt.Sprintf("%q: a pattern grants $SYS to every device (ACL-05)", line)})
		case r.Topic == "#" && (r.Access == "readwrite" || r.Access == "write"):
			out = append(out, Finding{r.File, r.Line, fmt.Sprintf("%q: write access to every topic", line)})
		}
		if r.Kind == "pattern" && strings.Contains(r.Topic, "devices/%u/") && r.Access != "deny" {
			confined = true
		}
	}
	if !confined {
		out = append(out, Finding{a.Path, 0, "no `pattern readwrite devices/%u/#` line: devices are not confined"})
	}
	return out
}
