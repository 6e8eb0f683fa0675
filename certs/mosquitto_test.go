package certs

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/internal/freeport"
)

// These tests run the real Mosquitto 2.0 broker and clients from Debian's
// mosquitto and mosquitto-clients packages.

func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install it with `apt-get install -y %s`", name, pkg)
	}
	return p
}

// syncBuffer collects a daemon's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startMosquitto runs mosquitto with the config body (listener lines
// included; %PORT% is replaced by a free loopback port) and returns the
// port once it accepts connections, and the broker's log. The port is
// found free and then handed over, so another process may take it in
// between: a start that fails on the address is retried on a new port.
func startMosquitto(t *testing.T, body string) (int, *syncBuffer) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port, log, err := tryMosquitto(t, body)
		if err == nil {
			return port, log
		}
		if attempt == 3 || !strings.Contains(log.String(), "Address already in use") {
			t.Fatalf("%v\n%s", err, log)
		}
	}
}

func tryMosquitto(t *testing.T, body string) (int, *syncBuffer, error) {
	t.Helper()
	bin := lookTool(t, "mosquitto", "mosquitto")
	port := freeport.One(t)
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	// user root: as root, mosquitto would otherwise drop to the mosquitto
	// user, which cannot read the test's 0700 directories.
	text := "user root\npersistence false\nlog_dest stderr\nlog_type all\n" +
		strings.ReplaceAll(body, "%PORT%", strconv.Itoa(port))
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			c.Close()
			return port, log, nil
		}
		select {
		case <-done:
			return 0, log, errors.New("mosquitto exited")
		default:
		}
		if time.Now().After(deadline) {
			return 0, log, fmt.Errorf("mosquitto did not listen on %d within 15s", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pub runs mosquitto_pub once and returns its combined output and error.
func pub(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := lookTool(t, "mosquitto_pub", "mosquitto-clients")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append(args, "-t", "devices/x/telemetry", "-m", "hi", "-q", "1")...).CombinedOutput()
	return string(out), err
}

var mosquittoHashRE = regexp.MustCompile(`^\$7\$101\$([A-Za-z0-9+/]{16})\$([A-Za-z0-9+/]{86}==)$`)

// TestMosquittoPasswordHashFormat recomputes a hash that mosquitto_passwd
// itself wrote, with its salt: equal bytes prove the same algorithm,
// parameters and encoding.
func TestMosquittoPasswordHashFormat(t *testing.T) {
	h, err := MosquittoPasswordHash("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !mosquittoHashRE.MatchString(h) {
		t.Fatalf("hash %q is not $7$101$<12-byte salt b64>$<64-byte hash b64>", h)
	}
	if h2, _ := MosquittoPasswordHash("s3cret"); h2 == h {
		t.Error("two hashes of one password are equal: the salt is not random")
	}

	bin := lookTool(t, "mosquitto_passwd", "mosquitto")
	pwfile := filepath.Join(t.TempDir(), "passwd")
	if out, err := exec.Command(bin, "-c", "-b", pwfile, "user", "s3cret").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	data, _ := os.ReadFile(pwfile)
	theirs := strings.TrimPrefix(strings.TrimSpace(string(data)), "user:")
	m := mosquittoHashRE.FindStringSubmatch(theirs)
	if m == nil {
		t.Fatalf("mosquitto_passwd wrote %q, not the format this package writes", theirs)
	}
	salt, _ := base64.StdEncoding.DecodeString(m[1])
	ours, err := mosquittoHash("s3cret", salt, mosquittoIterations)
	if err != nil {
		t.Fatal(err)
	}
	if ours != theirs {
		t.Fatalf("same salt, different hash:\n ours   %s\n theirs %s", ours, theirs)
	}
}

// TestMosquittoPasswordHashDaemon logs in to a real broker with a password
// file this package wrote.
func TestMosquittoPasswordHashDaemon(t *testing.T) {
	a := newPKI(t, InitOptions{Observers: []string{"observer"}, Backends: []string{}})
	pw, err := ClientPassword(a.Dir, "observer")
	if err != nil {
		t.Fatal(err)
	}
	file, err := MosquittoPasswordFile(a.Dir, []string{"observer"})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := MosquittoPasswordHash("pw with spaces & ü")
	file = append(file, "user2:"+h+"\n"...)
	pwPath := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(pwPath, file, 0o600); err != nil {
		t.Fatal(err)
	}
	port, log := startMosquitto(t, fmt.Sprintf("listener %%PORT%% 127.0.0.1\nallow_anonymous false\npassword_file %s\n", pwPath))
	base := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port)}
	tests := []struct {
		name, user, pass string
		ok               bool
	}{
		{"good", "observer", pw, true},
		{"good-unicode", "user2", "pw with spaces & ü", true},
		{"bad-password", "observer", pw + "x", false},
		{"other-users-password", "user2", pw, false},
		{"unknown-user", "nobody", pw, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := pub(t, append(base, "-u", tc.user, "-P", tc.pass, "-i", "t-"+tc.name)...)
			if tc.ok && err != nil {
				t.Fatalf("login refused: %v: %s\nbroker log:\n%s", err, out, log)
			}
			if !tc.ok && (err == nil || !strings.Contains(out, "not authorised")) {
				t.Fatalf("login not refused as unauthorised: %v: %s", err, out)
			}
		})
	}
}

