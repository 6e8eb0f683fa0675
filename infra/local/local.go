// Package local runs the stack on this machine: the real mosquitto and nginx
// from Debian's packages, on 127.0.0.1, with the configuration rendered by
// infra/hostconfig (the same files a VPS gets, with local paths and ports)
// and a private PKI from package certs. Up writes a target file that every
// other command reads.
//
// The daemons are detached children (their own session and process group)
// recorded by pid files in the state directory; Down stops exactly those
// pids after checking /proc/<pid>/cmdline, never anything found by name.
package local

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/internal/atomicfile"
	"github.com/mqttstack/mqttstack/target"
)

// Defaults for Options.
const (
	DefaultStateDir  = ".mqttstack/local"
	DefaultPKIDir    = ".mqttstack/pki"
	DefaultMQTTSPort = 8883
	DefaultWSPort    = 9001
	DefaultHTTPSPort = 8443
	DefaultHTTPPort  = 8080
	// ProbeIdentity is the client identity Up uses for its readiness
	// CONNECT. It is not an observer: probing with one would kick a running
	// observer off (use_username_as_clientid).
	ProbeIdentity = "local-probe"
	// DevicePrefix names the devices Up pre-issues (certs.DeviceIDs).
	DevicePrefix = "dev-"
)

// Options configure Up. Zero values select the defaults.
type Options struct {
	StateDir string // default DefaultStateDir
	PKIDir   string // default DefaultPKIDir; created (certs.Init) if absent
	// ServerName is the PKI's server name when Up creates the PKI (default
	// certs.DefaultServerName); nginx also answers to it. The target's
	// server name is always "localhost" (a SAN Up puts in the server
	// certificate), because it resolves without /etc/hosts edits and
	// nginx needs the Host header to equal the SNI.
	ServerName string
	MQTTSPort  int // default 8883
	// WSPort is the first of the broker's loopback WebSocket ports behind
	// nginx (default 9001): one per WSS identity (observers and backends,
	// hostconfig.Stack.WSSIdentities), plus one with DeviceWSS, so
	// WSPort … WSPort+n-1 must all be free.
	WSPort    int
	OpsPort   int // loopback password listener; 0 = none
	HTTPSPort int // default 8443
	HTTPPort  int // default 8080
	// Devices pre-issues dev-00001 … dev-N (certs.DeviceIDs) so their
	// passwords are in the WebSocket listener's password file from the
	// start.
	Devices int
	// DeviceIDs are issued in addition to Devices (any names that pass
	// certs.ValidateID).
	DeviceIDs []string
	// DeviceWSS lets device certificates use wss (a shared WebSocket
	// listener with every identity's password; hostconfig.Stack.DeviceWSS)
	// for load tests of the wss path. It does NOT bind the certificate to
	// the username (F8): the security suite's WEB-05 fails in this mode.
	// The target records it as wss_devices.
	DeviceWSS bool
	// Log receives progress lines (nil = discard).
	Log io.Writer
	// ReadyTimeout bounds the wait for each daemon (default 30 s).
	ReadyTimeout time.Duration
	// Configure adjusts the rendered stack (limits, StatusAllow, …) before
	// validation. Used by tests; nil = as rendered.
	Configure func(*hostconfig.Stack)
	// Mutate edits the rendered files just before they are written, e.g. to
	// remove one hardening line for a security regression test. nil = none.
	Mutate func([]hostconfig.File) []hostconfig.File
	// TieToProcess makes the kernel SIGTERM the daemons when this process
	// dies (PR_SET_PDEATHSIG), so a test binary killed by -timeout leaves
	// no broker behind on a shared machine. The CLI leaves it false: its
	// daemons must outlive `mqttstack local up`.
	TieToProcess bool
}

// StartOptions configure Start.
type StartOptions struct {
	Log          io.Writer     // progress lines (nil = discard)
	ReadyTimeout time.Duration // default 30 s
	TieToProcess bool          // see Options.TieToProcess
}

