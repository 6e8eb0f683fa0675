package local_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/host"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/internal/stacktest"
)

// TestHost drives infra/local's host.Host against a real stack: config
// paths and files, listeners by owning process, reload, costs, and that it
// follows a crash and a restart of the broker.
func TestHost(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithOpsPort())
	h := s.Host()
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	loc := s.Target.Local

	t.Run("config", func(t *testing.T) {
		if h.Name() != "local" {
			t.Errorf("Name = %q", h.Name())
		}
		if got := h.ConfigPath(host.Mosquitto); got != loc.MosquittoConf {
			t.Errorf("ConfigPath(mosquitto) = %q, want %q", got, loc.MosquittoConf)
		}
		if got := h.ConfigPath(host.Nginx); got != loc.NginxConf {
			t.Errorf("ConfigPath(nginx) = %q, want %q", got, loc.NginxConf)
		}
		b, err := h.ReadFile(ctx, h.ConfigPath(host.Mosquitto))
		if err != nil || !strings.Contains(string(b), "require_certificate true") {
			t.Fatalf("ReadFile(mosquitto.conf): %v\n%s", err, b)
		}
		if _, err := h.ReadFile(ctx, loc.StateDir+"/no-such-file"); err == nil {
			t.Fatal("ReadFile of a missing file: no error")
		}
		// the running config, read through the host by the one reader
		c, findings, err := hostconfig.Lint(ctx, h, h.ConfigPath(host.Mosquitto))
		if err != nil || len(findings) != 0 || len(c.Listeners) < 3 {
			t.Fatalf("hostconfig.Lint through the host: %v, findings %v, %d listeners", err, findings, len(c.Listeners))
		}
	})

	owners := func(t *testing.T) map[uint16]host.Daemon {
		t.Helper()
		ls, err := h.Listeners(ctx)
		if err != nil {
			t.Fatalf("Listeners: %v", err)
		}
		m := map[uint16]host.Daemon{}
		for _, l := range ls {
			if prev, dup := m[l.Addr.Port()]; dup && prev != l.Daemon {
				t.Fatalf("port %d owned by %s and %s", l.Addr.Port(), prev, l.Daemon)
			}
			m[l.Addr.Port()] = l.Daemon
			if !l.Addr.Addr().IsLoopback() {
				t.Errorf("listener %v of %s is not on loopback", l.Addr, l.Daemon)
			}
		}
		return m
	}
	t.Run("listeners", func(t *testing.T) {
		m := owners(t)
		want := map[int]host.Daemon{
			s.Target.MQTTSPort: host.Mosquitto, loc.WSPort: host.Mosquitto, loc.OpsPort: host.Mosquitto,
			loc.HTTPSPort: host.Nginx, loc.HTTPPort: host.Nginx,
		}
		for p, d := range want {
			if m[uint16(p)] != d {
				t.Errorf("port %d: owner %q, want %q (all: %v)", p, m[uint16(p)], d, m)
			}
		}
		ls, _ := h.Listeners(ctx)
		for _, l := range ls {
			if l.Addr.Port() == uint16(s.Target.MQTTSPort) && l.Addr.Addr() != netip.MustParseAddr(s.Target.Host) {
				t.Errorf("mqtts listener bound to %v, want %s", l.Addr, s.Target.Host)
			}
		}
	})

	t.Run("reload", func(t *testing.T) {
		before := strings.Count(s.MosquittoLog(), "Reloading config.")
		if err := h.Reload(ctx, host.Mosquitto); err != nil {
			t.Fatalf("Reload(mosquitto): %v", err)
		}
		// at least one more: a reload slower than a second is signalled again
		if after := strings.Count(s.MosquittoLog(), "Reloading config."); after <= before {
			t.Fatalf("reload lines %d -> %d, want more", before, after)
		}
		if err := h.Reload(ctx, host.Nginx); err != nil {
			t.Fatalf("Reload(nginx): %v", err)
		}
	})

	t.Run("costs", func(t *testing.T) {
		cs, err := h.Costs(ctx)
		if err != nil {
			t.Fatalf("Costs: %v", err)
		}
		want := map[host.Daemon]int{host.Mosquitto: s.MosquittoPID(), host.Nginx: s.NginxPID()}
		if len(cs) != 2 {
			t.Fatalf("Costs = %+v, want one per daemon", cs)
		}
		for _, c := range cs {
			if c.PID != want[c.Daemon] || c.RSS <= 0 || c.CPU < 0 {
				t.Errorf("cost %+v: want pid %d, RSS > 0", c, want[c.Daemon])
			}
		}
	})

	t.Run("follows a crash and a restart", func(t *testing.T) {
		s.Kill()
		m := owners(t)
		if m[uint16(s.Target.MQTTSPort)] != "" {
			t.Fatalf("a killed broker still listed on %d", s.Target.MQTTSPort)
		}
		if m[uint16(loc.HTTPSPort)] != host.Nginx {
			t.Fatalf("nginx's listener lost after the broker's crash: %v", m)
		}
		cs, err := h.Costs(ctx)
		if err != nil || len(cs) != 1 || cs[0].Daemon != host.Nginx {
			t.Fatalf("Costs after the crash = %+v, %v; want nginx only", cs, err)
		}
		if err := h.Reload(ctx, host.Mosquitto); err == nil {
			t.Fatal("Reload of a dead broker: no error")
		}
		s.Restart()
		if m := owners(t); m[uint16(s.Target.MQTTSPort)] != host.Mosquitto {
			t.Fatalf("restarted broker not listed: %v", m)
		}
		cs, err = h.Costs(ctx)
		if err != nil || len(cs) != 2 || cs[0].PID != s.MosquittoPID() {
			t.Fatalf("Costs after restart = %+v, %v; want the new pid %d", cs, err, s.MosquittoPID())
		}
	})
}
