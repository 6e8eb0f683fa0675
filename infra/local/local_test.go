package local_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/infra/local"
	"github.com/mqttstack/mqttstack/internal/freeport"
	"github.com/mqttstack/mqttstack/internal/stacktest"
)

func TestMain(m *testing.M) { os.Exit(stacktest.Main(m)) }

// connectPaho connects identity id over mTLS (or over wss when url starts
// with wss://) with the negative-test paho options of SECURITY.md §2.
func connectPaho(t *testing.T, url string, cfg *tls.Config, id, password string) (mqtt.Client, error) {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetTLSConfig(cfg).
		SetAutoReconnect(false).SetConnectRetry(false).SetCleanSession(true).
		SetConnectTimeout(10 * time.Second).SetOrderMatters(false)
	if password != "" {
		o.SetUsername(id).SetPassword(password)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(15 * time.Second) {
		return nil, errors.New("connect: no answer in 15 s")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

func mqttsURL(s *stacktest.Stack) string { return "ssl://" + s.Target.MQTTSAddr() }

func TestDevicePublishReachesObserver(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDevices(2))
	dev := s.Devices[1]

	got := make(chan mqtt.Message, 10)
	obs, err := connectPaho(t, mqttsURL(s), s.ClientTLS(s.Target.Observer), s.Target.Observer, "")
	if err != nil {
		t.Fatalf("observer connect: %v", err)
	}
	if tok := obs.Subscribe("devices/#", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("observer subscribe: %v", tok.Error())
	}
	d, err := connectPaho(t, mqttsURL(s), s.ClientTLS(dev), dev, "")
	if err != nil {
		t.Fatalf("device connect: %v", err)
	}
	topic := "devices/" + dev + "/telemetry"
	payload := fmt.Sprintf(`{"device":%q,"seq":1}`, dev)
	if tok := d.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case m := <-got:
		if m.Topic() != topic || string(m.Payload()) != payload {
			t.Fatalf("observer got %s %q, want %s %q", m.Topic(), m.Payload(), topic, payload)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("observer received nothing within 10 s")
	}
	// the broker took the CN as username and client id
	if !strings.Contains(s.MosquittoLog(), "as "+dev+" ") {
		t.Errorf("broker log has no connection as %s:\n%s", dev, s.MosquittoLog())
	}
}

// refused asserts that CONNECT over TLS with cfg gets no CONNACK: under TLS
// 1.3 the certificate alert arrives on the first read (SECURITY.md §0.1.5),
// under TLS 1.2 at the handshake.
func refused(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err // refused at handshake (TLS 1.2)
	}
	defer conn.Close()
	// TLS 1.3: the server judges the client certificate after the client's
	// handshake is done, and its alert follows at once. Read it before
	// writing: a CONNECT written after the server closed draws a TCP reset,
	// and a reset discards the alert still unread in the socket buffer.
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return err
		}
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(local.ConnectPacket("x", "", "", 30)); err != nil {
		return err
	}
	rc, err := local.ReadConnack(conn)
	if err == nil {
		t.Errorf("got CONNACK rc=%d, want no CONNACK", rc)
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("no answer within 10 s instead of a TLS alert or close: %v", err)
	}
	return err
}

