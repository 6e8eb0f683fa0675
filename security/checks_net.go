package security

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// confListener is one `listener` block of the broker's configuration.
type confListener struct {
	port int
	addr string
	ws   bool
}

// configuredListeners lists the broker's listener blocks.
func configuredListeners(conf []directive) []confListener {
	var out []confListener
	for _, d := range conf {
		switch d.key {
		case "listener":
			f := strings.Fields(d.value)
			p, _ := strconv.Atoi(f[0])
			l := confListener{port: p}
			if len(f) > 1 {
				l.addr = f[1]
			}
			out = append(out, l)
		case "protocol":
			if len(out) > 0 && d.value == "websockets" {
				out[len(out)-1].ws = true
			}
		}
	}
	return out
}

// hostSockets is what NET-01/02 audit: the broker's listening sockets on
// the host and the listener blocks of its configuration.
func (e *Env) hostSockets(ctx context.Context) ([]netip.AddrPort, []confListener, error) {
	conf, err := e.brokerConf(ctx)
	if err != nil {
		return nil, nil, err
	}
	socks, err := e.brokerListeners(ctx)
	if err != nil {
		return nil, nil, err
	}
	return socks, configuredListeners(conf), nil
}

// anonymousProbe tries an anonymous plaintext 3.1.1 CONNECT on
// 127.0.0.1:port (a wildcard listener includes loopback, so this never
// leaves the host) and describes the answer.
func anonymousProbe(ctx context.Context, port int) string {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Sprintf("dial: %v", err)
	}
	rc := newRawConn(c)
	defer rc.Close()
	code, _, err := rc.connack(rawConnect{ClientID: "sec-anon-" + nonce()[:6], KeepAlive: 30})
	if err != nil {
		return fmt.Sprintf("anonymous CONNECT: %v", err)
	}
	if code == 0 {
		return "anonymous CONNECT got CONNACK 0 (ACCEPTED)"
	}
	return fmt.Sprintf("anonymous CONNECT got CONNACK %d", code)
}

// remoteRefused dials host:port and reports whether it was refused or
// filtered (a deployed target is judged from outside).
func remoteRefused(ctx context.Context, host string, port int) (bool, string) {
	d := net.Dialer{Timeout: 3 * time.Second}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return true, fmt.Sprintf("%d: %v", port, err)
	}
	c.Close()
	return false, fmt.Sprintf("%d: OPEN", port)
}

func netChecks() []Check {
	return []Check{
		{
			ID: "NET-01", Host: true, Standalone: true, Tier: 1, Title: "No plaintext MQTT on public interfaces (incl. the hidden default listener)",
			Attack: "local: audit the broker's listening sockets (/proc) for anything but the configured loopback/mqtts sockets and try anonymous CONNECT on strays; remote: dial 1883",
			Fix:    "no listener-scoped option (cafile, password_file, allow_zero_length_clientid, ...) before the first `listener` line; explicit address on every listener; firewall drops 1883",
			Proves: "the broker listens only where its configuration says, nothing but the mqtts port beyond loopback, and (deployed) 1883 does not answer from outside",
			Gaps:   "a listener-scoped option before the first listener opens an anonymous 0.0.0.0:1883 listener on 2.0.11 (fixed upstream in 2.0.12, not in Debian's changelog)",
			Guards: "F1",
			Run:    runNET01,
		},
		{
			ID: "NET-02", Host: true, Standalone: true, Tier: 1, Title: "The WebSocket backend port is loopback-only",
			Attack: "local: the sockets on the websockets port must all be 127.0.0.1/::1 (2.0.11+LWS binds *:port without socket_domain); remote: dial 9001",
			Fix:    "listener <ws> 127.0.0.1 + socket_domain ipv4 (F2); firewall drop on 9001",
			Proves: "every socket of a websockets listener is loopback, so nginx's certificate check cannot be bypassed",
			Gaps:   "2.0.11 with libwebsockets 4.1.6 ignores the listener address and binds *:port unless socket_domain ipv4 is set",
			Guards: "F2",
			Run:    runNET02,
		},
		{
			ID: "NET-03", Host: true, Tier: 2, Title: "Only the expected ports answer",
			Attack:     "bounded TCP sweep of 22,80,443,1883,8080,8883,8884,9001,9883 on the public address",
			Fix:        "explicit listener addresses; nftables default-drop input",
			Proves:     "only the expected ports answer (deployed: from outside; local: the stack's own sockets)",
			Guards:     "exposure of forgotten services",
			Standalone: true,
			Run:        runNET03,
		},
	}
}

