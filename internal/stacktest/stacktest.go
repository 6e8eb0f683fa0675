// Package stacktest brings up the real local stack (mosquitto + nginx from
// Debian's packages, configured by infra/hostconfig through infra/local) for
// integration tests of every package. Each Start gets its own state
// directory in t.TempDir() and free loopback ports; the PKI is shared by the
// whole test binary (created once, devices issued on demand) unless a test
// asks for a private one, e.g. to revoke certificates.
//
// Nothing is skipped: when the daemons are missing and the test runs as
// root they are installed with apt-get, otherwise the test fails with the
// exact command.
//
//	func TestX(t *testing.T) {
//		s := stacktest.Start(t, stacktest.WithDevices(10))
//		cfg := s.ClientTLS("dev-00001") // dial s.Target.MQTTSAddr() with it
//		...
//	}
package stacktest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/host"
	"github.com/mqttstack/mqttstack/host/sshhost"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/infra/local"
	"github.com/mqttstack/mqttstack/internal/freeport"
	"github.com/mqttstack/mqttstack/internal/sshconn"
	"github.com/mqttstack/mqttstack/internal/sshconn/sshdtest"
	"github.com/mqttstack/mqttstack/target"
)

// Stack is a running local stack owned by one test. t.Cleanup stops it.
type Stack struct {
	Target     *target.Target
	TargetPath string
	StateDir   string
	PKIDir     string
	// Devices are the device ids issued for this stack (WithDevices,
	// WithDeviceIDs), in order.
	Devices []string

	t testing.TB

	sshOnce sync.Once
	ssh     host.Host // SSHHost's, made once
	sshErr  error
}

type config struct {
	devices    int
	deviceIDs  []string
	mutate     []func([]hostconfig.File) []hostconfig.File
	configure  []func(*hostconfig.Stack)
	privatePKI bool
	pkiDir     string
	opsPort    bool
	deviceWSS  bool
}

// Option configures Start.
type Option func(*config)

// WithDevices issues dev-00001 … dev-N (certs.DeviceIDs with prefix
// "dev-") before the stack starts, so they are in the password file too.
func WithDevices(n int) Option { return func(c *config) { c.devices = n } }

// WithDeviceIDs issues these ids as well (any names passing
// certs.ValidateID, e.g. "devA", "devB").
func WithDeviceIDs(ids ...string) Option {
	return func(c *config) { c.deviceIDs = append(c.deviceIDs, ids...) }
}

// WithMutation edits the rendered files before the daemons start: the
// security suite removes one hardening at a time to prove its check
// notices. Mutations run in order; see ReplaceLine and DropLines.
func WithMutation(f func(files []hostconfig.File) []hostconfig.File) Option {
	return func(c *config) { c.mutate = append(c.mutate, f) }
}

// WithStack adjusts the hostconfig.Stack before rendering (limits,
// StatusAllow, observers, …). Ports and paths are chosen by Start and
// should be left alone.
func WithStack(f func(*hostconfig.Stack)) Option {
	return func(c *config) { c.configure = append(c.configure, f) }
}

// WithPrivatePKI gives the stack its own PKI in t.TempDir() instead of the
// binary-wide one: use it for tests that revoke or re-issue identities.
func WithPrivatePKI() Option { return func(c *config) { c.privatePKI = true } }

// WithPKIDir runs the stack on an existing PKI directory that the test
// prepared (e.g. with unusual certs.InitOptions). It is not removed.
func WithPKIDir(dir string) Option { return func(c *config) { c.pkiDir = dir } }

// WithOpsPort enables mosquitto's loopback password listener on a free port
// (Target.Local.OpsPort).
func WithOpsPort() Option { return func(c *config) { c.opsPort = true } }

// WithDeviceWSS renders the opt-in DeviceWSS mode (hostconfig.Stack
// DeviceWSS): a shared WebSocket listener that nginx uses for device
// certificates, so devices can connect over wss. It does not bind the
// certificate to the username (F8); the target says wss_devices: true.
func WithDeviceWSS() Option { return func(c *config) { c.deviceWSS = true } }

// shared is the binary-wide PKI: created on first use, removed by Main.
var shared struct {
	mu   sync.Mutex
	dir  string
	auth *certs.Authority
	err  error
}

// Main runs the tests and removes the shared PKI afterwards. Use it from a
// TestMain when the package starts stacks:
//
//	func TestMain(m *testing.M) { os.Exit(stacktest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	shared.mu.Lock()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	shared.mu.Unlock()
	return code
}

// sharedPKI returns the binary-wide PKI, creating it once.
func sharedPKI() (string, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.dir != "" || shared.err != nil {
		return shared.dir, shared.err
	}
	dir, err := os.MkdirTemp("", "mqttstack-stacktest-pki-")
	if err != nil {
		shared.err = err
		return "", err
	}
	if err := initPKI(dir); err != nil {
		shared.err = err
		os.RemoveAll(dir)
		return "", err
	}
	shared.dir = dir
	return dir, nil
}