func TestRefusedClients(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithPrivatePKI(), stacktest.WithDeviceIDs("devA"))
	a := s.Authority()
	now := time.Now()
	for id, o := range map[string]certs.ClientOptions{
		"expired": {NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)},
		"notyet":  {NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(48 * time.Hour)},
	} {
		if err := a.IssueClient(id, o); err != nil {
			t.Fatalf("issue %s: %v", id, err)
		}
	}
	foreignDir := filepath.Join(t.TempDir(), "foreign")
	foreign, err := certs.NewForeign(foreignDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := foreign.IssueClient("devA", certs.ClientOptions{}); err != nil {
		t.Fatal(err)
	}
	selfDir := filepath.Join(t.TempDir(), "self")
	if err := certs.SelfSigned(selfDir, "devA"); err != nil {
		t.Fatal(err)
	}
	load := func(dir, id string) *tls.Config {
		cfg := s.ServerTLS()
		c, err := certs.LoadClient(dir, id)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
		return cfg
	}
	addr := s.Target.MQTTSAddr()

	// positive control first: the same path with a valid certificate works
	if err := local.ProbeMQTTS(context.Background(), addr, s.Target.ServerName, s.ServerTLS().RootCAs, s.ClientTLS("devA").Certificates[0]); err != nil {
		t.Fatalf("valid devA refused: %v", err)
	}
	// want: the alert OpenSSL sends (SECURITY.md §8); TLS 1.2 without a
	// certificate is a plain handshake failure.
	cases := []struct {
		name   string
		cfg    *tls.Config
		want   string
		want12 string
	}{
		{"no client certificate", s.ServerTLS(), "certificate required", "handshake failure"},
		{"foreign CA", load(foreignDir, "devA"), "unknown certificate authority", ""},
		{"self-signed", load(selfDir, "devA"), "unknown certificate authority", ""},
		{"expired", s.ClientTLS("expired"), "expired certificate", ""},
		{"not yet valid", s.ClientTLS("notyet"), "bad certificate", ""},
	}
	for _, tc := range cases {
		for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
			t.Run(fmt.Sprintf("%s/%s", tc.name, tls.VersionName(v)), func(t *testing.T) {
				c := tc.cfg.Clone()
				c.MaxVersion = v
				err := refused(t, addr, c)
				want := tc.want
				if v == tls.VersionTLS12 && tc.want12 != "" {
					want = tc.want12
				}
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("refused with %v, want an error containing %q", err, want)
				}
			})
		}
	}

	t.Run("revoked after CRL rewrite and SIGHUP", func(t *testing.T) {
		if err := a.IssueClient("victim", certs.ClientOptions{}); err != nil {
			t.Fatal(err)
		}
		cfg := s.ClientTLS("victim")
		if err := local.ProbeMQTTS(context.Background(), addr, s.Target.ServerName, cfg.RootCAs, cfg.Certificates[0]); err != nil {
			t.Fatalf("victim refused before revocation: %v", err)
		}
		if err := a.Revoke("victim"); err != nil {
			t.Fatal(err)
		}
		s.Reload()
		err := refused(t, addr, cfg)
		if err == nil || !strings.Contains(err.Error(), "revoked") {
			t.Errorf("want a 'certificate revoked' alert, got %v", err)
		}
		// nginx reads the same CRL: after its reload /mqtt refuses the
		// revoked certificate (400), while a valid one is not refused
		s.ReloadNginx()
		if resp, _ := httpsGet(t, s, cfg, "/mqtt", wsUpgrade()); resp.StatusCode != 400 {
			t.Errorf("revoked certificate on /mqtt: %s, want 400", resp.Status)
		}
		if resp, _ := httpsGet(t, s, s.ClientTLS("observer-2"), "/mqtt", wsUpgrade()); resp.StatusCode == 400 || resp.StatusCode == 403 {
			t.Errorf("valid WSS identity's certificate on /mqtt after CRL reload: %s", resp.Status)
		}
		// a valid certificate still connects with the new CRL loaded
		if err := local.ProbeMQTTS(context.Background(), addr, s.Target.ServerName, cfg.RootCAs, s.ClientTLS("devA").Certificates[0]); err != nil {
			t.Errorf("devA refused after CRL reload: %v", err)
		}
	})

	t.Run("plaintext TCP", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		conn.Write(local.ConnectPacket("x", "", "", 30))
		rc, err := local.ReadConnack(conn)
		if err == nil {
			t.Fatalf("plaintext CONNECT got CONNACK rc=%d", rc)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("plaintext CONNECT left hanging: %v", err)
		}
	})
}

