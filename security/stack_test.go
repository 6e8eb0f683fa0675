package security

import (
	"context"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/infra/local"
	"github.com/mqttstack/mqttstack/internal/stacktest"
)

func TestMain(m *testing.M) { os.Exit(stacktest.Main(m)) }

// startStack brings up a real local stack (mosquitto + nginx) on free
// loopback ports with the ops listener, and its own PKI: the suite revokes
// and re-issues its CI identities, which must not race other stacks.
// It returns the suite's options for it: the target and the stack's Host
// (infra/local's), so host-side checks run.
func startStack(t testing.TB, mutations ...func([]hostconfig.File) []hostconfig.File) Options {
	t.Helper()
	opts := []stacktest.Option{stacktest.WithOpsPort(), stacktest.WithPrivatePKI()}
	for _, m := range mutations {
		opts = append(opts, stacktest.WithMutation(m))
	}
	s := stacktest.Start(t, opts...)
	return Options{Target: s.Target, Host: s.Host()}
}

// startStackUnready starts a hardened stack, then restarts mosquitto on a
// mutated copy of its config without stacktest's readiness probe. Needed
// for mutations that break the probe itself: without require_certificate
// 2.0.11 never asks for a client certificate, so even the probe identity
// gets CONNACK 4 and stacktest would never call the broker ready. The
// hand-started broker is not the local stack's any more, so the options
// carry no Host: the CI sub-CA's CRL is not reloaded and host-side checks
// are skipped (the checks this serves are network ones).
func startStackUnready(t *testing.T, mutate func([]hostconfig.File) []hostconfig.File) Options {
	t.Helper()
	s := stacktest.Start(t, stacktest.WithOpsPort(), stacktest.WithPrivatePKI())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := local.Stop(ctx, s.StateDir, local.Mosquitto); err != nil {
		t.Fatalf("stop mosquitto: %v", err)
	}
	// the stopped broker must have let go of its port, else the mutated one
	// fails to bind while the readiness dial below still reaches the old
	addr := s.Target.MQTTSAddr()
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the stopped mosquitto still listens on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	conf := s.Target.Local.MosquittoConf
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	files := mutate([]hostconfig.File{{Path: conf, Mode: 0o644, Content: b}})
	if err := os.WriteFile(conf, files[0].Content, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(local.MosquittoBin, "-c", conf)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("mutated mosquitto exited: %v", err)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mutated mosquitto does not listen on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Target.Local.MosquittoPID = cmd.Process.Pid
	return Options{Target: s.Target}
}
