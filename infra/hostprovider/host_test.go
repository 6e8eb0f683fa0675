package hostprovider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/internal/freeport"
	"github.com/mqttstack/mqttstack/internal/sshconn"
	"github.com/mqttstack/mqttstack/internal/sshconn/sshdtest"
)

// testHost is a real sshd in a private mount namespace: /etc/mosquitto,
// /etc/nginx (a copy of this machine's), /run, /var/log and
// /etc/systemd/system are temporary there, and systemctl is the rehearsal's
// stand-in that runs Debian's own unit files without systemd. Whatever the
// provider writes lands in the test's temp dirs; this machine's /etc is
// never touched. Daemons it starts are ended with the namespace.
type testHost struct {
	srv    *sshdtest.Server
	c      *sshconn.Client
	mqPort int // the broker's listener
	ngPort int // nginx's listener
}

func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// startHost starts the host; pre, if given, runs first in the namespace's
// setup ($T is the test's temp dir).
func startHost(t testing.TB, pre ...string) *testHost {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root (mount namespace, sshd, daemons that switch user)")
	}
	for _, bin := range []string{"/usr/sbin/mosquitto", "/usr/sbin/nginx", "/usr/bin/unshare"} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s missing: apt-get install -y mosquitto nginx util-linux", bin)
		}
	}
	d := t.TempDir()
	standIn := filepath.Join(repoRoot(t), "rehearsal", "systemctl")
	setup := fmt.Sprintf(`
T=%s
%s
mkdir -p $T/etc-mosquitto $T/etc-nginx $T/run $T/log $T/systemd $T/www
cp -a /etc/nginx/. $T/etc-nginx/
mount --bind $T/etc-mosquitto /etc/mosquitto
mount --bind $T/etc-nginx /etc/nginx
mount --bind $T/run /run
mount --bind $T/log /var/log
mount --bind $T/systemd /etc/systemd/system
mount --bind $T/www /var/www
mount --bind %s /usr/bin/systemctl
mkdir -p /run/sshd /var/log/nginx
# a non-root login with passwordless sudo, known only inside the namespace
mkdir -p $T/accounts $T/sudoers.d $T/home-deployer
cp /etc/passwd /etc/group /etc/shadow $T/accounts/
echo 'deployer:x:4242:4242::/nonexistent-deployer:/bin/bash' >>$T/accounts/passwd
echo 'deployer:x:4242:' >>$T/accounts/group
echo 'deployer:*:19000:0:99999:7:::' >>$T/accounts/shadow
echo 'deployer ALL=(ALL) NOPASSWD:ALL' >$T/sudoers.d/deployer
chmod 0440 $T/sudoers.d/deployer
for f in passwd group shadow; do mount --bind $T/accounts/$f /etc/$f; done
mount --bind $T/sudoers.d /etc/sudoers.d
`, d, strings.Join(pre, "\n"), standIn)
	h := &testHost{srv: sshdtest.Start(t, sshdtest.Options{Namespace: setup})}
	h.mqPort, h.ngPort = freeport.One(t), freeport.One(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := sshconn.Dial(ctx, h.srv.Config())
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, h.srv.Log())
	}
	h.c = c
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _, _ = c.Run(sctx, "systemctl stop nginx; systemctl stop mosquitto", nil)
		_ = c.Close()
	})
	return h
}

func (h *testHost) sh(t testing.TB, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _, err := h.c.Run(ctx, cmd, nil)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return strings.TrimSpace(string(out))
}

func (h *testHost) pid(t testing.TB, unit string) string {
	if unit == "nginx" {
		return h.sh(t, "cat /run/nginx.pid")
	}
	return h.sh(t, "cat /run/"+unit+".rehearsal.pid")
}

func mosquittoConf(port int) string {
	return fmt.Sprintf(`pid_file /run/mosquitto/mosquitto.pid
persistence false
log_dest file /var/log/mosquitto/mosquitto.log
per_listener_settings false
listener %d 127.0.0.1
allow_anonymous false
password_file /etc/mosquitto/passwd
acl_file /etc/mosquitto/acl
`, port)
}

func nginxConf(port int) string {
	return fmt.Sprintf(`user www-data;
worker_processes 1;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log;
events { worker_connections 64; }
http {
	include mime.types;
	access_log off;
	server {
		listen 127.0.0.1:%d;
		root /var/www/mqttstack;
	}
}
`, port)
}