// httpsGet fetches path from nginx with SNI and Host = server name.
// httpsGetStatus sends one request and reads only the status line (a 101's
// body is the live WebSocket).
func httpsGetStatus(t *testing.T, s *stacktest.Stack, cfg *tls.Config, path string, hdr http.Header) (int, error) {
	t.Helper()
	addr := net.JoinHostPort(s.Target.Host, strconv.Itoa(s.Target.Local.HTTPSPort))
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("https %s: %v", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := http.NewRequest("GET", "https://"+s.Target.ServerName+path, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("https %s%s: %v", addr, path, err)
	}
	return resp.StatusCode, nil
}

func httpsGet(t *testing.T, s *stacktest.Stack, cfg *tls.Config, path string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	addr := net.JoinHostPort(s.Target.Host, strconv.Itoa(s.Target.Local.HTTPSPort))
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("https %s: %v", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := http.NewRequest("GET", "https://"+s.Target.ServerName+path, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Close = true
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("https %s%s: %v", addr, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestNginx(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDeviceIDs("devA", "devB"))

	t.Run("healthz", func(t *testing.T) {
		resp, body := httpsGet(t, s, s.ServerTLS(), "/healthz", nil)
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("/healthz: %s %q", resp.Status, body)
		}
		if h := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(h, "max-age=63072000") {
			t.Errorf("HSTS = %q", h)
		}
		if sv := resp.Header.Get("Server"); sv != "nginx" {
			t.Errorf("Server = %q, want no version", sv)
		}
	})
	t.Run("ca.crt", func(t *testing.T) {
		want, err := os.ReadFile(s.Target.CACert)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := httpsGet(t, s, s.ServerTLS(), "/ca.crt", nil)
		if resp.StatusCode != 200 || string(body) != string(want) {
			t.Fatalf("/ca.crt: %s, %d bytes (want the %d-byte CA)", resp.Status, len(body), len(want))
		}
	})
	t.Run("status page and stub_status", func(t *testing.T) {
		resp, body := httpsGet(t, s, s.ServerTLS(), "/", nil)
		if resp.StatusCode != 200 || !strings.Contains(string(body), s.Target.ServerName) {
			t.Fatalf("/: %s %q", resp.Status, body)
		}
		resp, _ = httpsGet(t, s, s.ServerTLS(), "/status", nil)
		if resp.StatusCode != 403 {
			t.Fatalf("/status from a non-allowed address: %s, want 403", resp.Status)
		}
	})
	t.Run("wss: a WSS identity's certificate and its own password", func(t *testing.T) {
		c, err := connectPaho(t, s.Target.WSSURL, s.ClientTLS("backend-1"), "backend-1", s.Password("backend-1"))
		if err != nil {
			b, _ := os.ReadFile(filepath.Join(s.StateDir, "nginx", "access.log"))
			t.Fatalf("wss connect: %v\n%s", err, b)
		}
		if tok := c.Publish("devices/devA/cmd/x", 1, false, "x"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("wss publish: %v", tok.Error())
		}
		if _, err := connectPaho(t, s.Target.WSSURL, s.ClientTLS("observer-1"), "observer-1", s.Password("observer-1")); err != nil {
			t.Fatalf("observer-1 over wss: %v", err)
		}
	})
	t.Run("wss: one identity's certificate with another's password is CONNACK 5", func(t *testing.T) {
		// F8 closed: observer-1's certificate reaches observer-1's listener,
		// whose password file knows only observer-1
		_, err := connectPaho(t, s.Target.WSSURL, s.ClientTLS("observer-1"), "backend-2", s.Password("backend-2"))
		if !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
			t.Fatalf("observer-1's certificate + backend-2's password: %v, want CONNACK 5 (not Authorized)", err)
		}
	})
	t.Run("wss: a device certificate is 403 (devices use 8883)", func(t *testing.T) {
		if s.Target.WSSDevices {
			t.Fatal("target says wss_devices without DeviceWSS")
		}
		resp, _ := httpsGet(t, s, s.ClientTLS("devA"), "/mqtt", wsUpgrade())
		if resp.StatusCode != 403 {
			t.Fatalf("/mqtt with a device certificate: %s, want 403", resp.Status)
		}
		if _, err := connectPaho(t, s.Target.WSSURL, s.ClientTLS("devA"), "devA", s.Password("devA")); err == nil {
			t.Fatal("a device connected over wss without DeviceWSS")
		}
	})
	t.Run("wss without client certificate is 403", func(t *testing.T) {
		resp, _ := httpsGet(t, s, s.ServerTLS(), "/mqtt", wsUpgrade())
		if resp.StatusCode != 403 {
			t.Fatalf("/mqtt without a client certificate: %s, want 403", resp.Status)
		}
		if _, err := connectPaho(t, s.Target.WSSURL, s.ServerTLS(), "observer-1", s.Password("observer-1")); err == nil {
			t.Fatal("paho over wss without a client certificate connected")
		}
	})
	t.Run("plain GET /mqtt is refused by nginx itself", func(t *testing.T) {
		resp, _ := httpsGet(t, s, s.ClientTLS("observer-1"), "/mqtt", nil)
		if resp.StatusCode != 426 {
			t.Fatalf("GET /mqtt without Upgrade: %s, want 426 (not a proxied 5xx)", resp.Status)
		}
	})
	t.Run("upgrade without the mqtt subprotocol is 400 (WEB-07)", func(t *testing.T) {
		for proto, want := range map[string]int{"sec-bogus": 400, "": 400, "mqttx": 400, "mqtt": 101, "mqttv3.1": 101, "chat, mqtt": 101, "MQTT": 400} {
			h := wsUpgrade()
			if proto == "" {
				delete(h, "Sec-Websocket-Protocol")
			} else {
				h["Sec-Websocket-Protocol"] = []string{proto}
			}
			resp, _ := httpsGetStatus(t, s, s.ClientTLS("observer-3"), "/mqtt", h)
			if resp != want {
				t.Errorf("upgrade with Sec-WebSocket-Protocol %q: %d, want %d", proto, resp, want)
			}
		}
	})
	t.Run("wss with a wrong password is refused", func(t *testing.T) {
		_, err := connectPaho(t, s.Target.WSSURL, s.ClientTLS("observer-1"), "observer-1", "wrong-password")
		if !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
			t.Fatalf("wrong password: %v, want CONNACK 5", err)
		}
	})
	t.Run("unknown SNI is rejected", func(t *testing.T) {
		cfg := s.ServerTLS()
		cfg.ServerName = "evil.example"
		cfg.InsecureSkipVerify = true // only to prove the handshake itself is refused
		addr := net.JoinHostPort(s.Target.Host, strconv.Itoa(s.Target.Local.HTTPSPort))
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
		if err == nil {
			conn.Close()
			t.Fatal("handshake with unknown SNI succeeded")
		}
	})
	t.Run("http redirects to the fixed name", func(t *testing.T) {
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/x", s.Target.Local.HTTPPort), nil)
		req.Host = "evil.example"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := fmt.Sprintf("https://%s:%d/x", s.Target.ServerName, s.Target.Local.HTTPSPort)
		if resp.StatusCode != 301 || resp.Header.Get("Location") != want {
			t.Fatalf("redirect: %s Location %q, want 301 %q", resp.Status, resp.Header.Get("Location"), want)
		}
	})
}

func TestLifecycle(t *testing.T) {
	s := stacktest.Start(t)
	ctx := context.Background()
	mpid, npid := s.MosquittoPID(), s.NginxPID()
	if mpid == 0 || npid == 0 {
		t.Fatalf("pids: mosquitto %d nginx %d", mpid, npid)
	}

	t.Run("rlimit", func(t *testing.T) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", mpid))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Max open files") {
				f := strings.Fields(l)
				if f[3] != f[4] {
					t.Errorf("mosquitto soft limit %s below hard limit %s", f[3], f[4])
				}
			}
		}
	})

	opts := local.Options{StateDir: s.StateDir, PKIDir: s.PKIDir}
	t.Run("up twice starts nothing new", func(t *testing.T) {
		tg, err := local.Up(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if tg.Local.MosquittoPID != mpid || tg.Local.NginxPID != npid {
			t.Fatalf("pids changed: %d/%d -> %d/%d", mpid, npid, tg.Local.MosquittoPID, tg.Local.NginxPID)
		}
		if tg.MQTTSPort != s.Target.MQTTSPort {
			t.Fatalf("port changed to %d", tg.MQTTSPort)
		}
	})

	t.Run("port in use names the port and the flag", func(t *testing.T) {
		_, err := local.Up(ctx, local.Options{
			StateDir: filepath.Join(t.TempDir(), "other"), PKIDir: s.PKIDir,
			MQTTSPort: s.Target.MQTTSPort, WSPort: 65001, HTTPSPort: 65402, HTTPPort: 65403,
		})
		var pe *local.PortInUseError
		if !errors.As(err, &pe) {
			t.Fatalf("want PortInUseError, got %v", err)
		}
		msg := err.Error()
		if !strings.Contains(msg, strconv.Itoa(s.Target.MQTTSPort)) || !strings.Contains(msg, "--mqtts-port") {
			t.Fatalf("error does not name the port and flag: %s", msg)
		}
	})
	t.Run("a taken port inside the WebSocket block names --ws-port", func(t *testing.T) {
		// the running stack holds WSPort … WSPort+17: a block starting 3
		// below it overlaps
		_, err := local.Up(ctx, local.Options{
			StateDir: filepath.Join(t.TempDir(), "other"), PKIDir: s.PKIDir,
			MQTTSPort: 65404, WSPort: s.Target.Local.WSPort - 3, HTTPSPort: 65405, HTTPPort: 65406,
		})
		var pe *local.PortInUseError
		if !errors.As(err, &pe) || pe.Flag != "--ws-port" {
			t.Fatalf("want a PortInUseError for --ws-port, got %v", err)
		}
	})

	t.Run("crash, stale pid file, up restarts the broker", func(t *testing.T) {
		s.Kill()
		// the pid file survives the crash and names a dead pid
		if _, err := os.Stat(filepath.Join(s.StateDir, "mosquitto.pid")); err != nil {
			t.Fatalf("pid file after crash: %v", err)
		}
		var sb strings.Builder
		if err := local.Status(ctx, s.StateDir, &sb); err == nil {
			t.Fatalf("status after a crash reports no problem:\n%s", sb.String())
		}
		tg, err := local.Up(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if tg.Local.MosquittoPID == mpid || tg.Local.MosquittoPID == 0 {
			t.Fatalf("mosquitto pid %d after restart (was %d)", tg.Local.MosquittoPID, mpid)
		}
		if tg.Local.NginxPID != npid {
			t.Fatalf("nginx restarted needlessly: %d -> %d", npid, tg.Local.NginxPID)
		}
		mpid = tg.Local.MosquittoPID
	})

	t.Run("pid file naming a foreign process is stale", func(t *testing.T) {
		s.Kill()
		// our own pid: alive, but not mosquitto with this config
		os.WriteFile(filepath.Join(s.StateDir, "mosquitto.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
		if pid, err := local.PID(s.StateDir, local.Mosquitto); err != nil || pid != 0 {
			t.Fatalf("PID = %d, %v; want 0 (stale)", pid, err)
		}
		os.WriteFile(filepath.Join(s.StateDir, "mosquitto.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
		// Stop must not signal a pid it did not start (we would not be
		// here to check otherwise); the stale file goes
		if err := local.Stop(ctx, s.StateDir, local.Mosquitto); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(s.StateDir, "mosquitto.pid")); err == nil {
			t.Error("stale pid file left after Stop")
		}
		s.Restart()
		if s.MosquittoPID() == 0 {
			t.Fatal("mosquitto not running after Restart")
		}
		mpid = s.MosquittoPID()
	})

	t.Run("status", func(t *testing.T) {
		var sb strings.Builder
		if err := local.Status(ctx, s.StateDir, &sb); err != nil {
			t.Fatalf("status: %v\n%s", err, sb.String())
		}
		for _, want := range []string{"mosquitto   running (pid " + strconv.Itoa(mpid), "mqtts", "listening", "target.json", "mTLS CONNECT as local-probe: ok", "GET /healthz: ok"} {
			if !strings.Contains(sb.String(), want) {
				t.Errorf("status lacks %q:\n%s", want, sb.String())
			}
		}
	})

	t.Run("down leaves nothing running", func(t *testing.T) {
		nginxWorkers := childrenOf(npid)
		if err := local.Down(ctx, s.StateDir); err != nil {
			t.Fatal(err)
		}
		for _, pid := range append([]int{mpid, npid}, nginxWorkers...) {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && isLive(pid) {
				t.Errorf("pid %d still running after down", pid)
			}
		}
		for _, p := range []int{s.Target.MQTTSPort, s.Target.Local.WSPort, s.Target.Local.HTTPSPort, s.Target.Local.HTTPPort} {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				t.Errorf("port %d still taken after down: %v", p, err)
				continue
			}
			l.Close()
		}
		for _, f := range []string{"mosquitto.pid", "nginx.pid", "target.json"} {
			if _, err := os.Stat(filepath.Join(s.StateDir, f)); err == nil {
				t.Errorf("%s left behind", f)
			}
		}
		if err := local.Down(ctx, s.StateDir); err != nil {
			t.Errorf("second down: %v", err)
		}
	})
}

// childrenOf lists the pids whose parent is pid (nginx's workers).
func childrenOf(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}

func isLive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i+2 < len(b) && b[i+2] != 'Z'
}

// TestRefreshPasswords: an identity issued after `up` cannot use wss until
// its password file is rewritten; RefreshPasswords does that (for a WSS
// identity's own file and, with DeviceWSS, the shared device file) and
// reloads. Which files exist is read back from the running config.
func TestRefreshPasswords(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithPrivatePKI(), stacktest.WithDeviceWSS(), stacktest.WithStack(func(st *hostconfig.Stack) {
		st.WSSIdentities = append(st.WSSIdentities, "late")
	}))
	if !s.Target.WSSDevices {
		t.Error("target of a DeviceWSS stack lacks wss_devices: true")
	}
	for _, id := range []string{"late", "late-dev"} {
		if err := s.Authority().IssueClient(id, certs.ClientOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := connectPaho(t, s.Target.WSSURL, s.ClientTLS(id), id, s.Password(id)); !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
			t.Fatalf("%s issued after up, before the password refresh: %v, want CONNACK 5", id, err)
		}
	}
	s.RefreshPasswords()
	for _, id := range []string{"late", "late-dev"} {
		if _, err := connectPaho(t, s.Target.WSSURL, s.ClientTLS(id), id, s.Password(id)); err != nil {
			t.Fatalf("%s after RefreshPasswords: %v", id, err)
		}
	}
	own, err := os.ReadFile(filepath.Join(s.StateDir, "mosquitto", "passwd.d", "late"))
	if err != nil || strings.Count(string(own), "\n") != 1 || !strings.HasPrefix(string(own), "late:$7$") {
		t.Errorf("late's own password file: %q %v, want exactly its line", own, err)
	}
	for _, p := range []string{filepath.Join(s.StateDir, "mosquitto", "passwd"), filepath.Join(s.StateDir, "mosquitto", "passwd.d", "late")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
}

// TestDeviceWSS: the opt-in mode lets a device connect over wss with its
// certificate and password (the load engine's wss transport), through the
// shared listener; the WSS identities keep their own listeners.
func TestDeviceWSS(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDeviceIDs("devA"), stacktest.WithDeviceWSS())
	if !s.Target.WSSDevices {
		t.Fatal("target lacks wss_devices: true")
	}
	if _, err := connectPaho(t, s.Target.WSSURL, s.ClientTLS("devA"), "devA", s.Password("devA")); err != nil {
		t.Fatalf("device over wss with DeviceWSS: %v", err)
	}
	// a WSS identity still reaches only its own listener
	if _, err := connectPaho(t, s.Target.WSSURL, s.ClientTLS("observer-4"), "backend-4", s.Password("backend-4")); !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
		t.Fatalf("observer-4's certificate + backend-4's password with DeviceWSS: %v, want CONNACK 5", err)
	}
	conf := s.File(s.Target.Local.MosquittoConf)
	if !strings.Contains(conf, "does NOT\n# bind the certificate to the username (F8)") {
		t.Error("mosquitto.conf does not warn that DeviceWSS does not bind certificate and username")
	}
}

