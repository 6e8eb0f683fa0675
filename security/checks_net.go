package security

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// expectedPorts are the broker's configured listeners on a local target.
func (e *Env) expectedPorts() map[int]string {
	m := map[int]string{e.T.MQTTSPort: "mqtts"}
	for _, p := range e.wsPorts() {
		m[p] = "websockets"
	}
	if e.T.Local.OpsPort > 0 {
		m[e.T.Local.OpsPort] = "ops"
	}
	return m
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
			ID: "NET-01", Standalone: true, Tier: 1, Title: "No plaintext MQTT on public interfaces (incl. the hidden default listener)",
			Attack: "local: audit the broker's listening sockets (/proc) for anything but the configured loopback/mqtts sockets and try anonymous CONNECT on strays; remote: dial 1883",
			Fix:    "no listener-scoped option (cafile, password_file, allow_zero_length_clientid, ...) before the first `listener` line; explicit address on every listener; firewall drops 1883",
			Run: func(ctx context.Context, e *Env) Outcome {
				if e.T.Local == nil {
					ok, ev := remoteRefused(ctx, e.T.Host, 1883)
					if !ok {
						return fail("plaintext MQTT reachable: %s (%s)", ev, anonymousProbeHost(ctx, e.T.Host, 1883))
					}
					return pass("%s; host-side socket audit skipped (remote target)", ev)
				}
				socks, err := listeningSockets(e.T.Local.MosquittoPID)
				if err != nil {
					return inconclusive("%v", err)
				}
				want := e.expectedPorts()
				var bad, seen []string
				sawMQTTS := false
				for _, s := range socks {
					seen = append(seen, s.String())
					if s.port == e.T.MQTTSPort {
						sawMQTTS = true
					}
					if _, ok := want[s.port]; !ok {
						bad = append(bad, fmt.Sprintf("unexpected listener %s (%s)", s, anonymousProbe(ctx, s.port)))
						continue
					}
					if !s.addr.IsLoopback() && s.port != e.T.MQTTSPort {
						bad = append(bad, fmt.Sprintf("%s listener on %s is not loopback", want[s.port], s))
					}
				}
				if !sawMQTTS {
					return inconclusive("positive control: pid %d has no socket on the mqtts port %d (sockets: %v)", e.T.Local.MosquittoPID, e.T.MQTTSPort, seen)
				}
				if len(bad) > 0 {
					return fail("%s", strings.Join(bad, "; "))
				}
				return pass("broker pid %d listens on exactly %s", e.T.Local.MosquittoPID, strings.Join(seen, " "))
			},
		},
		{
			ID: "NET-02", Standalone: true, Tier: 1, Title: "The WebSocket backend port is loopback-only",
			Attack: "local: the sockets on the websockets port must all be 127.0.0.1/::1 (2.0.11+LWS binds *:port without socket_domain); remote: dial 9001",
			Fix:    "listener <ws> 127.0.0.1 + socket_domain ipv4 (F2); firewall drop on 9001",
			Run: func(ctx context.Context, e *Env) Outcome {
				if e.T.Local == nil {
					ok, ev := remoteRefused(ctx, e.T.Host, 9001)
					if !ok {
						return fail("websocket backend reachable from outside: %s", ev)
					}
					return pass("%s; host-side socket audit skipped (remote target)", ev)
				}
				ports := map[int]bool{}
				for _, p := range e.wsPorts() {
					ports[p] = true
				}
				if len(ports) == 0 {
					return skipped("the local stack has no websocket listener")
				}
				socks, err := listeningSockets(e.T.Local.MosquittoPID)
				if err != nil {
					return inconclusive("%v", err)
				}
				var on []string
				var bad []string
				for _, s := range socks {
					if !ports[s.port] {
						continue
					}
					on = append(on, s.String())
					if !s.addr.IsLoopback() {
						bad = append(bad, s.String())
					}
				}
				if len(on) == 0 {
					return inconclusive("positive control: no listening socket on the websockets ports %v", e.wsPorts())
				}
				if len(bad) > 0 {
					return fail("websocket listener bound to %s (all interfaces), not loopback", strings.Join(bad, ", "))
				}
				return pass("websocket listener only on %s", strings.Join(on, ", "))
			},
		},
		{
			ID: "NET-03", Tier: 2, Title: "Only the expected ports answer",
			Attack: "bounded TCP sweep of 22,80,443,1883,8080,8883,8884,9001,9883 on the public address",
			Fix:    "explicit listener addresses; nftables default-drop input",
		},
	}
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