func (o *Options) defaults() error {
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if o.PKIDir == "" {
		o.PKIDir = DefaultPKIDir
	}
	var err error
	if o.StateDir, err = filepath.Abs(o.StateDir); err != nil {
		return err
	}
	if o.PKIDir, err = filepath.Abs(o.PKIDir); err != nil {
		return err
	}
	if o.ServerName == "" {
		o.ServerName = certs.DefaultServerName
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.MQTTSPort, DefaultMQTTSPort)
	def(&o.WSPort, DefaultWSPort)
	def(&o.HTTPSPort, DefaultHTTPSPort)
	def(&o.HTTPPort, DefaultHTTPPort)
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

// TargetPath is where Up writes the target of the stack in stateDir.
func TargetPath(stateDir string) string { return filepath.Join(stateDir, "target.json") }

// PortInUseError says which port is taken and which flag moves it.
type PortInUseError struct {
	Name string // "mqtts", "ws", "ops", "https", "http"
	Addr string
	Flag string
	Err  error
}

func (e *PortInUseError) Error() string {
	return fmt.Sprintf("%s port %s is in use (%v); free it or pick another with %s", e.Name, e.Addr, e.Err, e.Flag)
}

func (e *PortInUseError) Unwrap() error { return e.Err }

// Up brings the local stack up and returns its target (also written to
// TargetPath(StateDir)). If the stack in StateDir is already running, Up
// starts nothing new: it checks health, restarts a daemon that died, and
// returns the existing target (changed options are ignored; `down` first).
func Up(ctx context.Context, o Options) (*target.Target, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if err := EnsureDaemons(ctx, o.Log); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	unlock, err := lockState(ctx, o.StateDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if t, err := resume(ctx, o); t != nil || err != nil {
		return t, err
	}

	st, err := o.stack()
	if err != nil {
		return nil, err
	}
	for _, d := range []Daemon{Mosquitto, Nginx} {
		if err := checkPorts(stackPorts(st, d)); err != nil {
			return nil, err
		}
	}

	_, err = ensurePKI(ctx, o)
	if err != nil {
		return nil, err
	}
	files, err := hostconfig.Render(st)
	if err != nil {
		return nil, err
	}
	pws, err := passwordFiles(st, o.PKIDir)
	if err != nil {
		return nil, err
	}
	files = append(files, pws...)
	if o.Mutate != nil {
		files = o.Mutate(files)
	}
	for _, dir := range []string{
		filepath.Dir(st.Paths.MosquittoConf), st.Paths.PersistenceDir, filepath.Dir(st.Paths.MosquittoLog),
		filepath.Dir(st.Paths.NginxConf), st.Paths.NginxTempDir, st.Paths.WebRoot, st.Paths.ACMERoot,
		filepath.Dir(st.Paths.NginxErrorLog),
	} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			return nil, err
		}
		if err := atomicfile.Write(f.Path, f.Content, f.Mode); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.Path, err)
		}
	}

	t := &target.Target{
		Name:       "local",
		Host:       st.BindAddress,
		ServerName: st.ServerName,
		MQTTSPort:  st.MQTTSPort,
		WSSURL:     fmt.Sprintf("wss://%s/mqtt", net.JoinHostPort(st.ServerName, strconv.Itoa(st.HTTPSPort))),
		HTTPSURL:   fmt.Sprintf("https://%s/", net.JoinHostPort(st.ServerName, strconv.Itoa(st.HTTPSPort))),
		CACert:     filepath.Join(o.PKIDir, "ca.crt"),
		PKIDir:     o.PKIDir,
		Observer:   st.Observers[0],
		Backend:    st.Backends[0],
		WSSDevices: st.DeviceWSS,
		Local: &target.Local{
			StateDir:      o.StateDir,
			WSPort:        st.WSPort,
			OpsPort:       st.OpsPort,
			HTTPPort:      st.HTTPPort,
			HTTPSPort:     st.HTTPSPort,
			MosquittoConf: st.Paths.MosquittoConf,
			NginxConf:     st.Paths.NginxConf,
		},
	}
	// The target is written before the daemons start so that Start, Down
	// and Status can find everything even if Up fails half way.
	if err := t.Save(TargetPath(o.StateDir)); err != nil {
		return nil, fmt.Errorf("write target: %w", err)
	}
	for _, d := range []Daemon{Mosquitto, Nginx} {
		if err := start(ctx, t, d, StartOptions{Log: o.Log, ReadyTimeout: o.ReadyTimeout, TieToProcess: o.TieToProcess}); err != nil {
			down(context.Background(), o.StateDir)
			return nil, err
		}
	}
	return t, t.Save(TargetPath(o.StateDir))
}