// plan is a small stack: Mosquitto with an ACL and a password file (secret),
// nginx serving a page.
func (h *testHost) plan(t testing.TB, acl, page string) Plan {
	t.Helper()
	hash, err := certs.MosquittoPasswordHash("pw-dev1")
	if err != nil {
		t.Fatal(err)
	}
	return Plan{
		MosquittoConfig: "/etc/mosquitto/mosquitto.conf",
		NginxConfig:     "/etc/nginx/nginx.conf",
		Dirs:            []DirSpec{{Path: "/var/www/mqttstack", Mode: "0755", Owner: "root:root"}},
		Files: []FileSpec{
			{Path: "/etc/mosquitto/acl", Content: []byte(acl), Mode: "0640", Owner: "root:mosquitto", Daemons: []string{kindMosquitto}},
			{Path: "/etc/mosquitto/mosquitto.conf", Content: []byte(mosquittoConf(h.mqPort)), Mode: "0644", Owner: "root:root", Daemons: []string{kindMosquitto}},
			{Path: "/etc/mosquitto/passwd", Content: []byte("dev1:" + hash + "\n"), Mode: "0640", Owner: "root:mosquitto", Daemons: []string{kindMosquitto}, Secret: true},
			{Path: "/etc/nginx/nginx.conf", Content: []byte(nginxConf(h.ngPort)), Mode: "0644", Owner: "root:root", Daemons: []string{kindNginx}},
			{Path: "/var/www/mqttstack/index.html", Content: []byte(page), Mode: "0644", Owner: "root:root"},
		},
	}
}

func applyPlan(t *testing.T, h *testHost, plan Plan) (Observed, []string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var log []string
	obs, err := Apply(ctx, h.c, plan, func(s string) { log = append(log, s) })
	return obs, log, err
}

