package security

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/mqttstack/mqttstack/host"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
)

// directive is one line of an effective mosquitto configuration.
type directive struct {
	key, value string
	file       string
	line       int
}

// errNoHost says that the run has no access to the stack's host: the
// checks that read its files or list its sockets are skipped with it.
var errNoHost = errors.New("no host access (the target has no ssh section and is not a running local stack)")

// needsHost is the Skipped outcome of a host-side check without a Host.
func needsHost(what string) Outcome {
	return skipped("%s needs host access: %v", what, errNoHost)
}

// hostFile reads path on the stack's host.
func (e *Env) hostFile(ctx context.Context, path string) ([]byte, error) {
	if e.host == nil {
		return nil, errNoHost
	}
	b, err := e.host.ReadFile(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", e.host.Name(), path, err)
	}
	return b, nil
}

// brokerConf reads the broker's effective configuration on the host:
// the file host.ConfigPath(mosquitto) names, with its include_dir files at
// their line in the broker's order, through hostconfig's one reader.
func (e *Env) brokerConf(ctx context.Context) ([]directive, error) {
	if e.host == nil {
		return nil, errNoHost
	}
	path := e.host.ConfigPath(host.Mosquitto)
	if path == "" {
		return nil, fmt.Errorf("%s: no mosquitto config path", e.host.Name())
	}
	c, err := hostconfig.ReadBrokerConfig(ctx, e.host, path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.host.Name(), err)
	}
	out := make([]directive, 0, len(c.Directives))
	for _, d := range c.Directives {
		out = append(out, directive{key: d.Key, value: d.Value, file: d.File, line: d.Line})
	}
	return out, nil
}

// confValues returns every value of key in conf, in order.
func confValues(conf []directive, key string) []string {
	var out []string
	for _, d := range conf {
		if d.key == key {
			out = append(out, d.value)
		}
	}
	return out
}

// nginxConf reads nginx's main configuration on the host.
func (e *Env) nginxConf(ctx context.Context) (string, []byte, error) {
	if e.host == nil {
		return "", nil, errNoHost
	}
	path := e.host.ConfigPath(host.Nginx)
	if path == "" {
		return "", nil, fmt.Errorf("%s: no nginx config path", e.host.Name())
	}
	b, err := e.hostFile(ctx, path)
	return path, b, err
}

// nginxDirective returns the values of every `name value;` statement in an
// nginx configuration (comments stripped), with their line numbers.
func nginxDirective(conf []byte, name string) (values []string, lines []int) {
	for i, l := range strings.Split(string(conf), "\n") {
		if c := strings.IndexByte(l, '#'); c >= 0 {
			l = l[:c]
		}
		for _, stmt := range strings.Split(l, ";") {
			f := strings.Fields(stmt)
			if len(f) >= 2 && f[0] == name {
				values = append(values, strings.Join(f[1:], " "))
				lines = append(lines, i+1)
			}
		}
	}
	return values, lines
}

// brokerListeners lists the broker's listening sockets on the host.
func (e *Env) brokerListeners(ctx context.Context) ([]netip.AddrPort, error) {
	ls, err := e.daemonListeners(ctx, host.Mosquitto)
	return ls, err
}

func (e *Env) daemonListeners(ctx context.Context, d host.Daemon) ([]netip.AddrPort, error) {
	if e.host == nil {
		return nil, errNoHost
	}
	all, err := e.host.Listeners(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: list listeners: %w", e.host.Name(), err)
	}
	var out []netip.AddrPort
	for _, l := range all {
		if l.Daemon == d {
			out = append(out, l.Addr)
		}
	}
	return out, nil
}

// reload has daemon d re-read its configuration (and CRL) through the Host.
func (e *Env) reload(ctx context.Context, d host.Daemon) error {
	if e.host == nil {
		return errNoHost
	}
	if err := e.host.Reload(ctx, d); err != nil {
		return fmt.Errorf("%s: reload %s: %w", e.host.Name(), d, err)
	}
	return nil
}

// directiveLines calls fn for every directive of a mosquitto config or ACL
// file in order, with its line number, the trimmed line, the key and the
// trimmed value; blank lines and lines starting with '#' are skipped. It
// stops at fn's first error and returns it, else the scanner's.
func directiveLines(r io.Reader, fn func(n int, line, key, value string) error) error {
	s := bufio.NewScanner(r)
	n := 0
	for s.Scan() {
		n++
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		if err := fn(n, line, k, strings.TrimSpace(v)); err != nil {
			return err
		}
	}
	return s.Err()
}

// listenerScoped are the options that, before the first `listener` line,
// configure Mosquitto's implicit default listener (F1): on 2.0.11 that
// listener binds 0.0.0.0:1883 and [::]:1883 with anonymous access.
var listenerScoped = map[string]bool{
	"cafile": true, "capath": true, "certfile": true, "keyfile": true, "ciphers": true, "ciphers_tls1.3": true,
	"crlfile": true, "dhparamfile": true, "require_certificate": true, "tls_version": true, "tls_engine": true,
	"tls_keyform": true, "tls_engine_kpass_sha1": true, "use_identity_as_username": true, "use_subject_as_username": true,
	"use_username_as_clientid": true, "password_file": true, "acl_file": true, "allow_anonymous": true,
	"allow_zero_length_clientid": true, "auto_id_prefix": true, "psk_file": true, "psk_hint": true,
	"max_connections": true, "protocol": true, "mount_point": true, "bind_interface": true, "socket_domain": true,
	"http_dir": true, "port": true, "bind_address": true, "websockets_log_level": true, "max_topic_alias": true,
	"auth_plugin": true, "plugin": true, "max_qos": true,
}