// TestMosquittoAcceptsPKI runs a real mTLS listener configured like the
// stack's (cafile = ca.crt, crlfile = ca.crl with root + sub-CA CRLs) and
// checks who gets in. It is the daemon-side proof of the CRL file layout:
// Mosquitto sets X509_V_FLAG_CRL_CHECK, so the leaf issuer's CRL must be in
// the file for its clients to connect at all.
func TestMosquittoAcceptsPKI(t *testing.T) {
	n := newNegativePKI(t)
	p := PathsOf(n.root.Dir)
	port, log := startMosquitto(t, fmt.Sprintf(`listener %%PORT%% 127.0.0.1
cafile %s
certfile %s
keyfile %s
crlfile %s
require_certificate true
use_identity_as_username true
allow_anonymous false
`, p.CACert, p.ServerCert, p.ServerKey, p.CRL))
	// alert is what OpenSSL's client reports over TLS 1.2, where a refused
	// client certificate ends the handshake with a reason (SECURITY.md
	// CRT-02..06 list the same alerts).
	tests := []struct {
		name, dir, id string
		alert         string // "" = accepted
	}{
		{"valid", n.root.Dir, "dev-1", ""},
		{"subca-valid", n.set.SubCADir, n.set.Valid, ""},
		{"subca-cn-slash", n.set.SubCADir, n.set.CNSlash, ""}, // a valid certificate; the ACL is what CRT-07 probes
		{"revoked", n.root.Dir, "dev-2", "certificate revoked"},
		{"subca-revoked", n.set.SubCADir, n.set.Revoked, "certificate revoked"},
		{"foreign", n.set.ForeignDir, "dev-1", "unknown ca"},
		{"self-signed", n.set.SelfSignedDir, "dev-1", "unknown ca"},
		{"expired", n.set.SubCADir, n.set.Expired, "certificate expired"},
		{"not-yet-valid", n.set.SubCADir, n.set.NotYetValid, "bad certificate"},
		{"serverauth-only", n.set.SubCADir, n.set.ServerAuthOnly, "unsupported certificate"},
	}
	sslBin := lookTool(t, "openssl", "openssl")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := filepath.Join(tc.dir, clientsDir, tc.id)
			// -h localhost: the server certificate names localhost, and
			// mosquitto_pub verifies the broker's name.
			out, err := pub(t, "-h", "localhost", "-p", strconv.Itoa(port), "--cafile", p.CACert,
				"--cert", base+".crt", "--key", base+".key", "-i", "t-"+tc.name)
			if tc.alert == "" {
				if err != nil {
					t.Fatalf("refused: %v: %s\nbroker log:\n%s", err, out, log)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted a %s certificate: %s", tc.name, out)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, sslBin, "s_client", "-tls1_2", "-connect", "127.0.0.1:"+strconv.Itoa(port),
				"-CAfile", p.CACert, "-cert", base+".crt", "-cert_chain", base+".crt", "-key", base+".key")
			cmd.Stdin = strings.NewReader("")
			sout, _ := cmd.CombinedOutput()
			if !strings.Contains(string(sout), "alert "+tc.alert) {
				t.Fatalf("openssl s_client: no %q alert:\n%s", tc.alert, sout)
			}
		})
	}
}

// TestMosquittoNeedsSubCACRL is the control for the CRL layout: with only
// the root's CRL in crlfile, even a valid sub-CA client is refused,
// because OpenSSL finds no CRL for its issuer.
func TestMosquittoNeedsSubCACRL(t *testing.T) {
	n := newNegativePKI(t)
	p := PathsOf(n.root.Dir)
	crls, err := os.ReadFile(p.CRL)
	if err != nil {
		t.Fatal(err)
	}
	rootOnly := crls[:bytes.Index(crls, []byte("-----END X509 CRL-----"))+len("-----END X509 CRL-----\n")]
	crlPath := filepath.Join(t.TempDir(), "root-only.crl")
	if err := os.WriteFile(crlPath, rootOnly, 0o644); err != nil {
		t.Fatal(err)
	}
	port, _ := startMosquitto(t, fmt.Sprintf("listener %%PORT%% 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\ncrlfile %s\nrequire_certificate true\nuse_identity_as_username true\n",
		p.CACert, p.ServerCert, p.ServerKey, crlPath))
	for id, ok := range map[string]bool{"dev-1": true, n.set.Valid: false} {
		dir := n.root.Dir
		if id == n.set.Valid {
			dir = n.set.SubCADir
		}
		base := filepath.Join(dir, clientsDir, id)
		out, err := pub(t, "-h", "localhost", "-p", strconv.Itoa(port), "--cafile", p.CACert, "--cert", base+".crt", "--key", base+".key", "-i", "c-"+id)
		if (err == nil) != ok {
			t.Errorf("%s with a root-only CRL file: err=%v (%s), want accepted=%v", id, err, out, ok)
		}
	}
}