// mqttConnect sends an MQTT 3.1.1 CONNECT with a password and returns the
// CONNACK return code (0 accepted, 4/5 refused).
func mqttConnect(t *testing.T, port int, user, pass string) (byte, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	var body []byte
	body = append(body, str("MQTT")...)
	body = append(body, 4, 0xC2, 0, 30) // level 4, username+password+clean session, keepalive 30
	body = append(body, str("probe-"+user)...)
	body = append(body, str(user)...)
	body = append(body, str(pass)...)
	pkt := append([]byte{0x10, byte(len(body))}, body...)
	if _, err := c.Write(pkt); err != nil {
		return 0, err
	}
	ack := make([]byte, 4)
	if _, err := readFull(c, ack); err != nil {
		return 0, fmt.Errorf("read CONNACK: %w", err)
	}
	if ack[0] != 0x20 {
		return 0, fmt.Errorf("not a CONNACK: % x", ack)
	}
	return ack[3], nil
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestApplyOverRealSSHD(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sshd, mosquitto and nginx in a mount namespace")
	}
	h := startHost(t)
	acl := "user dev1\ntopic readwrite devices/dev1/#\n"
	plan := h.plan(t, acl, "<p>v1</p>\n")

	// 1. fresh host: everything lands, both daemons run and serve
	obs, log, err := applyPlan(t, h, plan)
	if err != nil {
		t.Fatalf("first apply: %v\nlog: %v\nsshd: %s", err, log, h.srv.Log())
	}
	for _, f := range plan.Files {
		if !obs.Files[f.Path].matches(f) {
			t.Errorf("%s on the host: %+v, want sha %s mode %s owner %s", f.Path, obs.Files[f.Path], f.Sum(), f.Mode, f.Owner)
		}
	}
	if obs.MosquittoVersion == "" || obs.MosquittoVersion == "none" || obs.NginxVersion == "" || obs.NginxVersion == "none" {
		t.Errorf("versions: mosquitto %q nginx %q", obs.MosquittoVersion, obs.NginxVersion)
	}
	if rc, err := mqttConnect(t, h.mqPort, "dev1", "pw-dev1"); err != nil || rc != 0 {
		t.Fatalf("broker after first apply: rc %d err %v\n%s", rc, err, h.sh(t, "cat /var/log/mosquitto/mosquitto.log /var/log/rehearsal/mosquitto.log 2>&1 | tail -20"))
	}
	if got := h.sh(t, fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d; printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3", h.ngPort)); !strings.Contains(got, "<p>v1</p>") {
		t.Fatalf("nginx page: %q", got)
	}
	if got := h.sh(t, "ls -A /etc/mosquitto /etc/nginx | grep -c mqttstack || true"); got != "0" {
		t.Errorf("temporary files left behind: %s", h.sh(t, "ls -A /etc/mosquitto /etc/nginx"))
	}
	mqPID, ngPID := h.pid(t, "mosquitto"), h.pid(t, "nginx")

	// 2. the same plan again: nothing staged, daemons keep their PIDs
	_, log, err = applyPlan(t, h, plan)
	if err != nil {
		t.Fatalf("second apply: %v", err)
	}
	for _, l := range log {
		if strings.HasPrefix(l, "staging") || strings.HasPrefix(l, "activating") {
			t.Errorf("no-change apply did work: %q", l)
		}
	}
	if a, b := h.pid(t, "mosquitto"), h.pid(t, "nginx"); a != mqPID || b != ngPID {
		t.Errorf("PIDs changed on a no-change apply: mosquitto %s→%s nginx %s→%s", mqPID, a, ngPID, b)
	}

	// 3. drift: a hand edit shows in a probe and the next apply repairs it
	h.sh(t, "echo 'topic readwrite #' >> /etc/mosquitto/acl")
	hp := &host{r: h.c, log: func(string) {}}
	ctx := context.Background()
	drift, err := hp.probe(ctx, []string{"/etc/mosquitto/acl"})
	if err != nil {
		t.Fatal(err)
	}
	if drift.Files["/etc/mosquitto/acl"].matches(plan.Files[0]) {
		t.Fatal("hand edit not seen by the probe")
	}
	obs, log, err = applyPlan(t, h, plan)
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	if !obs.Files["/etc/mosquitto/acl"].matches(plan.Files[0]) {
		t.Errorf("drift not repaired: %+v", obs.Files["/etc/mosquitto/acl"])
	}
	// only the ACL changed: SIGHUP (reload), same PID, nginx untouched
	if !containsLine(log, "reload-or-restart:mosquitto") || containsLine(log, "restart:mosquitto") || containsLine(log, "reload-or-restart:nginx") {
		t.Errorf("ACL-only change: actions %v, want a mosquitto reload only", log)
	}
	if a, b := h.pid(t, "mosquitto"), h.pid(t, "nginx"); a != mqPID || b != ngPID {
		t.Errorf("an ACL reload changed PIDs: mosquitto %s→%s nginx %s→%s", mqPID, a, ngPID, b)
	}

	// 4. a change the daemon rejects: nothing is written, the broker keeps serving
	bad := h.plan(t, "topicc read x\n", "<p>v1</p>\n")
	bad.Files[2] = plan.Files[2] // same password file (new salt otherwise)
	_, _, err = applyPlan(t, h, bad)
	var ae *ApplyError
	if !errors.As(err, &ae) || ae.Step != "validate mosquitto" || !strings.Contains(ae.Msg, "Invalid line in acl_file") || !ae.RolledBack {
		t.Fatalf("bad ACL: want a validate mosquitto error with Mosquitto's message, got %v", err)
	}
	t.Logf("rejected ACL: %v", err)
	if !strings.Contains(ae.Msg, `"/etc/mosquitto/acl (new)"`) {
		t.Errorf("message does not name the real file: %q", ae.Msg)
	}
	if got := h.sh(t, "cat /etc/mosquitto/acl"); got != strings.TrimSpace(acl) {
		t.Errorf("bad ACL reached the host: %q", got)
	}
	if h.pid(t, "mosquitto") != mqPID {
		t.Error("a rejected change restarted mosquitto")
	}
	if rc, err := mqttConnect(t, h.mqPort, "dev1", "pw-dev1"); err != nil || rc != 0 {
		t.Errorf("broker after a rejected change: rc %d err %v", rc, err)
	}
	if got := h.sh(t, "ls -A /etc/mosquitto | grep -c mqttstack || true"); got != "0" {
		t.Errorf("staged files left after a rejected change: %s", h.sh(t, "ls -A /etc/mosquitto"))
	}

	// 5. valid config that fails only on the real restart (its new port is
	// taken): the previous files come back and the broker serves on them.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	moved := h.plan(t, acl, "<p>v1</p>\n")
	moved.Files[2] = plan.Files[2]
	moved.Files[1].Content = []byte(mosquittoConf(busy.Addr().(*net.TCPAddr).Port))
	// a seed file (create only) written by this apply is not rolled back
	moved.Files = append(moved.Files, FileSpec{Path: "/etc/mosquitto/seeded.conf", Content: []byte("seeded\n"), Mode: "0644", Owner: "root:root", Seed: true})
	_, _, err = applyPlan(t, h, moved)
	if !errors.As(err, &ae) || ae.Step != "activate" || !ae.RolledBack {
		t.Fatalf("restart on a busy port: want an activate error rolled back, got %v", err)
	}
	if !strings.Contains(ae.Msg, "Address already in use") {
		t.Errorf("error does not carry the daemon's message: %q", ae.Msg)
	}
	t.Logf("failed restart: %v", err)
	if got := h.sh(t, "cat /etc/mosquitto/mosquitto.conf"); got != strings.TrimSpace(mosquittoConf(h.mqPort)) {
		t.Errorf("previous mosquitto.conf not restored:\n%s", got)
	}
	if got := h.sh(t, "cat /etc/mosquitto/seeded.conf 2>&1 || true"); got != "seeded" {
		t.Errorf("the seed file written by the failed apply: %q, want it kept (a rollback never touches seed files)", got)
	}
	if rc, err := mqttConnect(t, h.mqPort, "dev1", "pw-dev1"); err != nil || rc != 0 {
		t.Errorf("broker after rollback: rc %d err %v", rc, err)
	}
	if got := h.sh(t, "ls -A /etc/mosquitto | grep -c mqttstack || true"); got != "0" {
		t.Errorf("kept copies left after a rollback: %s", h.sh(t, "ls -A /etc/mosquitto"))
	}

	// 6. nginx: a broken directive is refused by nginx -t before any reload
	badNginx := h.plan(t, acl, "<p>v1</p>\n")
	badNginx.Files[2] = plan.Files[2]
	badNginx.Files[3].Content = []byte(strings.Replace(nginxConf(h.ngPort), "worker_processes 1;", "worker_processess 1;", 1))
	_, _, err = applyPlan(t, h, badNginx)
	if !errors.As(err, &ae) || ae.Step != "validate nginx" || !strings.Contains(ae.Msg, "unknown directive") {
		t.Fatalf("bad nginx.conf: want nginx -t's message, got %v", err)
	}
	t.Logf("rejected nginx.conf: %v", err)
	if strings.Contains(ae.Msg, ".mqttstack-candidate") {
		t.Errorf("message names the candidate file instead of the real one: %q", ae.Msg)
	}
	if h.pid(t, "nginx") != ngPID {
		t.Error("a rejected nginx change touched nginx")
	}
}

