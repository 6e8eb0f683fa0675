package security

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/infra/local"
	"github.com/mqttstack/mqttstack/target"
)

// freePort asks the kernel for a free loopback port.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startStack brings up a real local stack (mosquitto + nginx) in a temp
// dir on free loopback ports, with mutate applied to the rendered files.
func startStack(t testing.TB, mutate func([]hostconfig.File) []hostconfig.File) *target.Target {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tg, err := local.Up(ctx, local.Options{
		StateDir: filepath.Join(dir, "state"), PKIDir: filepath.Join(dir, "pki"),
		MQTTSPort: freePort(t), WSPort: freePort(t), OpsPort: freePort(t), HTTPSPort: freePort(t), HTTPPort: freePort(t),
		Mutate: mutate,
	})
	if err != nil {
		t.Fatalf("local stack: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = local.Down(ctx, filepath.Join(dir, "state"))
	})
	return tg
}