// TestMosquittoRolloverTrust is the daemon-side proof of the rollover's
// trust files on Debian's Mosquitto 2.0.11: one cafile with two CAs and one
// crlfile with both CAs' CRLs admit both generations and refuse a revoked
// certificate of either (OpenSSL loads every certificate of cafile and
// every CRL of crlfile). After retire, a restarted broker refuses the old
// generation at the TLS layer.
func TestMosquittoRolloverTrust(t *testing.T) {
	a := newPKI(t, InitOptions{})
	issueIDs(t, a, "dev-1", "dev-2", "dev-3")
	if _, err := a.Next(NextOptions{CrossSign: true}); err != nil {
		t.Fatal(err)
	}
	g2, err := a.Generation(GenNext)
	if err != nil {
		t.Fatal(err)
	}
	issueIDs(t, g2, "dev-3", "dev-4")
	for _, id := range []string{"dev-2", "dev-4"} {
		if err := a.Revoke(id); err != nil {
			t.Fatal(err)
		}
	}
	p := PathsOf(a.Dir)
	conf := fmt.Sprintf("listener %%PORT%% 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\ncrlfile %s\nrequire_certificate true\nuse_identity_as_username true\nallow_anonymous false\n",
		p.CACert, p.ServerCert, p.ServerKey, p.CRL)
	type probe struct {
		name, dir, id string
		ok            bool
		ca            string // the device's anchors (default: the trust bundle)
	}
	run := func(t *testing.T, port int, log *syncBuffer, probes []probe) {
		for _, pr := range probes {
			base := filepath.Join(pr.dir, clientsDir, pr.id)
			ca := p.CACert
			if pr.ca != "" {
				ca = pr.ca
			}
			out, err := pub(t, "-h", "localhost", "-p", strconv.Itoa(port), "--cafile", ca,
				"--cert", base+".crt", "--key", base+".key", "-i", "r-"+pr.name)
			if (err == nil) != pr.ok {
				t.Errorf("%s: accepted=%v, want %v: %v %s\nbroker log:\n%s", pr.name, err == nil, pr.ok, err, out, log)
			}
			if !pr.ok && err != nil && strings.Contains(out, "not authorised") {
				t.Errorf("%s: refused after TLS (%s), want a TLS refusal", pr.name, out)
			}
		}
	}
	port, log := startMosquitto(t, conf)
	t.Run("overlap", func(t *testing.T) {
		run(t, port, log, []probe{
			{"g1", a.Dir, "dev-1", true, ""},
			{"g1-revoked", a.Dir, "dev-2", false, ""},
			{"g1-reissued-old-cert", a.Dir, "dev-3", true, ""},
			{"g2", g2.Dir, "dev-3", true, ""},
			{"g2-revoked", g2.Dir, "dev-4", false, ""},
		})
	})
	if _, err := a.Promote(0); err != nil {
		t.Fatal(err)
	}
	prev := filepath.Join(a.Dir, previousDir)
	if _, err := a.RenewServer(RenewOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SwitchServer(); err != nil {
		t.Fatal(err)
	}
	port, log = startMosquitto(t, conf)
	t.Run("promoted-server-cross-chain", func(t *testing.T) {
		run(t, port, log, []probe{
			// a G1 device that trusts only G1 verifies the G2 server
			// certificate through the cross certificate
			{"p-g1", prev, "dev-1", true, filepath.Join(prev, caCertFile)},
			{"p-g2", a.Dir, "dev-3", true, ""},
			{"p-g2-revoked", a.Dir, "dev-4", false, ""},
		})
	})
	if _, err := a.Retire(true, 0); err != nil {
		t.Fatal(err)
	}
	arch, _ := filepath.Glob(filepath.Join(a.Dir, retiredDir, "G1-*"))
	if len(arch) != 1 {
		t.Fatalf("retired archive: %v", arch)
	}
	port, log = startMosquitto(t, conf)
	t.Run("retired", func(t *testing.T) {
		run(t, port, log, []probe{
			{"r-g1", arch[0], "dev-1", false, ""},
			{"r-g2", a.Dir, "dev-3", true, ""},
			{"r-g2-revoked", a.Dir, "dev-4", false, ""},
		})
	})
}