// stack is the hostconfig description Up renders.
func (o Options) stack() (hostconfig.Stack, error) {
	runAs := ""
	if u, err := user.Current(); err == nil {
		runAs = u.Username
	}
	st := hostconfig.LocalStack(o.StateDir, o.PKIDir, runAs)
	if o.ServerName != st.ServerName {
		st.ServerAliases = append(st.ServerAliases, o.ServerName)
	}
	st.MQTTSPort, st.WSPort, st.OpsPort = o.MQTTSPort, o.WSPort, o.OpsPort
	st.DeviceWSS = o.DeviceWSS
	st.HTTPSPort, st.HTTPPort = o.HTTPSPort, o.HTTPPort
	// nginx cannot raise its workers above our hard limit
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Max < uint64(st.Limits.NoFile) {
		st.Limits.NoFile = int(rl.Max)
		if st.Limits.NginxWorkerConnections > st.Limits.NoFile/2 {
			st.Limits.NginxWorkerConnections = st.Limits.NoFile / 2
		}
	}
	if o.Configure != nil {
		o.Configure(&st)
	}
	if err := st.Validate(); err != nil {
		return st, fmt.Errorf("local stack: %w", err)
	}
	return st, nil
}

// resume handles a stack that is already (partly) running in StateDir:
// returns its target after restarting what died, or (nil, nil) when nothing
// of it runs. Stale pid files are removed on the way.
func resume(ctx context.Context, o Options) (*target.Target, error) {
	tp := TargetPath(o.StateDir)
	t, terr := target.Load(tp)
	var running []Daemon
	for _, d := range []Daemon{Mosquitto, Nginx} {
		conf := ""
		if terr == nil && t.Local != nil {
			conf = confOf(t, d)
		} else {
			conf = filepath.Join(o.StateDir, string(d), string(d)+".conf")
		}
		if _, ok, err := readPID(o.StateDir, d, conf); err != nil {
			return nil, err
		} else if ok {
			running = append(running, d)
		}
	}
	if len(running) == 0 {
		return nil, nil
	}
	if terr != nil || t.Local == nil {
		return nil, fmt.Errorf("%s runs from %s but its target file is unreadable (%v); run `mqttstack local down --state-dir %s` first", joinDaemons(running), o.StateDir, terr, o.StateDir)
	}
	fmt.Fprintf(o.Log, "local stack in %s is already running (%s); not starting another\n", o.StateDir, joinDaemons(running))
	for _, d := range []Daemon{Mosquitto, Nginx} {
		if contains(running, d) {
			continue
		}
		if err := start(ctx, t, d, StartOptions{Log: o.Log, ReadyTimeout: o.ReadyTimeout, TieToProcess: o.TieToProcess}); err != nil {
			return nil, err
		}
	}
	if err := waitReady(ctx, t, Mosquitto, nil, o.ReadyTimeout); err != nil {
		return nil, err
	}
	if err := waitReady(ctx, t, Nginx, nil, o.ReadyTimeout); err != nil {
		return nil, err
	}
	return t, t.Save(tp)
}

func confOf(t *target.Target, d Daemon) string {
	if d == Mosquitto {
		return t.Local.MosquittoConf
	}
	return t.Local.NginxConf
}

func contains(ds []Daemon, d Daemon) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

func joinDaemons(ds []Daemon) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = string(d)
	}
	return strings.Join(s, " and ")
}

// ensurePKI opens the PKI in o.PKIDir, creating it if absent, and issues the
// probe identity and the requested devices (idempotent).
func ensurePKI(ctx context.Context, o Options) (*certs.Authority, error) {
	var auth *certs.Authority
	var err error
	if _, serr := os.Stat(filepath.Join(o.PKIDir, "ca.crt")); errors.Is(serr, os.ErrNotExist) {
		fmt.Fprintf(o.Log, "creating PKI in %s\n", o.PKIDir)
		auth, err = certs.Init(certs.InitOptions{
			Dir:        o.PKIDir,
			ServerName: o.ServerName,
			DNSNames:   []string{"localhost"},
			IPs:        []net.IP{net.IPv4(127, 0, 0, 1)},
		})
	} else {
		auth, err = certs.Open(o.PKIDir)
	}
	if err != nil {
		return nil, fmt.Errorf("pki %s: %w", o.PKIDir, err)
	}
	if err := serverCertNames(o.PKIDir); err != nil {
		return nil, err
	}
	if err := freshCRL(auth, o); err != nil {
		return nil, err
	}
	ids := []string{ProbeIdentity}
	if o.Devices > 0 {
		ids = append(ids, certs.DeviceIDs(DevicePrefix, 1, o.Devices)...)
	}
	ids = append(ids, o.DeviceIDs...)
	res, err := auth.IssueClients(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("pki %s: issue: %w", o.PKIDir, err)
	}
	if len(res.Issued) > 0 {
		fmt.Fprintf(o.Log, "issued %d client identities in %s\n", len(res.Issued), o.PKIDir)
	}
	return auth, nil
}