// TestUpRenewsExpiringCRL: a CRL close to its nextUpdate would make the
// broker refuse every client once it passes; up re-signs it.
func TestUpRenewsExpiringCRL(t *testing.T) {
	pki := filepath.Join(t.TempDir(), "pki")
	if _, err := certs.Init(certs.InitOptions{Dir: pki, CRLNextUpdate: time.Hour}); err != nil {
		t.Fatal(err)
	}
	s := stacktest.Start(t, stacktest.WithPKIDir(pki), stacktest.WithDeviceIDs("devA"))
	crls, err := certs.LoadCRLs(filepath.Join(pki, "ca.crl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range crls {
		if time.Until(c.NextUpdate) < 7*24*time.Hour {
			t.Errorf("CRL nextUpdate %v still inside a week", c.NextUpdate)
		}
	}
	cfg := s.ClientTLS("devA")
	if err := local.ProbeMQTTS(t.Context(), s.Target.MQTTSAddr(), s.Target.ServerName, cfg.RootCAs, cfg.Certificates[0]); err != nil {
		t.Fatalf("devA after CRL renewal: %v", err)
	}
}

// TestUpRefusesPKIWithoutLocalhost: a PKI made for a VPS name only cannot
// serve the local target; up says so and how to fix it.
func TestUpRefusesPKIWithoutLocalhost(t *testing.T) {
	pki := filepath.Join(t.TempDir(), "pki")
	if _, err := certs.Init(certs.InitOptions{Dir: pki, ServerName: "mqtt.example.com", IPs: []net.IP{net.IPv4(203, 0, 113, 7)}}); err != nil {
		t.Fatal(err)
	}
	p := freePorts(t, 4)
	_, err := local.Up(t.Context(), local.Options{StateDir: filepath.Join(t.TempDir(), "state"), PKIDir: pki, MQTTSPort: p[0], WSPort: p[1], HTTPSPort: p[2], HTTPPort: p[3]})
	if err == nil || !strings.Contains(err.Error(), "localhost") || !strings.Contains(err.Error(), "--pki-dir") {
		t.Fatalf("up on a PKI without localhost: %v", err)
	}
}

// freePorts returns n-1 distinct loopback ports that were free a moment
// ago, with p[1] the base of a block for the broker's WebSocket listeners
// (one per default WSS identity, plus one for DeviceWSS).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ps, ws, err := freeport.Take(n-1, len(hostconfig.DefaultWSSIdentities())+1)
	if err != nil {
		t.Fatal(err)
	}
	return append([]int{ps[0], ws}, ps[1:]...)
}