// initPKI creates a PKI in dir with the SANs infra/local would use, so that
// local.Up only opens it.
func initPKI(dir string) error {
	_, err := certs.Init(certs.InitOptions{
		Dir:        dir,
		ServerName: certs.DefaultServerName,
		DNSNames:   []string{"localhost"},
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1)},
		Force:      true,
	})
	return err
}

// issue pre-issues the identities of c in pki under the shared lock, so two
// parallel tests never write the same id at once; local.Up then finds them
// all present.
func issue(ctx context.Context, pki string, c *config) error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	a, err := certs.Open(pki)
	if err != nil {
		return fmt.Errorf("open PKI: %w", err)
	}
	ids := []string{local.ProbeIdentity}
	if c.devices > 0 {
		ids = append(ids, certs.DeviceIDs(local.DevicePrefix, 1, c.devices)...)
	}
	ids = append(ids, c.deviceIDs...)
	if _, err := a.IssueClients(ctx, ids); err != nil {
		return fmt.Errorf("issue identities: %w", err)
	}
	return nil
}

// Start brings up a stack for t and registers its teardown with t.Cleanup.
// It fails t (never skips) when the stack cannot start.
func Start(t testing.TB, opts ...Option) *Stack {
	t.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	ctx := context.Background()
	if err := local.EnsureDaemons(ctx, testLog{t}); err != nil {
		t.Fatalf("stacktest: %v", err)
	}
	pki := c.pkiDir
	switch {
	case pki != "":
	case c.privatePKI:
		pki = filepath.Join(t.TempDir(), "pki")
		if err := initPKI(pki); err != nil {
			t.Fatalf("stacktest: private PKI: %v", err)
		}
	default:
		var err error
		if pki, err = sharedPKI(); err != nil {
			t.Fatalf("stacktest: shared PKI: %v", err)
		}
	}
	if err := issue(ctx, pki, &c); err != nil {
		t.Fatalf("stacktest: %v", err)
	}
	// the broker's WebSocket listeners take consecutive ports from WSPort:
	// one per WSS identity, plus the shared device listener
	probe := hostconfig.LocalStack("/x", "/y", "")
	probe.DeviceWSS = c.deviceWSS
	for _, f := range c.configure {
		f(&probe)
	}
	wsCount := len(probe.WSListeners())
	base := t.TempDir()
	var (
		tg  *target.Target
		err error
	)
	// Free ports are picked by listening on :0 and closing; another process
	// can take one before the daemons bind it, so retry a few times.
	for attempt := 1; attempt <= 4; attempt++ {
		state := filepath.Join(base, fmt.Sprintf("state%d", attempt))
		ports, wsBase, perr := freeport.Take(4, wsCount)
		if perr != nil {
			t.Fatalf("stacktest: free ports: %v", perr)
		}
		o := local.Options{
			StateDir:  state,
			PKIDir:    pki,
			MQTTSPort: ports[0], WSPort: wsBase, HTTPSPort: ports[1], HTTPPort: ports[2],
			Devices:   c.devices,
			DeviceIDs: c.deviceIDs,
			DeviceWSS: c.deviceWSS,
			Log:       testLog{t},
			// a test binary killed by -timeout must not leave daemons
			TieToProcess: true,
			Configure: func(st *hostconfig.Stack) {
				for _, f := range c.configure {
					f(st)
				}
			},
		}
		if c.opsPort {
			o.OpsPort = ports[3]
		}
		if len(c.mutate) > 0 {
			o.Mutate = func(files []hostconfig.File) []hostconfig.File {
				for _, f := range c.mutate {
					files = f(files)
				}
				return files
			}
		}
		tg, err = local.Up(ctx, o)
		if err == nil {
			break
		}
		local.Down(ctx, state)
		if !portRace(err) {
			break
		}
		t.Logf("stacktest: port taken during start (attempt %d), retrying: %v", attempt, err)
	}
	if err != nil {
		t.Fatalf("stacktest: local up: %v", err)
	}
	s := &Stack{
		Target:     tg,
		TargetPath: local.TargetPath(tg.Local.StateDir),
		StateDir:   tg.Local.StateDir,
		PKIDir:     pki,
		t:          t,
	}
	if c.devices > 0 {
		s.Devices = certs.DeviceIDs(local.DevicePrefix, 1, c.devices)
	}
	s.Devices = append(s.Devices, c.deviceIDs...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stacktest: mosquitto log (tail):\n%s", lastLines(s.MosquittoLog(), 40))
			t.Logf("stacktest: nginx error log (tail):\n%s", lastLines(s.NginxLog(), 20))
		}
		if err := local.Down(context.Background(), s.StateDir); err != nil {
			t.Errorf("stacktest: down: %v", err)
		}
	})
	return s
}