func containsLine(log []string, sub string) bool {
	for _, l := range log {
		for _, w := range strings.Fields(l) {
			if w == sub {
				return true
			}
		}
	}
	return false
}

// TestApplyAsSudoUser: a non-root login runs every step through sudo -n,
// including reading the live configuration for the validation.
func TestApplyAsSudoUser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sshd, mosquitto and nginx in a mount namespace")
	}
	if _, err := os.Stat("/usr/bin/sudo"); err != nil {
		t.Fatal("sudo missing: apt-get install -y sudo")
	}
	h := startHost(t)
	cfg := h.srv.Config()
	cfg.User = "deployer"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := sshconn.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial as deployer: %v\n%s", err, h.srv.Log())
	}
	defer c.Close()
	if out, _, err := c.Run(ctx, "id -un", nil); err != nil || strings.TrimSpace(string(out)) != "deployer" {
		t.Fatalf("logged in as %q (%v)", out, err)
	}
	plan := h.plan(t, "user dev1\ntopic readwrite devices/dev1/#\n", "<p>sudo</p>\n")
	plan.Sudo = true
	obs, err := Apply(ctx, c, plan, nil)
	if err != nil {
		t.Fatalf("apply through sudo: %v", err)
	}
	for _, f := range plan.Files {
		if !obs.Files[f.Path].matches(f) {
			t.Errorf("%s: %+v", f.Path, obs.Files[f.Path])
		}
	}
	if rc, err := mqttConnect(t, h.mqPort, "dev1", "pw-dev1"); err != nil || rc != 0 {
		t.Fatalf("broker: rc %d err %v", rc, err)
	}
	// an ACL-only change validates against the live mosquitto.conf, which
	// only root can read through sudo here
	h.sh(t, "chmod 0600 /etc/mosquitto/mosquitto.conf")
	plan.Files[1].Mode = "0600"
	plan.Files[0].Content = []byte("user dev1\ntopic read devices/dev1/#\n")
	if _, err := Apply(ctx, c, plan, nil); err != nil {
		t.Fatalf("second apply through sudo: %v", err)
	}
	if got := h.sh(t, "cat /etc/mosquitto/acl"); !strings.Contains(got, "topic read devices") {
		t.Errorf("ACL not applied: %q", got)
	}
}
