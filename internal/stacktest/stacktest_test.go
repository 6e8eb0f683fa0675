package stacktest_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttstack/mqttstack/host"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/internal/stacktest"
)

func TestMain(m *testing.M) { os.Exit(stacktest.Main(m)) }

func connect(t *testing.T, s *stacktest.Stack, id string) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("ssl://" + s.Target.MQTTSAddr()).SetClientID(id).
		SetTLSConfig(s.ClientTLS(id)).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(10 * time.Second)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// retained subscribes as an observer and returns the retained payload of
// topic (waiting up to 10 s), or "" if none arrives.
func retained(t *testing.T, s *stacktest.Stack, observer, topic string) string {
	t.Helper()
	c := connect(t, s, observer)
	got := make(chan string, 1)
	c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case got <- string(m.Payload()):
		default:
		}
	}).WaitTimeout(10 * time.Second)
	defer c.Disconnect(100)
	select {
	case p := <-got:
		return p
	case <-time.After(10 * time.Second):
		return ""
	}
}

// TestRestartKeepsRetainedAndKillRecovers: Restart (SIGTERM) saves the
// persistence file, so a retained message survives; Kill is a crash, and
// the broker comes back on the same ports after Restart.
func TestRestartKeepsRetainedAndKillRecovers(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDeviceIDs("devA"))
	dev := connect(t, s, "devA")
	topic := "devices/devA/status"
	if tok := dev.Publish(topic, 1, true, "online"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	dev.Disconnect(100)
	before := s.MosquittoPID()

	s.Restart()
	if s.MosquittoPID() == before || s.MosquittoPID() == 0 {
		t.Fatalf("pid %d after Restart (was %d)", s.MosquittoPID(), before)
	}
	if p := retained(t, s, "observer-1", topic); p != "online" {
		t.Fatalf("retained after Restart = %q, want \"online\"", p)
	}

	s.Kill()
	if s.MosquittoPID() != 0 {
		t.Fatal("mosquitto still reported running after Kill")
	}
	s.Restart()
	// the broker answers again on the same address
	connect(t, s, "observer-2")
	if !strings.Contains(s.MosquittoLog(), "mosquitto version 2.0.11 running") {
		t.Errorf("log lacks the restart:\n%s", s.MosquittoLog())
	}
}

func TestReloadWaitsForTheBroker(t *testing.T) {
	s := stacktest.Start(t)
	n := strings.Count(s.MosquittoLog(), "Reloading config.")
	s.Reload()
	// at least one more: a reload slower than a second is signalled again
	if got := strings.Count(s.MosquittoLog(), "Reloading config."); got <= n {
		t.Fatalf("Reload returned with %d reloads logged, want more than %d", got, n)
	}
	s.ReloadNginx()
	if !strings.Contains(s.NginxLog(), "gracefully shutting down") {
		t.Fatal("ReloadNginx returned before nginx's old worker stopped")
	}
}

func TestMutationHelpers(t *testing.T) {
	files := []hostconfig.File{
		{Path: "/x/mosquitto.conf", Content: []byte("a\n  allow_anonymous false\nuse_x true\nuse_y true\n")},
		{Path: "/x/acl", Content: []byte("allow_anonymous false\n")},
	}
	files = stacktest.ReplaceLine("mosquitto.conf", "allow_anonymous false", "allow_anonymous true")(files)
	files = stacktest.DropLines("mosquitto.conf", "use_")(files)
	if got := string(files[0].Content); got != "a\nallow_anonymous true\n" {
		t.Errorf("mutated mosquitto.conf = %q", got)
	}
	if got := string(files[1].Content); got != "allow_anonymous false\n" {
		t.Errorf("other file touched: %q", got)
	}
	for name, f := range map[string]func([]hostconfig.File) []hostconfig.File{
		"ReplaceLine": stacktest.ReplaceLine("mosquitto.conf", "no such line", ""),
		"DropLines":   stacktest.DropLines("nginx.conf", "server_tokens"),
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("a mutation that matches nothing did not panic")
				}
			}()
			f(files)
		})
	}
}

// TestWithDeviceWSS: the option reaches the rendered stack and the target.
func TestWithDeviceWSS(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDeviceWSS())
	if !s.Target.WSSDevices {
		t.Fatal("target lacks wss_devices: true")
	}
	conf := s.File(s.Target.Local.MosquittoConf)
	if n := strings.Count(conf, "protocol websockets"); n != len(hostconfig.DefaultWSSIdentities())+1 {
		t.Errorf("%d websockets listeners, want one per WSS identity plus the shared device one", n)
	}
}

// TestHosts: the stack through both host.Host implementations, the local
// one and the SSH one over a real sshd, sees the same broker.
func TestHosts(t *testing.T) {
	s := stacktest.Start(t)
	ctx := context.Background()
	for name, h := range map[string]host.Host{"local": s.Host(), "ssh": s.SSHHost()} {
		t.Run(name, func(t *testing.T) {
			ls, err := h.Listeners(ctx)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, l := range ls {
				if l.Addr.Port() == uint16(s.Target.MQTTSPort) {
					found = l.Daemon == host.Mosquitto && l.PID == s.MosquittoPID()
				}
			}
			if !found {
				t.Errorf("no mosquitto (pid %d) listener on %d: %+v", s.MosquittoPID(), s.Target.MQTTSPort, ls)
			}
			if err := h.Reload(ctx, host.Mosquitto); err != nil {
				t.Errorf("Reload: %v", err)
			}
		})
	}
	if s.SSHHost() != s.SSHHost() {
		t.Error("SSHHost starts a new sshd per call")
	}
}
