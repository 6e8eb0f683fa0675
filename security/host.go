package security

import (
	"context"
	"errors"
	"fmt"
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

// hostLint runs hostconfig's linter on the broker's configuration and
// every acl_file it names, read through the host.
func (e *Env) hostLint(ctx context.Context) (*hostconfig.BrokerConfig, []hostconfig.Finding, error) {
	if e.host == nil {
		return nil, nil, errNoHost
	}
	c, fs, err := hostconfig.Lint(ctx, e.host, e.host.ConfigPath(host.Mosquitto))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", e.host.Name(), err)
	}
	return c, fs, nil
}

// lintMatching are the findings of hostLint whose text holds any of subs.
func (e *Env) lintMatching(ctx context.Context, subs ...string) ([]string, error) {
	_, fs, err := e.hostLint(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range fs {
		for _, s := range subs {
			if strings.Contains(f.Msg, s) {
				out = append(out, f.String())
				break
			}
		}
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