// passwordFiles renders the broker's password files from every
// <pki>/clients/<id>.pass (hashed in parallel) but those of revoked
// identities (certs.MosquittoPasswordFile skips them): the shared file of
// every identity (ops listener; the device listener with DeviceWSS) and one
// file per WSS identity holding only its own hash (hostconfig.PasswordFiles).
func passwordFiles(st hostconfig.Stack, pkiDir string) ([]hostconfig.File, error) {
	passes, err := filepath.Glob(filepath.Join(pkiDir, "clients", "*.pass"))
	if err != nil {
		return nil, err
	}
	sort.Strings(passes)
	ids := make([]string, 0, len(passes))
	for _, p := range passes {
		ids = append(ids, strings.TrimSuffix(filepath.Base(p), ".pass"))
	}
	shared, err := certs.MosquittoPasswordFile(pkiDir, ids)
	if err != nil {
		return nil, err
	}
	return hostconfig.PasswordFiles(st, shared)
}

// RefreshPasswords rewrites the password files of the running stack in
// stateDir from every identity in its PKI and makes mosquitto reload them
// (SIGHUP). Call it after issuing identities that will use wss (devices
// only with DeviceWSS), and after revoking one (its line goes). Each file
// is replaced atomically. Which files exist is read from the rendered
// mosquitto.conf, so the WSS identities and DeviceWSS of `up` are kept.
func RefreshPasswords(ctx context.Context, stateDir string) error {
	t, err := loadTarget(stateDir)
	if err != nil {
		return err
	}
	st, err := renderedStack(t)
	if err != nil {
		return err
	}
	files, err := passwordFiles(st, t.PKIDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(st.Paths.PasswordDir, 0o755); err != nil {
		return fmt.Errorf("password files: %w", err)
	}
	for _, f := range files {
		if err := atomicfile.Write(f.Path, f.Content, f.Mode); err != nil {
			return fmt.Errorf("password file: %w", err)
		}
	}
	return Reload(ctx, stateDir, Mosquitto)
}

// renderedStack rebuilds the parts of the running stack's description that
// follow from its rendered mosquitto.conf: the local paths, the WebSocket
// listeners' identities and whether the shared device listener exists.
func renderedStack(t *target.Target) (hostconfig.Stack, error) {
	st := hostconfig.LocalStack(t.Local.StateDir, t.PKIDir, "")
	ls, err := confListeners(t.Local.MosquittoConf)
	if err != nil {
		return st, err
	}
	st.WSSIdentities, st.DeviceWSS = nil, false
	for _, l := range ls {
		switch {
		case l.protocol != "websockets":
		case l.passwordFile == st.Paths.PasswordFile:
			st.DeviceWSS = true
		case filepath.Dir(l.passwordFile) == st.Paths.PasswordDir:
			st.WSSIdentities = append(st.WSSIdentities, filepath.Base(l.passwordFile))
		}
	}
	return st, nil
}

// confListener is one `listener` block of a rendered mosquitto.conf.
type confListener struct {
	port         int
	addr         string
	protocol     string
	passwordFile string
}

// confListeners reads the listeners of the rendered mosquitto.conf through
// hostconfig's reader (the one the linter and the security checks use).
func confListeners(conf string) ([]confListener, error) {
	c, err := hostconfig.ReadBrokerConfig(context.Background(), hostconfig.FS(os.DirFS("/")), conf)
	if err != nil {
		return nil, err
	}
	var out []confListener
	for _, l := range c.Listeners {
		if l.Port < 0 {
			return nil, fmt.Errorf("%s: %q: bad port", l.At(), "listener "+l.Value)
		}
		pw, _ := l.Get("password_file")
		out = append(out, confListener{port: l.Port, addr: l.Address, protocol: l.Protocol(), passwordFile: pw})
	}
	return out, nil
}

func loadTarget(stateDir string) (*target.Target, error) {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, err
	}
	t, err := target.Load(TargetPath(abs))
	if err != nil {
		return nil, err
	}
	if t.Local == nil {
		return nil, fmt.Errorf("%s is not a local stack's target (no \"local\" section)", TargetPath(abs))
	}
	return t, nil
}

// Start starts one daemon of the stack in stateDir from its already
// rendered config (e.g. after Kill in a crash test) and waits until it
// serves. It refuses to start a second copy.
func Start(ctx context.Context, stateDir string, d Daemon, o StartOptions) error {
	t, err := loadTarget(stateDir)
	if err != nil {
		return err
	}
	unlock, err := lockState(ctx, t.Local.StateDir)
	if err != nil {
		return err
	}
	defer unlock()
	return start(ctx, t, d, o)
}