// wsUpgrade are the headers of a WebSocket upgrade for MQTT.
func wsUpgrade() http.Header {
	return http.Header{
		"Upgrade":                {"websocket"},
		"Connection":             {"Upgrade"},
		"Sec-Websocket-Key":      {"dGhlIHNhbXBsZSBub25jZQ=="},
		"Sec-Websocket-Version":  {"13"},
		"Sec-Websocket-Protocol": {"mqtt"},
	}
}

// TestStatusAllowList: /status answers 200 to an allowed source (WithStack
// adjusts the rendered stack) and 403 to the rest (TestNginx).
func TestStatusAllowList(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithStack(func(st *hostconfig.Stack) {
		st.StatusAllow = []string{"127.0.0.1/32"}
	}))
	resp, body := httpsGet(t, s, s.ServerTLS(), "/status", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Active connections") {
		t.Fatalf("/status from an allowed address: %s %q", resp.Status, body)
	}
}

// TestConcurrentUpStartsOneStack: two `up`s racing on one state dir (two
// terminals, two CI steps) end with one broker and one nginx, both callers
// getting the same target.
func TestConcurrentUpStartsOneStack(t *testing.T) {
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	if _, err := certs.Init(certs.InitOptions{Dir: pki}); err != nil {
		t.Fatal(err)
	}
	p := freePorts(t, 4)
	o := local.Options{StateDir: filepath.Join(dir, "state"), PKIDir: pki, MQTTSPort: p[0], WSPort: p[1], HTTPSPort: p[2], HTTPPort: p[3], TieToProcess: true}
	t.Cleanup(func() { local.Down(context.Background(), o.StateDir) })
	type res struct {
		mpid, npid int
		err        error
	}
	out := make(chan res, 2)
	for range 2 {
		go func() {
			tg, err := local.Up(context.Background(), o)
			if err != nil {
				out <- res{err: err}
				return
			}
			out <- res{tg.Local.MosquittoPID, tg.Local.NginxPID, nil}
		}()
	}
	a, b := <-out, <-out
	if a.err != nil || b.err != nil {
		t.Fatalf("up: %v / %v", a.err, b.err)
	}
	if a.mpid != b.mpid || a.npid != b.npid || a.mpid == 0 {
		t.Fatalf("two stacks: mosquitto %d/%d nginx %d/%d", a.mpid, b.mpid, a.npid, b.npid)
	}
}

