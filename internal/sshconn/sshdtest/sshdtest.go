// Package sshdtest starts a real OpenSSH server (/usr/sbin/sshd) for tests:
// on a free 127.0.0.1 port, with host keys and an authorized_keys file made
// for the test in t.TempDir(), logging in as the current user (root here).
// Optionally sshd runs in a private mount namespace prepared by a shell
// script, so that what a test writes over SSH to /etc lands in temporary
// directories and never on this machine's /etc.
package sshdtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mqttstack/mqttstack/internal/freeport"
	"github.com/mqttstack/mqttstack/internal/sshconn"
)

// SSHD is the server binary (Debian's openssh-server).
const SSHD = "/usr/sbin/sshd"

// Options shape the server.
type Options struct {
	// Namespace, if non-empty, is a shell script run as root in a private
	// mount namespace (unshare --mount --propagation private) before sshd
	// starts there; every session then sees its mounts (say, a tmpfs over
	// /etc/mosquitto). Mounts vanish with the namespace.
	Namespace string
}

// Server is a running sshd.
type Server struct {
	Host      string
	Port      int
	User      string
	ClientKey []byte // OpenSSH private key (PEM) authorized for User
	HostKey   string // the ed25519 host key, authorized_keys line
	OtherKey  string // the server's ECDSA host key (a server has several)
	Dir       string // the server's files (config, keys, log)

	mu  sync.Mutex
	log bytes.Buffer
}

// Config is an sshconn.Config for this server with its ed25519 key pinned.
func (s *Server) Config() sshconn.Config {
	return sshconn.Config{Host: s.Host, Port: s.Port, User: s.User, PrivateKey: s.ClientKey, HostKey: s.HostKey}
}

// Log is what sshd wrote so far (for failure messages).
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

func (s *Server) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.Write(p)
}

// Start starts sshd and stops it when the test ends. It fails the test (with
// the install command) if sshd is missing; it never skips.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if _, err := os.Stat(SSHD); err != nil {
		t.Fatalf("sshd not found at %s: apt-get install -y openssh-server", SSHD)
	}
	// sshd's privilege separation directory; systemd's unit would create it.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshd needs /run/sshd: %v", err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &Server{Host: "127.0.0.1", User: u.Username, Dir: dir}

	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, clientKey, _ := ed25519.GenerateKey(rand.Reader)
	s.HostKey = writeKey(t, filepath.Join(dir, "host_ed25519"), edKey)
	s.OtherKey = writeKey(t, filepath.Join(dir, "host_ecdsa"), ecKey)
	s.ClientKey = pemKey(t, clientKey)
	clientSigner, err := ssh.ParsePrivateKey(s.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	// sshd reads authorized_keys as the logging-in user: any user may
	// traverse to it (a test may log in as a non-root account).
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientSigner.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}

	s.Port = freeport.One(t)
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %[2]s/host_ed25519
HostKey %[2]s/host_ecdsa
PidFile %[2]s/sshd.pid
AuthorizedKeysFile %[2]s/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxStartups 100
LogLevel VERBOSE
`, s.Port, dir)
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if o.Namespace == "" {
		cmd = exec.Command(SSHD, "-D", "-e", "-f", cfgPath)
	} else {
		script := "set -e\n" + o.Namespace + "\nexec " + SSHD + " -D -e -f " + cfgPath + "\n"
		cmd = exec.Command("unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script)
	}
	cmd.Stdout, cmd.Stderr = s, s
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		if o.Namespace != "" {
			// Daemons the test started over SSH live in the namespace
			// (and keep it alive): end exactly those processes.
			killNamespace(cmd.Process.Pid)
		}
		_ = cmd.Process.Kill()
		<-exited
	})
	// Ready when the port accepts; bounded.
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("sshd exited at start:\n%s", s.Log())
		default:
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), time.Second)
		if err == nil {
			_ = c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %d within 15s: %v\n%s", s.Port, err, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func pemKey(t testing.TB, key any) []byte {
	t.Helper()
	blk, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(blk)
}

// writeKey writes a host key (0600) and returns its public half as an
// authorized_keys line.
func writeKey(t testing.TB, path string, key any) string {
	t.Helper()
	if err := os.WriteFile(path, pemKey(t, key), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
}

// NewKeyLine returns a fresh ed25519 public key line nobody holds (a wrong
// pin for tests).
func NewKeyLine(t testing.TB) string {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// NewClientKey returns a fresh private key (PEM) that the server does not
// authorize.
func NewClientKey(t testing.TB) []byte {
	t.Helper()
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	return pemKey(t, k)
}

// killNamespace kills every process that shares the mount namespace of pid
// (other than pid itself, which the caller ends), found by id in /proc.
func killNamespace(pid int) {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
	if err != nil {
		return
	}
	self, _ := os.Readlink("/proc/self/ns/mnt")
	if ns == self {
		return // never the test's own namespace
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		other, err := strconv.Atoi(e.Name())
		if err != nil || other == pid {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", other)); err == nil && l == ns {
			if p, err := os.FindProcess(other); err == nil {
				_ = p.Kill()
			}
		}
	}
}