func start(ctx context.Context, t *target.Target, d Daemon, o StartOptions) error {
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	timeout := o.ReadyTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	sd := t.Local.StateDir
	conf := confOf(t, d)
	if pid, ok, err := readPID(sd, d, conf); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("%s already runs (pid %d)", d, pid)
	}
	if err := checkPorts(targetPorts(t, d)); err != nil {
		return err
	}
	var bin string
	var args []string
	switch d {
	case Mosquitto:
		bin, args = MosquittoBin, []string{"-c", conf}
	case Nginx:
		// -p: relative paths (none are rendered) resolve in the state dir
		// instead of Debian's /usr/share/nginx; -e: errors before the
		// config's error_log is opened go to our log, not /var/log/nginx.
		bin, args = NginxBin, []string{"-c", conf, "-p", filepath.Join(sd, "nginx") + "/", "-e", filepath.Join(sd, "nginx", "error.log")}
	default:
		return fmt.Errorf("unknown daemon %q", d)
	}
	pid, exited, err := startDaemon(sd, d, bin, args, o.TieToProcess)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "started %s (pid %d)\n", d, pid)
	switch d {
	case Mosquitto:
		t.Local.MosquittoPID = pid
	case Nginx:
		t.Local.NginxPID = pid
	}
	if err := waitReady(ctx, t, d, exited, timeout); err != nil {
		stopPID(context.Background(), pid, 5*time.Second)
		os.Remove(pidPath(sd, d))
		return err
	}
	return t.Save(TargetPath(sd))
}

// prober returns the readiness probe of d.
func prober(t *target.Target, d Daemon, roots *x509.CertPool) (func(context.Context) error, error) {
	switch d {
	case Mosquitto:
		cert, err := certs.LoadClient(t.PKIDir, ProbeIdentity)
		if err != nil {
			return nil, fmt.Errorf("probe identity: %w", err)
		}
		return func(ctx context.Context) error { return ProbeMQTTS(ctx, t.MQTTSAddr(), t.ServerName, roots, cert) }, nil
	case Nginx:
		addr := net.JoinHostPort(t.Host, strconv.Itoa(t.Local.HTTPSPort))
		return func(ctx context.Context) error { return ProbeHTTPS(ctx, addr, t.ServerName, roots) }, nil
	}
	return nil, fmt.Errorf("unknown daemon %q", d)
}

// probeOnce runs d's probe a single time.
func probeOnce(ctx context.Context, t *target.Target, d Daemon) error {
	roots, err := certs.LoadCAPool(t.CACert)
	if err != nil {
		return err
	}
	probe, err := prober(t, d, roots)
	if err != nil {
		return err
	}
	return probe(ctx)
}

