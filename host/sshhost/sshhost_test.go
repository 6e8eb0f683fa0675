package sshhost_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/host"
	"github.com/mqttstack/mqttstack/host/sshhost"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/internal/sshconn"
	"github.com/mqttstack/mqttstack/internal/sshconn/sshdtest"
	"github.com/mqttstack/mqttstack/internal/stacktest"
	"github.com/mqttstack/mqttstack/target"
)

func TestMain(m *testing.M) { os.Exit(stacktest.Main(m)) }

// TestAgainstRealSSHD reaches a real local stack through a real sshd on
// 127.0.0.1 and checks that the SSH host sees what infra/local's host sees.
func TestAgainstRealSSHD(t *testing.T) {
	s := stacktest.Start(t)
	srv := sshdtest.Start(t, sshdtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := sshconn.Dial(ctx, srv.Config())
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, srv.Log())
	}
	paths := hostconfig.LocalPaths(s.StateDir, s.PKIDir)
	h := sshhost.New(c, srv.User, paths)
	defer h.Close()
	lh := s.Host()

	t.Run("dial from a target's ssh section", func(t *testing.T) {
		key := filepath.Join(t.TempDir(), "id")
		if err := os.WriteFile(key, srv.ClientKey, 0o600); err != nil {
			t.Fatal(err)
		}
		sec := &target.SSH{Host: srv.Host, Port: srv.Port, User: srv.User, KeyFile: key, HostKey: srv.HostKey}
		hd, err := sshhost.Dial(ctx, sec, sshhost.Options{Paths: &paths})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer hd.Close()
		if got, err := hd.ReadFile(ctx, paths.MosquittoConf); err != nil || len(got) == 0 {
			t.Fatalf("ReadFile through a dialled host: %v", err)
		}
		// a key of another machine: the server cannot prove it holds it
		sec.HostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmLjoxHIBUhQG3rkKId7o46kKpLECmucNs5lkculDhc"
		if hd, err := sshhost.Dial(ctx, sec, sshhost.Options{}); err == nil {
			hd.Close()
			t.Fatal("Dial accepted a server that does not hold the pinned host key")
		}
	})

	t.Run("name and config", func(t *testing.T) {
		if want := "ssh " + srv.User + "@127.0.0.1:" + strconv.Itoa(srv.Port); h.Name() != want {
			t.Errorf("Name = %q, want %q", h.Name(), want)
		}
		for _, d := range []host.Daemon{host.Mosquitto, host.Nginx} {
			if h.ConfigPath(d) != lh.ConfigPath(d) {
				t.Errorf("ConfigPath(%s) = %q, local host says %q", d, h.ConfigPath(d), lh.ConfigPath(d))
			}
		}
		got, err := h.ReadFile(ctx, h.ConfigPath(host.Mosquitto))
		want, _ := os.ReadFile(s.Target.Local.MosquittoConf)
		if err != nil || string(got) != string(want) {
			t.Fatalf("ReadFile over ssh: %v (%d bytes, want %d)", err, len(got), len(want))
		}
		weird := filepath.Join(t.TempDir(), "it's $HOME; `x`")
		if err := os.WriteFile(weird, []byte("quoted"), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := h.ReadFile(ctx, weird); err != nil || string(got) != "quoted" {
			t.Fatalf("ReadFile(%q) = %q, %v", weird, got, err)
		}
		if _, err := h.ReadFile(ctx, filepath.Join(s.StateDir, "missing")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("ReadFile of a missing file: %v, want fs.ErrNotExist", err)
		}
	})

	t.Run("one config reader over ssh", func(t *testing.T) {
		c, findings, err := hostconfig.Lint(ctx, h, h.ConfigPath(host.Mosquitto))
		if err != nil || len(findings) != 0 {
			t.Fatalf("Lint over ssh: %v, findings %v", err, findings)
		}
		lc, _, err := hostconfig.Lint(ctx, lh, lh.ConfigPath(host.Mosquitto))
		if err != nil || len(lc.Directives) != len(c.Directives) || len(c.Listeners) < 2 {
			t.Fatalf("local read: %v; %d directives over ssh, %d locally", err, len(c.Directives), len(lc.Directives))
		}
		dir := t.TempDir()
		for _, n := range []string{"b.conf", "A.conf", "it's odd.conf"} {
			if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Mkdir(filepath.Join(dir, "sub.conf"), 0o755); err != nil {
			t.Fatal(err)
		}
		names, err := h.ReadDir(ctx, dir)
		if err != nil || strings.Join(names, "|") != "A.conf|b.conf|it's odd.conf" {
			t.Fatalf("ReadDir = %q, %v", names, err)
		}
		if _, err := h.ReadDir(ctx, filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("ReadDir of a missing dir: %v", err)
		}
	})

	t.Run("listeners agree with the local host", func(t *testing.T) {
		ls, err := h.Listeners(ctx)
		if err != nil {
			t.Fatal(err)
		}
		local, err := lh.Listeners(ctx)
		if err != nil {
			t.Fatal(err)
		}
		key := func(l host.Listener) string {
			return string(l.Daemon) + " " + l.Addr.String() + " " + strconv.Itoa(l.PID)
		}
		remote := map[string]bool{}
		sawSSHD := false
		for _, l := range ls {
			if l.Daemon != "" {
				remote[key(l)] = true
			}
			if l.Addr.Port() == uint16(srv.Port) {
				sawSSHD = l.Daemon == "" && l.Process == "sshd"
			}
		}
		for _, l := range local {
			if !remote[key(l)] {
				t.Errorf("local host lists %q, ssh host does not (ssh: %v)", key(l), ls)
			}
			delete(remote, key(l))
		}
		for k := range remote {
			t.Errorf("ssh host lists %q, local host does not", k)
		}
		if !sawSSHD {
			t.Errorf("sshd's own port %d not listed as another process (sshd): %v", srv.Port, ls)
		}
	})

	t.Run("reload", func(t *testing.T) {
		before := strings.Count(s.MosquittoLog(), "Reloading config.")
		if err := h.Reload(ctx, host.Mosquitto); err != nil {
			t.Fatalf("Reload: %v", err)
		}
		if after := strings.Count(s.MosquittoLog(), "Reloading config."); after <= before {
			t.Fatalf("no reload in the broker's log (%d -> %d)", before, after)
		}
		if err := h.Reload(ctx, host.Nginx); err != nil {
			t.Fatalf("Reload(nginx): %v", err)
		}
	})

	t.Run("reload refuses a pid that is not the daemon", func(t *testing.T) {
		bad := paths
		bad.MosquittoPID = filepath.Join(t.TempDir(), "foreign.pid")
		if err := os.WriteFile(bad.MosquittoPID, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		hb := sshhost.New(c, srv.User, bad)
		hb.ReloadTimeout = time.Second
		err := hb.Reload(ctx, host.Mosquitto)
		if err == nil || !strings.Contains(err.Error(), "not 'mosquitto'") && !strings.Contains(err.Error(), "not mosquitto") {
			t.Fatalf("Reload with a foreign pid: %v, want a refusal", err)
		}
	})

	t.Run("costs", func(t *testing.T) {
		cs, err := h.Costs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		lc, err := lh.Costs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 2 || len(lc) != 2 {
			t.Fatalf("Costs: ssh %+v, local %+v; want both daemons", cs, lc)
		}
		for i := range cs {
			if cs[i].Daemon != lc[i].Daemon || cs[i].PID != lc[i].PID || cs[i].RSS <= 0 {
				t.Errorf("ssh cost %+v vs local %+v", cs[i], lc[i])
			}
			// stat's rss pages and status's VmRSS count the same memory
			// of idle daemons: a unit mistake would be a factor of 1000s
			if d := cs[i].RSS - lc[i].RSS; d > lc[i].RSS/4 || -d > lc[i].RSS/4 {
				t.Errorf("%s: RSS %d over ssh (stat pages), %d locally (status VmRSS)", cs[i].Daemon, cs[i].RSS, lc[i].RSS)
			}
		}
	})
}

func TestDialRefusesTargetWithoutSSH(t *testing.T) {
	if _, err := sshhost.Dial(context.Background(), nil, sshhost.Options{}); err == nil {
		t.Fatal("Dial(nil): no error")
	}
	if _, err := sshhost.Dial(context.Background(), &target.SSH{Host: "127.0.0.1", User: "root", KeyFile: filepath.Join(t.TempDir(), "none")}, sshhost.Options{}); err == nil || !strings.Contains(err.Error(), "ssh.key_file") {
		t.Fatalf("Dial with a missing key: %v", err)
	}
}

// BenchmarkHostCalls measures one call of each host.Host method that a run
// makes while it runs, on the local host and over SSH to the same stack
// (numbers for docs/BENCHMARKS.md: the load engine samples costs once a
// second).
func BenchmarkHostCalls(b *testing.B) {
	s := stacktest.Start(b)
	srv := sshdtest.Start(b, sshdtest.Options{})
	ctx := context.Background()
	c, err := sshconn.Dial(ctx, srv.Config())
	if err != nil {
		b.Fatal(err)
	}
	remote := sshhost.New(c, srv.User, hostconfig.LocalPaths(s.StateDir, s.PKIDir))
	defer remote.Close()
	for _, h := range []host.Host{s.Host(), remote} {
		name := "local"
		if h == remote {
			name = "ssh"
		}
		b.Run(name+"/Costs", func(b *testing.B) {
			for b.Loop() {
				if _, err := h.Costs(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/Listeners", func(b *testing.B) {
			for b.Loop() {
				if _, err := h.Listeners(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/ReadFile", func(b *testing.B) {
			for b.Loop() {
				if _, err := h.ReadFile(ctx, h.ConfigPath(host.Mosquitto)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
