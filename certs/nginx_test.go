package certs

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/internal/freeport"
)

// TestNginxAcceptsPKI checks the CRL layout against nginx, which (unlike
// Mosquitto) sets CRL_CHECK_ALL for ssl_crl: every CA in the chain, the
// root included, needs its CRL in the file. ca.crl holds the root's and the
// sub-CA's, so sub-CA clients verify and revoked ones do not.
func TestNginxAcceptsPKI(t *testing.T) {
	bin := lookTool(t, "nginx", "nginx")
	n := newNegativePKI(t)
	p := PathsOf(n.root.Dir)
	port := freeport.One(t)
	prefix := t.TempDir()
	conf := filepath.Join(prefix, "nginx.conf")
	text := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen 127.0.0.1:%[2]d ssl;
    ssl_certificate %[3]s;
    ssl_certificate_key %[4]s;
    ssl_client_certificate %[5]s;
    ssl_crl %[6]s;
    ssl_verify_client optional;
    ssl_verify_depth 2;
    location / {
      if ($ssl_client_verify != SUCCESS) { return 403 "$ssl_client_verify\n"; }
      return 200 "$ssl_client_s_dn\n";
    }
  }
}
`, prefix, port, p.ServerCert, p.ServerKey, p.CACert, p.CRL)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", conf)
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })

	pool, _ := LoadCAPool(p.CACert)
	get := func(dir, id string) (int, string, error) {
		cert, err := LoadClient(dir, id)
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pool, ServerName: DefaultServerName,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
		}}}
		resp, err := c.Get("https://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b)), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			errLog, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			t.Fatalf("nginx exited: %s %s", log.String(), errLog)
		case <-ctx.Done():
			t.Fatal("nginx did not listen within 15s")
		case <-time.After(50 * time.Millisecond):
		}
	}
	tests := []struct {
		name, dir, id string
		status        int
		body          string
	}{
		{"valid", n.root.Dir, "dev-1", 200, "CN=dev-1"},
		{"subca-valid", n.set.SubCADir, n.set.Valid, 200, "CN=" + n.set.Valid},
		// nginx answers 400 to a certificate that fails verification even
		// with "optional"; the reason is in its error log.
		{"revoked", n.root.Dir, "dev-2", 400, "certificate revoked"},
		{"subca-revoked", n.set.SubCADir, n.set.Revoked, 400, "certificate revoked"},
		{"foreign", n.set.ForeignDir, "dev-1", 400, "unable to verify the first certificate"},
		{"expired", n.set.SubCADir, n.set.Expired, 400, "certificate has expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body, err := get(tc.dir, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			errLog, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			if tc.status == 400 {
				// The log line for this request is the last verify error.
				i := strings.LastIndex(string(errLog), "client SSL certificate verify error")
				if status != 400 || i < 0 || !strings.Contains(strings.SplitN(string(errLog[i:]), "\n", 2)[0], tc.body) {
					t.Fatalf("status %d, want 400 with %q in the error log:\n%s", status, tc.body, errLog)
				}
				return
			}
			if status != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("status %d body %q, want %d %q\n%s", status, body, tc.status, tc.body, errLog)
			}
		})
	}
}