// TestWSUpgradeThrottle: with the VPS-like burst configured, a burst of
// upgrades from one address is cut by nginx's limit_req (AUTH-04): of 30
// simultaneous upgrades, at most the burst and the refill pass.
func TestWSUpgradeThrottle(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithStack(func(st *hostconfig.Stack) {
		st.Limits.NginxWSBurst = 2
	}))
	addr := net.JoinHostPort(s.Target.Host, strconv.Itoa(s.Target.Local.HTTPSPort))
	cfg := s.ClientTLS("observer-5")
	// in parallel: mosquitto 2.0.11 answers each upgrade only on its next
	// loop turn (~100-200 ms), which alone would pace serial requests at
	// about the limit's own rate
	statuses := make(chan int, 30)
	for range 30 {
		go func() {
			// read only the status line: a 101's body is the live WebSocket
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
			if err != nil {
				statuses <- -1
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			req, _ := http.NewRequest("GET", "https://"+s.Target.ServerName+"/mqtt", nil)
			req.Header = wsUpgrade()
			req.Write(conn)
			resp, err := http.ReadResponse(bufio.NewReader(conn), req)
			if err != nil {
				statuses <- -1
				return
			}
			statuses <- resp.StatusCode
		}()
	}
	codes := map[int]int{}
	for range 30 {
		codes[<-statuses]++
	}
	t.Logf("30 simultaneous upgrades, burst 2: %v", codes)
	if codes[503] == 0 || codes[101] == 0 {
		t.Fatalf("30 upgrades: status counts %v, want some 101 and some 503", codes)
	}
}