// runNET01 audits the broker's sockets on the host: every one belongs to a
// configured listener, and only the mqtts port is bound beyond loopback. A
// stray socket is probed with an anonymous CONNECT (locally). A deployed
// target is also dialled on 1883 from here.
func runNET01(ctx context.Context, e *Env) Outcome {
	var outside string
	if e.T.Local == nil {
		ok, ev := remoteRefused(ctx, e.T.Host, 1883)
		if !ok {
			return fail("plaintext MQTT reachable: %s (%s)", ev, anonymousProbeHost(ctx, e.T.Host, 1883))
		}
		outside = ev + "; "
	}
	socks, ls, err := e.hostSockets(ctx)
	if errors.Is(err, errNoHost) {
		if e.T.Local == nil {
			return pass("%shost-side socket audit skipped: %v", outside, err)
		}
		return needsHost("the audit of the broker's listening sockets")
	}
	if err != nil {
		return inconclusive("%v", err)
	}
	configured := map[int]bool{}
	for _, l := range ls {
		configured[l.port] = true
	}
	var bad, seen []string
	sawMQTTS := false
	for _, s := range socks {
		seen = append(seen, s.String())
		port := int(s.Port())
		if port == e.T.MQTTSPort {
			sawMQTTS = true
		}
		if !configured[port] {
			probe := "not probed (remote)"
			if e.T.Local != nil {
				probe = anonymousProbe(ctx, port)
			}
			bad = append(bad, fmt.Sprintf("unconfigured listener %s (%s)", s, probe))
			continue
		}
		if !s.Addr().IsLoopback() && port != e.T.MQTTSPort {
			bad = append(bad, fmt.Sprintf("listener %s is not loopback", s))
		}
	}
	if !sawMQTTS {
		return inconclusive("positive control: %s shows no broker socket on the mqtts port %d (sockets: %v)", e.host.Name(), e.T.MQTTSPort, seen)
	}
	if len(bad) > 0 {
		return fail("%s", strings.Join(bad, "; "))
	}
	return pass("%s%s: the broker listens on exactly %s", outside, e.host.Name(), strings.Join(seen, " "))
}

// runNET02 requires every socket on a websockets listener's port to be
// loopback (2.0.11 + libwebsockets binds *:port without socket_domain).
func runNET02(ctx context.Context, e *Env) Outcome {
	var outside string
	if e.T.Local == nil {
		ok, ev := remoteRefused(ctx, e.T.Host, 9001)
		if !ok {
			return fail("websocket backend reachable from outside: %s", ev)
		}
		outside = ev + "; "
	}
	socks, ls, err := e.hostSockets(ctx)
	if errors.Is(err, errNoHost) {
		if e.T.Local == nil {
			return pass("%shost-side socket audit skipped: %v", outside, err)
		}
		return needsHost("the audit of the websockets listeners' sockets")
	}
	if err != nil {
		return inconclusive("%v", err)
	}
	ports := map[int]bool{}
	for _, l := range ls {
		if l.ws {
			ports[l.port] = true
		}
	}
	if len(ports) == 0 {
		return skipped("the broker has no websockets listener")
	}
	var on, bad []string
	for _, s := range socks {
		if !ports[int(s.Port())] {
			continue
		}
		on = append(on, s.String())
		if !s.Addr().IsLoopback() {
			bad = append(bad, s.String())
		}
	}
	if len(on) == 0 {
		return inconclusive("positive control: no listening socket on the %d websockets ports", len(ports))
	}
	if len(bad) > 0 {
		return fail("websocket listener bound to %s (all interfaces), not loopback", strings.Join(bad, ", "))
	}
	return pass("%s%s: %d websocket listeners, all loopback (%s … %s)", outside, e.host.Name(), len(on), on[0], on[len(on)-1])
}

func anonymousProbeHost(ctx context.Context, host string, port int) string {
	if host == "127.0.0.1" || host == "localhost" {
		return anonymousProbe(ctx, port)
	}
	return "anonymous probe not attempted against a remote host"
}

var debVersionRE = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~:-]*$`)

// dpkgVersion returns the installed Debian version of pkg, or "" if dpkg
// does not know it (not a Debian host, or a source build).
func dpkgVersion(ctx context.Context, pkg string) string {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return ""
	}
	v := strings.TrimSpace(string(out))
	if !debVersionRE.MatchString(v) {
		return ""
	}
	return v
}

// debAtLeast asks dpkg to compare Debian versions (epochs, ~, +debNuM).
func debAtLeast(ctx context.Context, have, floor string) bool {
	return exec.CommandContext(ctx, "dpkg", "--compare-versions", have, "ge", floor).Run() == nil
}
