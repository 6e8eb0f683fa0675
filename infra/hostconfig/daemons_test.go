package hostconfig_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/host"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/infra/local"
	"github.com/mqttstack/mqttstack/internal/stacktest"
)

func TestMain(m *testing.M) { os.Exit(stacktest.Main(m)) }

// writeFiles writes rendered files under their (absolute, temporary) paths.
func writeFiles(t *testing.T, files []hostconfig.File) {
	t.Helper()
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.Path, f.Content, f.Mode); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNginxAcceptsRenderedConfig runs the real `nginx -t` on the local and
// the VPS flavour of nginx.conf (the VPS one with its paths moved into a
// temporary directory: user www-data, workers auto, IPv6 listeners).
// nginx -t parses everything and loads the certificates, the CA and the CRL,
// but binds no socket.
func TestNginxAcceptsRenderedConfig(t *testing.T) {
	if err := local.EnsureDaemons(t.Context(), os.Stderr); err != nil {
		t.Fatal(err)
	}
	pki := filepath.Join(t.TempDir(), "pki")
	if _, err := certs.Init(certs.InitOptions{Dir: pki}); err != nil {
		t.Fatal(err)
	}
	runAs := "root"
	if os.Geteuid() != 0 {
		runAs = ""
	}
	vps := hostconfig.VPSStack("mqtt.example.com")
	vps.IPv6 = true
	vps.StatusAllow = []string{"203.0.113.0/24", "127.0.0.1/32"}
	dw := hostconfig.LocalStack(filepath.Join(t.TempDir(), "state"), pki, runAs)
	dw.DeviceWSS = true
	for name, st := range map[string]hostconfig.Stack{
		"local":           hostconfig.LocalStack(filepath.Join(t.TempDir(), "state"), pki, runAs),
		"vps":             vps,
		"local-devicewss": dw,
	} {
		t.Run(name, func(t *testing.T) {
			if name == "vps" {
				tmp := t.TempDir()
				p := hostconfig.LocalPaths(tmp, pki)
				p.SystemdDropins, p.NftablesConf, p.ProvisionScript = filepath.Join(tmp, "systemd"), filepath.Join(tmp, "nft.conf"), filepath.Join(tmp, "provision")
				st.Paths = p
			}
			files, err := hostconfig.Render(st)
			if err != nil {
				t.Fatal(err)
			}
			writeFiles(t, files)
			os.MkdirAll(st.Paths.NginxTempDir, 0o755)
			out, err := exec.Command(local.NginxBin, "-t", "-c", st.Paths.NginxConf, "-e", st.Paths.NginxErrorLog).CombinedOutput()
			if err != nil {
				t.Fatalf("nginx -t rejected the rendered %s config: %v\n%s\n%s", name, err, out, files[2].Content)
			}
			if !strings.Contains(string(out), "test is successful") {
				t.Fatalf("nginx -t: %s", out)
			}
		})
	}
}

// listeningSockets lists the sockets daemon d of the stack listens on, as
// its host.Host sees them (infra/local: /proc of the pid it started).
func listeningSockets(t *testing.T, s *stacktest.Stack, d host.Daemon) []string {
	t.Helper()
	ls, err := s.Host().Listeners(context.Background())
	if err != nil {
		t.Fatalf("listeners: %v", err)
	}
	var got []string
	for _, l := range ls {
		if l.Daemon == d {
			got = append(got, l.Addr.String())
		}
	}
	sort.Strings(got)
	return got
}

// TestDaemonsListenExactlyWhereRendered starts the real mosquitto and nginx
// on the rendered files and asserts the exact set of listening sockets
// (NET-01/02): no hidden 0.0.0.0:1883 (F1), the WebSocket listener on
// 127.0.0.1 only (F2), nothing else. It also shows the broker accepted the
// configuration without warnings about unknown options.
func TestDaemonsListenExactlyWhereRendered(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithOpsPort())
	lo := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	want := []string{lo(s.Target.MQTTSPort), lo(s.Target.Local.OpsPort)}
	// one loopback WebSocket listener per WSS identity, consecutive ports
	nws := len(hostconfig.DefaultWSSIdentities())
	for i := range nws {
		want = append(want, lo(s.Target.Local.WSPort+i))
	}
	sort.Strings(want)
	if got := listeningSockets(t, s, host.Mosquitto); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("mosquitto listens on %v, want exactly %v", got, want)
	}
	want = []string{lo(s.Target.Local.HTTPSPort), lo(s.Target.Local.HTTPPort)}
	sort.Strings(want)
	if got := listeningSockets(t, s, host.Nginx); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("nginx master listens on %v, want exactly %v", got, want)
	}
	log := s.MosquittoLog()
	for _, bad := range []string{"Error", "Unknown configuration", "deprecated"} {
		if strings.Contains(log, bad) {
			t.Errorf("mosquitto log mentions %q:\n%s", bad, log)
		}
	}
	for _, wantLine := range []string{
		"Opening ipv4 listen socket on port " + strconv.Itoa(s.Target.MQTTSPort),
		"Opening websockets listen socket on port " + strconv.Itoa(s.Target.Local.WSPort),
		"Opening websockets listen socket on port " + strconv.Itoa(s.Target.Local.WSPort+nws-1),
	} {
		if !strings.Contains(log, wantLine) {
			t.Errorf("mosquitto log lacks %q:\n%s", wantLine, log)
		}
	}
	// the files the daemons run are the ones hostconfig renders (lint-clean),
	// read through the stack's host like the security suite reads them
	if _, findings, err := hostconfig.Lint(context.Background(), s.Host(), s.Target.Local.MosquittoConf); err != nil || len(findings) > 0 {
		t.Errorf("running mosquitto.conf and ACL fail lint: %v %v", err, findings)
	}
}

// TestSocketSetCatchesF2 removes `socket_domain ipv4` from the WebSocket
// listener (a WithMutation, as the security suite does) and expects the
// socket-set assertion above to see the wildcard bind: the check has teeth.
func TestSocketSetCatchesF2(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithMutation(func(files []hostconfig.File) []hostconfig.File {
		for i, f := range files {
			if !strings.HasSuffix(f.Path, "mosquitto.conf") {
				continue
			}
			c := string(f.Content)
			ws := strings.Index(c, "protocol websockets")
			head := strings.LastIndex(c[:ws], "socket_domain ipv4\n")
			files[i].Content = []byte(c[:head] + c[head+len("socket_domain ipv4\n"):])
		}
		return files
	}))
	ws := strconv.Itoa(s.Target.Local.WSPort)
	got := listeningSockets(t, s, host.Mosquitto)
	loopbackOnly := true
	for _, a := range got {
		if strings.HasSuffix(a, ":"+ws) && !strings.HasPrefix(a, "127.0.0.1:") {
			loopbackOnly = false
		}
	}
	if loopbackOnly {
		t.Fatalf("without socket_domain ipv4 the WebSocket listener stayed on loopback (%v); F2 no longer reproduces on this build", got)
	}
	_, findings, err := hostconfig.Lint(context.Background(), s.Host(), s.Target.Local.MosquittoConf)
	if err != nil || !strings.Contains(fmt.Sprint(findings), "(F2)") {
		t.Errorf("lint did not flag the mutated config: %v %v", err, findings)
	}
}