// portRace reports whether err looks like a port taken between our probe
// and the daemon's bind.
func portRace(err error) bool {
	var pe *local.PortInUseError
	if errors.As(err, &pe) {
		return true
	}
	m := err.Error()
	return strings.Contains(m, "Address already in use") || strings.Contains(m, "address already in use") ||
		// mosquitto's words when libwebsockets cannot bind a port
		strings.Contains(m, "Unable to create websockets listener")
}

// Stop stops both daemons (and removes the target file). Cleanup calls it
// too; calling it twice is fine.
func (s *Stack) Stop() {
	s.t.Helper()
	if err := local.Down(context.Background(), s.StateDir); err != nil {
		s.t.Fatalf("stacktest: stop: %v", err)
	}
}

// Kill SIGKILLs mosquitto, as a crash would: no clean disconnects, no
// persistence save, pid file left behind. Restart brings it back.
func (s *Stack) Kill() {
	s.t.Helper()
	pid := s.MosquittoPID()
	if pid == 0 {
		s.t.Fatalf("stacktest: kill: mosquitto is not running")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		s.t.Fatalf("stacktest: kill mosquitto (pid %d): %v", pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			s.t.Fatalf("stacktest: mosquitto pid %d survived SIGKILL for 10 s", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Restart stops mosquitto if it runs (SIGTERM; persistence is saved) and
// starts it again on the same config and ports, waiting until it accepts an
// mTLS CONNECT. Sessions and retained messages survive through persistence.
func (s *Stack) Restart() {
	s.t.Helper()
	ctx := context.Background()
	if err := local.Stop(ctx, s.StateDir, local.Mosquitto); err != nil {
		s.t.Fatalf("stacktest: restart: %v", err)
	}
	if err := local.Start(ctx, s.StateDir, local.Mosquitto, local.StartOptions{Log: testLog{s.t}, TieToProcess: true}); err != nil {
		s.t.Fatalf("stacktest: restart: %v", err)
	}
	s.refreshTarget()
}

// Reload sends SIGHUP to mosquitto and waits until it has reloaded
// (certificates, CRL, ACL, passwords; live sessions stay: F10).
func (s *Stack) Reload() {
	s.t.Helper()
	if err := local.Reload(context.Background(), s.StateDir, local.Mosquitto); err != nil {
		s.t.Fatalf("stacktest: reload mosquitto: %v", err)
	}
}

// ReloadNginx sends SIGHUP to nginx and waits until the old workers stop
// accepting (new config, certificate and CRL in effect).
func (s *Stack) ReloadNginx() {
	s.t.Helper()
	if err := local.Reload(context.Background(), s.StateDir, local.Nginx); err != nil {
		s.t.Fatalf("stacktest: reload nginx: %v", err)
	}
}

// RefreshPasswords rewrites the password file from every identity in the
// PKI and reloads mosquitto: call it after issuing identities that will
// connect over wss.
func (s *Stack) RefreshPasswords() {
	s.t.Helper()
	if err := local.RefreshPasswords(context.Background(), s.StateDir); err != nil {
		s.t.Fatalf("stacktest: refresh passwords: %v", err)
	}
}

// Host is the stack as a host.Host (infra/local's): what the security and
// load packages take in their options. It follows restarts; Close is a
// no-op.
func (s *Stack) Host() host.Host {
	s.t.Helper()
	h, err := local.OpenHost(s.StateDir)
	if err != nil {
		s.t.Fatalf("stacktest: host: %v", err)
	}
	return h
}

// SSHHost is the stack as a deployed stack's tools see it: a host.Host
// (package host/sshhost) over a real sshd started on 127.0.0.1 for this
// test (host key pinned), with the stack's local paths as the host's
// layout. Reload takes the SIGHUP path (no systemd here). One sshd and one
// connection per Stack; both end with the test.
func (s *Stack) SSHHost() host.Host {
	s.t.Helper()
	s.sshOnce.Do(func() {
		srv := sshdtest.Start(s.t, sshdtest.Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := sshconn.Dial(ctx, srv.Config())
		if err != nil {
			s.sshErr = fmt.Errorf("dial the test sshd: %w\n%s", err, srv.Log())
			return
		}
		h := sshhost.New(c, srv.User, hostconfig.LocalPaths(s.StateDir, s.PKIDir))
		s.t.Cleanup(func() { h.Close() })
		s.ssh = h
	})
	if s.sshErr != nil {
		s.t.Fatalf("stacktest: ssh host: %v", s.sshErr)
	}
	return s.ssh
}

// Authority opens the stack's PKI, e.g. to revoke (use WithPrivatePKI for
// that) or to issue negative test identities.
func (s *Stack) Authority() *certs.Authority {
	s.t.Helper()
	a, err := certs.Open(s.PKIDir)
	if err != nil {
		s.t.Fatalf("stacktest: open PKI: %v", err)
	}
	return a
}

// ClientTLS is a TLS client config for identity id: its certificate, the
// private CA as roots and SNI = the target's server name (nginx rejects
// any other SNI). Dial s.Target.MQTTSAddr() or the wss/https URLs with it.
func (s *Stack) ClientTLS(id string) *tls.Config {
	s.t.Helper()
	cfg := s.ServerTLS()
	cert, err := certs.LoadClient(s.PKIDir, id)
	if err != nil {
		s.t.Fatalf("stacktest: client %s: %v", id, err)
	}
	cfg.Certificates = []tls.Certificate{cert}
	return cfg
}

// ServerTLS is a TLS client config without a client certificate.
func (s *Stack) ServerTLS() *tls.Config {
	s.t.Helper()
	roots, err := certs.LoadCAPool(s.Target.CACert)
	if err != nil {
		s.t.Fatalf("stacktest: CA: %v", err)
	}
	return &tls.Config{RootCAs: roots, ServerName: s.Target.ServerName, MinVersion: tls.VersionTLS12}
}

// Password is the wss password of identity id.
func (s *Stack) Password(id string) string {
	s.t.Helper()
	pw, err := certs.ClientPassword(s.PKIDir, id)
	if err != nil {
		s.t.Fatalf("stacktest: password %s: %v", id, err)
	}
	return pw
}

// MosquittoPID is the broker's pid, 0 when it is not running.
func (s *Stack) MosquittoPID() int {
	pid, err := local.PID(s.StateDir, local.Mosquitto)
	if err != nil {
		return 0
	}
	return pid
}

// NginxPID is nginx's master pid, 0 when it is not running.
func (s *Stack) NginxPID() int {
	pid, err := local.PID(s.StateDir, local.Nginx)
	if err != nil {
		return 0
	}
	return pid
}

// MosquittoLog is the broker's whole log so far.
func (s *Stack) MosquittoLog() string {
	b, _ := os.ReadFile(local.LogPath(s.StateDir, local.Mosquitto))
	return string(b)
}

// NginxLog is nginx's error log so far.
func (s *Stack) NginxLog() string {
	b, _ := os.ReadFile(local.LogPath(s.StateDir, local.Nginx))
	return string(b)
}

// File returns the rendered file at path as it was written for this stack
// (after mutations), e.g. s.File(s.Target.Local.MosquittoConf).
func (s *Stack) File(path string) string {
	s.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatalf("stacktest: %v", err)
	}
	return string(b)
}

func (s *Stack) refreshTarget() {
	t, err := target.Load(s.TargetPath)
	if err != nil {
		s.t.Fatalf("stacktest: reload target: %v", err)
	}
	s.Target = t
}

func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// testLog adapts t.Logf to the io.Writer infra/local logs to.
type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// ReplaceLine returns a mutation that replaces every line equal to old
// (after trimming spaces) with repl in the file whose path ends with
// suffix (e.g. "mosquitto.conf", "/acl", "nginx.conf"); repl "" deletes the
// line. A mutation that matches nothing panics the test setup, so a renamed
// directive cannot silently turn a negative test into a positive one.
func ReplaceLine(suffix, old, repl string) func([]hostconfig.File) []hostconfig.File {
	return func(files []hostconfig.File) []hostconfig.File {
		hit := false
		for i, f := range files {
			if !strings.HasSuffix(f.Path, suffix) {
				continue
			}
			var out []string
			for _, line := range strings.Split(string(f.Content), "\n") {
				if strings.TrimSpace(line) == old {
					hit = true
					if repl == "" {
						continue
					}
					line = repl
				}
				out = append(out, line)
			}
			files[i].Content = []byte(strings.Join(out, "\n"))
		}
		if !hit {
			panic(fmt.Sprintf("stacktest.ReplaceLine: no line %q in a file ending %q", old, suffix))
		}
		return files
	}
}

// DropLines returns a mutation deleting every line that starts with prefix
// (after trimming spaces) in the file whose path ends with suffix; it panics
// when none matches, like ReplaceLine.
func DropLines(suffix, prefix string) func([]hostconfig.File) []hostconfig.File {
	return func(files []hostconfig.File) []hostconfig.File {
		hit := false
		for i, f := range files {
			if !strings.HasSuffix(f.Path, suffix) {
				continue
			}
			var out []string
			for _, line := range strings.Split(string(f.Content), "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), prefix) {
					hit = true
					continue
				}
				out = append(out, line)
			}
			files[i].Content = []byte(strings.Join(out, "\n"))
		}
		if !hit {
			panic(fmt.Sprintf("stacktest.DropLines: no line starting %q in a file ending %q", prefix, suffix))
		}
		return files
	}
}
