package hostprovider

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi/sdk/v3/go/property"

	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/internal/freeport"
)

const acmeDomain = "mqtt.example.com"

// selfSigned is a certificate for acmeDomain and its key (PEM).
func selfSigned(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{acmeDomain},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// servedBy says whether nginx's TLS listener presents the certificate
// certPEM (the handshake verifies against exactly that certificate). A
// reload replaces nginx's workers asynchronously, so it asks for up to 10 s
// (50 attempts).
func servedBy(t *testing.T, port int, certPEM []byte) bool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("bad test certificate")
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 50 && time.Now().Before(deadline); i++ {
		c, err := tls.DialWithDialer(d, "tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{RootCAs: pool, ServerName: acmeDomain})
		if err == nil {
			_ = c.Close()
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// certbotStandIn is a fault injection: the real certbot needs Let's
// Encrypt on the internet, so the test puts this script first on PATH
// inside the host's namespace (/usr/local/bin). It checks the arguments
// the provider must pass, fails like certbot does while $T/certbot-fail
// exists (DNS not pointing at the host yet), and otherwise does what a
// successful `certonly --webroot` does as far as the host can tell: it
// proves that nginx serves the webroot's challenge directory over HTTP,
// puts a certificate into /etc/letsencrypt/live/DOMAIN/ and runs the
// deploy hook. Every call is appended to $T/certbot-calls.
func certbotStandIn(dir string, httpPort int) string {
	return fmt.Sprintf(`#!/bin/bash
set -eu
T=%[1]s
echo "$*" >>"$T/certbot-calls"
webroot= domain= email= hook= tos= nonint= sub=${1:-}
while [ $# -gt 0 ]; do
	case $1 in
	-w) webroot=$2; shift ;;
	-d) domain=$2; shift ;;
	--email) email=$2; shift ;;
	--deploy-hook) hook=$2; shift ;;
	--agree-tos) tos=1 ;;
	--non-interactive) nonint=1 ;;
	esac
	shift
done
if [ "$sub" != certonly ] || [ -z "$webroot" ] || [ -z "$domain" ] || [ -z "$email" ] || [ -z "$tos" ] || [ -z "$nonint" ]; then
	echo "stand-in certbot: unexpected arguments" >&2
	exit 2
fi
if [ -e "$T/certbot-fail" ]; then
	echo "Saving debug log to /var/log/letsencrypt/letsencrypt.log"
	echo "Certbot failed to authenticate some domains (authenticator: webroot). The Certificate Authority reported these problems:" >&2
	echo "  Domain: $domain" >&2
	echo "  Detail: DNS problem: NXDOMAIN looking up A for $domain - check that a DNS record exists for this domain" >&2
	exit 1
fi
token=standin-$$-$RANDOM
mkdir -p "$webroot/.well-known/acme-challenge"
echo "$token" >"$webroot/.well-known/acme-challenge/$token"
got=$(curl -fsS --max-time 10 "http://127.0.0.1:%[2]d/.well-known/acme-challenge/$token" 2>&1) || got="not served: $got"
rm -f "$webroot/.well-known/acme-challenge/$token"
if [ "$got" != "$token" ]; then
	echo "Challenge failed for domain $domain: $got" >&2
	exit 1
fi
live=/etc/letsencrypt/live/$domain
mkdir -p "$live"
cp "$T/issued.crt" "$live/fullchain.pem"
cp "$T/issued.key" "$live/privkey.pem"
[ -z "$hook" ] || RENEWED_LINEAGE=$live RENEWED_DOMAINS=$domain "$hook"
`, dir, httpPort)
}

// acmeNginxConf serves TLS from the seed files on port and the ACME webroot
// over plain HTTP on httpPort.
func acmeNginxConf(port, httpPort int) string {
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
		location /.well-known/acme-challenge/ { root /var/www/acme; }
		location / { return 404; }
	}
	server {
		listen 127.0.0.1:%d ssl;
		ssl_certificate /etc/nginx/tls/server.crt;
		ssl_certificate_key /etc/nginx/tls/server.key;
		root /var/www/mqttstack;
	}
}
`, httpPort, port)
}

// TestSeedFilesAndAcmeOverSSHD drives Create, Read, Diff and Update against
// a real sshd, nginx and the stand-in certbot: nginx's certificate and key
// are seed files that certbot's deploy hook takes over.
func TestSeedFilesAndAcmeOverSSHD(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sshd and nginx in a mount namespace")
	}
	dir := t.TempDir()
	httpPort := freeport.One(t)
	seedCert, seedKey := selfSigned(t, "private CA seed")
	leCert, leKey := selfSigned(t, "issued by the stand-in")
	for name, b := range map[string][]byte{"issued.crt": leCert, "issued.key": leKey, "seed.crt": seedCert, "seed.key": seedKey, "bin/certbot": []byte(certbotStandIn(dir, httpPort)), "certbot-fail": nil} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// /etc/letsencrypt does not exist on this machine: inside the namespace
	// /etc is an overlay whose changes land in a tmpfs; /usr/local/bin (first
	// on sshd's PATH) holds only the stand-in.
	h := startHost(t, fmt.Sprintf(`mkdir -p $T/ovl && mount -t tmpfs tmpfs $T/ovl && mkdir -p $T/ovl/up $T/ovl/work
mount -t overlay overlay -o lowerdir=/etc,upperdir=$T/ovl/up,workdir=$T/ovl/work /etc
mount --bind %s/bin /usr/local/bin`, dir))
	if got := h.sh(t, "command -v certbot"); got != "/usr/local/bin/certbot" {
		t.Fatalf("certbot on the host's PATH is %q, not the stand-in", got)
	}
	s := server(t)
	srv := h.srv
	paths := hostconfig.VPSPaths()
	hook := hostconfig.DeployHook(hostconfig.Stack{ServerName: acmeDomain, Paths: paths})
	if paths.NginxCert != "/etc/nginx/tls/server.crt" || paths.NginxKey != "/etc/nginx/tls/server.key" {
		t.Fatalf("the test's nginx.conf assumes hostconfig's nginx TLS paths, now %s %s", paths.NginxCert, paths.NginxKey)
	}
	callCount := func() int {
		b, _ := os.ReadFile(filepath.Join(dir, "certbot-calls"))
		return strings.Count(string(b), "\n")
	}
	in := func(page string) property.Map {
		resp, err := s.Check(p.CheckRequest{Urn: testURN, Inputs: property.NewMap(map[string]property.Value{
			"connection": obj("host", str(srv.Host), "port", property.New(float64(srv.Port)), "privateKey", str(string(srv.ClientKey)).WithSecret(true), "hostKey", str(srv.HostKey)),
			"files": obj(
				"/etc/nginx/nginx.conf", obj("content", str(acmeNginxConf(h.ngPort, httpPort)), "daemons", strs("nginx")),
				paths.NginxCert, obj("content", str(string(seedCert)), "daemons", strs("nginx"), "seed", property.New(true)),
				paths.DeployHook, obj("content", str(string(hook)), "mode", str("0755")),
				"/var/www/mqttstack/index.html", obj("content", str(page)),
			),
			"secretFiles": obj(paths.NginxKey, obj("content", str(string(seedKey)), "mode", str("0600"), "daemons", strs("nginx"), "seed", property.New(true))),
			"directories": obj("/var/www/acme", obj(), "/var/www/mqttstack", obj()),
			"acme":        obj("domain", str(acmeDomain), "email", str("ops@example.com"), "webroot", str("/var/www/acme"), "deployHook", str(paths.DeployHook)),
		})})
		if err != nil || len(resp.Failures) > 0 {
			t.Fatalf("check: %v %v", err, resp.Failures)
		}
		return resp.Inputs
	}
	acmeStatus := func(st property.Map) string { return st.Get("acmeStatus").AsString() }

	// 1. DNS does not point here yet: certbot fails; the configuration is
	// applied all the same (seed files written, nginx serving them) and the
	// failure is reported with certbot's message.
	created, err := s.Create(p.CreateRequest{Urn: testURN, Properties: in("v1")})
	if err != nil {
		t.Fatalf("create with a failing certbot: %v (a certbot failure must not fail the apply)", err)
	}
	st := created.Properties
	t.Logf("acmeStatus after a failing certbot: %s", acmeStatus(st))
	if got := acmeStatus(st); !strings.HasPrefix(got, "failed: ") || !strings.Contains(got, "Detail: DNS problem: NXDOMAIN") || strings.ContainsAny(got, "\n") {
		t.Errorf("acmeStatus after a failing certbot: %q, want `failed: ` and certbot's message on one line", got)
	}
	if n := callCount(); n != 1 {
		t.Errorf("certbot ran %d times, want 1", n)
	}
	if got := h.sh(t, "cat /var/www/mqttstack/index.html"); got != "v1" {
		t.Errorf("configuration not applied after a certbot failure: index.html %q", got)
	}
	if got := h.sh(t, "cat "+paths.NginxCert); got != strings.TrimSpace(string(seedCert)) {
		t.Errorf("seed certificate not written where absent: %q", got)
	}
	if !servedBy(t, h.ngPort, seedCert) {
		t.Fatal("nginx does not serve the seed certificate")
	}
	// the failure is retried by the next up: Diff says acme changes
	diff, err := s.Diff(p.DiffRequest{ID: created.ID, Urn: testURN, State: st, Inputs: in("v1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := diff.DetailedDiff["acme"]; !ok || len(diff.DetailedDiff) != 1 {
		t.Fatalf("diff after a failed certbot: %v, want only acme", diff.DetailedDiff)
	}

	// 2. DNS points here now: the next up issues; the deploy hook installs
	// the certificate over the seed and reloads nginx.
	if err := os.Remove(filepath.Join(dir, "certbot-fail")); err != nil {
		t.Fatal(err)
	}
	upd, err := s.Update(p.UpdateRequest{ID: created.ID, Urn: testURN, State: st, Inputs: in("v1")})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	st = upd.Properties
	if got := acmeStatus(st); got != AcmeIssued {
		t.Fatalf("acmeStatus after certbot succeeded: %q", got)
	}
	if n := callCount(); n != 2 {
		t.Errorf("certbot ran %d times, want 2", n)
	}
	if !servedBy(t, h.ngPort, leCert) {
		t.Fatal("nginx does not serve the issued certificate after the deploy hook")
	}

	// 3. refresh: the seed files changed on the host (certbot's), no drift
	read, err := s.Read(p.ReadRequest{ID: created.ID, Urn: testURN, Properties: st, Inputs: in("v1")})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !read.Properties.Get("files").Equals(st.Get("files")) || acmeStatus(read.Properties) != AcmeIssued {
		t.Errorf("refresh reports a change after certbot replaced the seed files:\nbefore %v\nafter  %v", st.Get("files"), read.Properties.Get("files"))
	}
	diff, err = s.Diff(p.DiffRequest{ID: created.ID, Urn: testURN, State: read.Properties, Inputs: in("v1")})
	if err != nil || diff.HasChanges {
		t.Fatalf("diff after issuance: %v %v, want none", diff.DetailedDiff, err)
	}

	// 4. another change: the seed files are not rewritten and certbot is
	// not run again (the live certificate exists)
	upd, err = s.Update(p.UpdateRequest{ID: created.ID, Urn: testURN, State: read.Properties, Inputs: in("v2")})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if got := h.sh(t, "cat /var/www/mqttstack/index.html"); got != "v2" {
		t.Errorf("index.html %q after update", got)
	}
	if got := h.sh(t, "cat "+paths.NginxCert); got != strings.TrimSpace(string(leCert)) {
		t.Errorf("the issued certificate was overwritten by the seed: %q", got)
	}
	if !servedBy(t, h.ngPort, leCert) {
		t.Error("nginx no longer serves the issued certificate")
	}
	if n := callCount(); n != 2 {
		t.Errorf("certbot ran %d times, want 2 (skipped once the live certificate exists)", n)
	}
	if got := acmeStatus(upd.Properties); got != AcmeIssued {
		t.Errorf("acmeStatus %q", got)
	}

	// 5. the live certificate goes away: refresh says so and the next up
	// runs certbot again
	h.sh(t, "rm -r /etc/letsencrypt/live")
	read, err = s.Read(p.ReadRequest{ID: created.ID, Urn: testURN, Properties: upd.Properties, Inputs: in("v2")})
	if err != nil {
		t.Fatal(err)
	}
	if got := acmeStatus(read.Properties); !strings.HasPrefix(got, AcmePending) {
		t.Errorf("acmeStatus after the live certificate went away: %q", got)
	}

	// 6. a live certificate this resource has not seen issued (certbot run
	// by hand, or a host whose nginx got the private-CA pair back from an
	// older provider): the next up hands it to the deploy hook instead of
	// asking Let's Encrypt again
	h.sh(t, fmt.Sprintf(`set -e; mkdir -p /etc/letsencrypt/live/%[1]s
cp %[2]s/issued.crt /etc/letsencrypt/live/%[1]s/fullchain.pem; cp %[2]s/issued.key /etc/letsencrypt/live/%[1]s/privkey.pem
install -m 0644 %[2]s/seed.crt %[3]s; install -m 0600 %[2]s/seed.key %[4]s; systemctl reload nginx`, acmeDomain, dir, paths.NginxCert, paths.NginxKey))
	if !servedBy(t, h.ngPort, seedCert) {
		t.Fatal("precondition: nginx does not serve the private-CA pair")
	}
	upd, err = s.Update(p.UpdateRequest{ID: created.ID, Urn: testURN, State: read.Properties, Inputs: in("v2")})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if got := acmeStatus(upd.Properties); got != AcmeIssued {
		t.Errorf("acmeStatus %q after installing the existing certificate", got)
	}
	if n := callCount(); n != 2 {
		t.Errorf("certbot ran %d times, want 2 (the live certificate existed)", n)
	}
	if !servedBy(t, h.ngPort, leCert) {
		t.Error("the existing live certificate was not handed to the deploy hook")
	}
}