// waitReady polls d's probe until it succeeds, the process exits (then the
// error carries the tail of its logs) or timeout passes.
func waitReady(ctx context.Context, t *target.Target, d Daemon, exited <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	roots, err := certs.LoadCAPool(t.CACert)
	if err != nil {
		return err
	}
	probe, err := prober(t, d, roots)
	if err != nil {
		return err
	}
	var last error
	for {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		last = probe(pctx)
		pcancel()
		if last == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited during startup: %w", d, daemonErr(t, d))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v: %w\n%s", d, timeout, last, daemonLogs(t, d))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func daemonErr(t *target.Target, d Daemon) error {
	return errors.New(daemonLogs(t, d))
}

func daemonLogs(t *target.Target, d Daemon) string {
	sd := t.Local.StateDir
	var logs []string
	for _, p := range []string{outPath(sd, d), LogPath(sd, d)} {
		if s := tail(p, 15); s != "" {
			logs = append(logs, "--- "+p+"\n"+s)
		}
	}
	if len(logs) == 0 {
		return "(no log output)"
	}
	return strings.Join(logs, "\n")
}

// LogPath is the log file of d in stateDir (mosquitto's log_dest, nginx's
// error_log).
func LogPath(stateDir string, d Daemon) string {
	if d == Mosquitto {
		return filepath.Join(stateDir, "mosquitto", "mosquitto.log")
	}
	return filepath.Join(stateDir, "nginx", "error.log")
}

// PID returns the pid of d in the stack in stateDir, 0 if it is not running.
func PID(stateDir string, d Daemon) (int, error) {
	t, err := loadTarget(stateDir)
	if err != nil {
		return 0, err
	}
	pid, ok, err := readPID(t.Local.StateDir, d, confOf(t, d))
	if err != nil || !ok {
		return 0, err
	}
	return pid, nil
}

// Signal sends sig to d of the stack in stateDir (SIGHUP reloads
// certificates, CRL, ACL and passwords in mosquitto; SIGKILL simulates a
// crash and leaves the pid file behind, as a crash would).
func Signal(stateDir string, d Daemon, sig syscall.Signal) error {
	pid, err := PID(stateDir, d)
	if err != nil {
		return err
	}
	if pid == 0 {
		return fmt.Errorf("%s is not running in %s", d, stateDir)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal %v to %s (pid %d): %w", sig, d, pid, err)
	}
	return nil
}

// Stop stops d of the stack in stateDir: SIGTERM, then SIGKILL of its
// process group after 10 s. Its pid file is removed.
func Stop(ctx context.Context, stateDir string, d Daemon) error {
	return withExistingState(ctx, stateDir, func(abs string) error { return stop(ctx, abs, d) })
}

// withExistingState runs fn with the absolute state dir while holding its
// lock. A state dir that does not exist holds nothing to stop: fn is not
// called and the result is nil.
func withExistingState(ctx context.Context, stateDir string, fn func(abs string) error) error {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	unlock, err := lockState(ctx, abs)
	if err != nil {
		return err
	}
	defer unlock()
	return fn(abs)
}

func stop(ctx context.Context, abs string, d Daemon) error {
	conf := filepath.Join(abs, string(d), string(d)+".conf")
	if t, err := target.Load(TargetPath(abs)); err == nil && t.Local != nil {
		conf = confOf(t, d)
	}
	pid, ok, err := readPID(abs, d, conf)
	if err != nil {
		return err
	}
	if ok {
		if err := stopPID(ctx, pid, 10*time.Second); err != nil {
			return fmt.Errorf("stop %s: %w", d, err)
		}
	}
	os.Remove(pidPath(abs, d))
	return nil
}

// Down stops the stack in stateDir (only the pids it started, verified
// through /proc) and removes its pid files and target file. The PKI and
// the rendered files stay. Stopping a stack that is not running is not an
// error.
func Down(ctx context.Context, stateDir string) error {
	return withExistingState(ctx, stateDir, func(abs string) error { return down(ctx, abs) })
}

// down is Down with the state lock already held.
func down(ctx context.Context, abs string) error {
	var errs []error
	for _, d := range []Daemon{Nginx, Mosquitto} {
		if err := stop(ctx, abs, d); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.Remove(TargetPath(abs)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Status writes what runs in stateDir: each daemon's pid and whether it is
// alive, whether each port accepts connections, and the target path. It
// returns an error when the stack is not (fully) up.
func Status(ctx context.Context, stateDir string, w io.Writer) error {
	t, err := loadTarget(stateDir)
	if err != nil {
		fmt.Fprintf(w, "local stack in %s: not running (no target file)\n", stateDir)
		return fmt.Errorf("local stack in %s is not running: %w", stateDir, err)
	}
	sd := t.Local.StateDir
	fmt.Fprintf(w, "target      %s\n", TargetPath(sd))
	down := 0
	for _, d := range []Daemon{Mosquitto, Nginx} {
		pid, ok, err := readPID(sd, d, confOf(t, d))
		switch {
		case err != nil:
			fmt.Fprintf(w, "%-11s error: %v\n", d, err)
			down++
		case ok:
			fmt.Fprintf(w, "%-11s running (pid %d)\n", d, pid)
		default:
			fmt.Fprintf(w, "%-11s not running\n", d)
			down++
		}
	}
	ports := []struct {
		name string
		addr string
	}{
		{"mqtts", t.MQTTSAddr()},
		{"https", net.JoinHostPort(t.Host, strconv.Itoa(t.Local.HTTPSPort))},
		{"http", net.JoinHostPort(t.Host, strconv.Itoa(t.Local.HTTPPort))},
	}
	if t.Local.OpsPort > 0 {
		ports = append(ports, struct{ name, addr string }{"ops", net.JoinHostPort("127.0.0.1", strconv.Itoa(t.Local.OpsPort))})
	}
	for _, p := range ports {
		state := "listening"
		if !listening(p.addr) {
			state = "NOT listening"
			down++
		}
		fmt.Fprintf(w, "%-11s %s %s\n", p.name, p.addr, state)
	}
	down += wsStatus(w, t)
	// listening is not serving: prove both daemons answer like clients see
	// them (certificates, CRL and ACL loaded)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, d := range []Daemon{Mosquitto, Nginx} {
		what := map[Daemon]string{Mosquitto: "mTLS CONNECT as " + ProbeIdentity, Nginx: "GET /healthz"}[d]
		if err := probeOnce(pctx, t, d); err != nil {
			fmt.Fprintf(w, "%-11s %s: FAILED: %v\n", "probe", what, err)
			down++
			continue
		}
		fmt.Fprintf(w, "%-11s %s: ok\n", "probe", what)
	}
	if down > 0 {
		return fmt.Errorf("local stack in %s is not fully up (%d problem(s) above); `mqttstack local up` restarts what died", sd, down)
	}
	return nil
}

// wsStatus writes the WebSocket listeners behind nginx as one line per
// kind, in port order: the WSS identities' own listeners (one each, so the
// certificate nginx verified stays bound to the MQTT username; see
// hostconfig.Stack.WSSIdentities), then the shared device listener of
// --wss-devices. It returns how many do not listen.
func wsStatus(w io.Writer, t *target.Target) int {
	ls, err := confListeners(t.Local.MosquittoConf)
	if err != nil {
		fmt.Fprintf(w, "%-11s %s: %v\n", "wss", t.Local.MosquittoConf, err)
		return 1
	}
	st := hostconfig.LocalStack(t.Local.StateDir, t.PKIDir, "")
	type wsl struct {
		port int
		id   string
	}
	var ids, shared []wsl
	for _, l := range ls {
		switch {
		case l.protocol != "websockets":
		case l.passwordFile == st.Paths.PasswordFile:
			shared = append(shared, wsl{l.port, ""})
		default:
			ids = append(ids, wsl{l.port, filepath.Base(l.passwordFile)})
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].port < ids[j].port })
	down := 0
	var notListening []string
	for _, l := range ids {
		if !listening(net.JoinHostPort("127.0.0.1", strconv.Itoa(l.port))) {
			notListening = append(notListening, fmt.Sprintf("%d (%s)", l.port, l.id))
		}
	}
	if len(ids) > 0 {
		names := ids[0].id
		if len(ids) > 1 {
			names += " … " + ids[len(ids)-1].id
		}
		ports := strconv.Itoa(ids[0].port)
		if len(ids) > 1 {
			ports += "–" + strconv.Itoa(ids[len(ids)-1].port)
		}
		state := "listening"
		if len(notListening) > 0 {
			state = "NOT listening: " + strings.Join(notListening, ", ")
			down += len(notListening)
		}
		fmt.Fprintf(w, "%-11s %d WSS identity listeners 127.0.0.1:%s (%s) %s\n", "wss", len(ids), ports, names, state)
	}
	for _, l := range shared {
		state := "listening"
		if !listening(net.JoinHostPort("127.0.0.1", strconv.Itoa(l.port))) {
			state = "NOT listening"
			down++
		}
		fmt.Fprintf(w, "%-11s shared device listener 127.0.0.1:%d (--wss-devices: certificate not bound to username) %s\n", "wss", l.port, state)
	}
	return down
}

// port is one listening port of the stack, with the flag that moves it.
type port struct {
	name, flag, host string
	port             int
}

func (p port) addr() string { return net.JoinHostPort(p.host, strconv.Itoa(p.port)) }

func stackPorts(st hostconfig.Stack, d Daemon) []port {
	if d == Mosquitto {
		ps := []port{{"mqtts", "--mqtts-port", st.BindAddress, st.MQTTSPort}}
		for _, l := range st.WSListeners() {
			ps = append(ps, port{"ws", "--ws-port", "127.0.0.1", l.Port})
		}
		return append(ps, port{"ops", "--ops-port", "127.0.0.1", st.OpsPort})
	}
	return []port{
		{"https", "--https-port", st.BindAddress, st.HTTPSPort},
		{"http", "--http-port", st.BindAddress, st.HTTPPort},
	}
}

func targetPorts(t *target.Target, d Daemon) []port {
	if d == Mosquitto {
		// every WebSocket listener the rendered config opens
		if ls, err := confListeners(t.Local.MosquittoConf); err == nil {
			ps := []port{{"mqtts", "--mqtts-port", t.Host, t.MQTTSPort}}
			for _, l := range ls {
				if l.protocol == "websockets" {
					ps = append(ps, port{"ws", "--ws-port", "127.0.0.1", l.port})
				}
			}
			return append(ps, port{"ops", "--ops-port", "127.0.0.1", t.Local.OpsPort})
		}
	}
	return stackPorts(hostconfig.Stack{
		BindAddress: t.Host, MQTTSPort: t.MQTTSPort, WSPort: t.Local.WSPort, OpsPort: t.Local.OpsPort,
		HTTPSPort: t.Local.HTTPSPort, HTTPPort: t.Local.HTTPPort,
	}, d)
}

// checkPorts fails with a PortInUseError for the first taken port: a daemon
// that cannot bind would otherwise exit, or worse, the readiness probe would
// talk to whatever holds the port.
func checkPorts(ps []port) error {
	for _, p := range ps {
		if p.port == 0 {
			continue
		}
		if err := portFree(p.addr()); err != nil {
			return &PortInUseError{Name: p.name, Addr: p.addr(), Flag: p.flag, Err: err}
		}
	}
	return nil
}

// reloadMarkers are the log lines that prove a SIGHUP was acted on:
// mosquitto logs before reloading, in its single-threaded loop, so any
// connection accepted after the line sees the new certificates, CRL, ACL
// and passwords; nginx's old workers log when they stop accepting.
var reloadMarkers = map[Daemon]string{
	Mosquitto: "Reloading config.",
	Nginx:     "gracefully shutting down",
}

// Reload sends SIGHUP to d of the stack in stateDir and waits (bounded by
// ctx and 15 s) until its log shows the reload took effect. Mosquitto
// reloads certificates, the CRL, the ACL and the password file but keeps
// existing sessions (F10); nginx re-reads its config, certificate and CRL.
func Reload(ctx context.Context, stateDir string, d Daemon) error {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return err
	}
	logPath := LogPath(abs, d)
	count := func() int {
		b, _ := os.ReadFile(logPath)
		return strings.Count(string(b), reloadMarkers[d])
	}
	before := count()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// A SIGHUP that arrives while Mosquitto 2.0.11 is still reloading for
	// an earlier one (after its log line, before it clears its reload
	// flag) is lost: two reloads close together (a test's, a command's)
	// then wait for a line that never comes. So the signal is sent again
	// whenever a second passes without the line; one more reload is
	// harmless.
	var sent time.Time
	for count() <= before {
		if time.Since(sent) >= time.Second {
			if err := Signal(abs, d, syscall.SIGHUP); err != nil {
				return err
			}
			sent = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not log %q after SIGHUP: %w\n%s", d, reloadMarkers[d], ctx.Err(), tail(logPath, 10))
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// serverCertNames checks that the PKI's server certificate is valid for
// "localhost", the name the local target uses (a PKI made for a VPS may not
// carry it).
func serverCertNames(pkiDir string) error {
	p := filepath.Join(pkiDir, "server.crt")
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return fmt.Errorf("pki: %s holds no PEM certificate", p)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return fmt.Errorf("pki: %s: %w", p, err)
	}
	if err := c.VerifyHostname("localhost"); err != nil {
		return fmt.Errorf("pki: %s is not valid for \"localhost\" (%v); the local stack needs that SAN: use another --pki-dir, or recreate this one with `mqttstack certs init --force` including localhost and 127.0.0.1", p, err)
	}
	return nil
}

// crlMinLife is how much validity the CRL must have left at `up`: an expired
// CRL makes OpenSSL refuse every client ("CRL has expired", CRT-05), which
// would look like a broken stack weeks after the PKI was made.
const crlMinLife = 7 * 24 * time.Hour

// freshCRL re-signs the CRLs when any of them expires within crlMinLife.
func freshCRL(auth *certs.Authority, o Options) error {
	crls, err := certs.LoadCRLs(filepath.Join(o.PKIDir, "ca.crl"))
	if err == nil {
		stale := false
		for _, c := range crls {
			if time.Until(c.NextUpdate) < crlMinLife {
				stale = true
			}
		}
		if !stale {
			return nil
		}
	}
	fmt.Fprintf(o.Log, "re-signing the CRL in %s (missing or expiring within %v)\n", o.PKIDir, crlMinLife)
	if err := auth.WriteCRL(0); err != nil {
		return fmt.Errorf("pki %s: CRL: %w", o.PKIDir, err)
	}
	return nil
}

// lockState takes an exclusive flock on <stateDir>/.lock, so two `up`s (or
// an `up` and a `down`) on one state dir never interleave, from any process.
// It waits while another holder works (bounded by ctx and two minutes: an
// Up is bounded by its readiness timeouts).
func lockState(ctx context.Context, stateDir string) (func(), error) {
	p := filepath.Join(stateDir, ".lock")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", p, err)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			f.Close()
			return nil, fmt.Errorf("state dir %s is locked by another mqttstack process (%s); wait for it or remove the lock if none runs", stateDir, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
