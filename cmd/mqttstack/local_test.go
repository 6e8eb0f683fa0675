package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mqttstack/mqttstack/internal/freeport"
)

// TestLocalCommand drives `mqttstack local up/status/down` end to end with
// the real daemons on free loopback ports, and checks the exit codes and
// messages a user sees.
func TestLocalCommand(t *testing.T) {
	dir := t.TempDir()
	state, pki := filepath.Join(dir, "state"), filepath.Join(dir, "pki")
	// five free ports, below the ephemeral range (tests beside this one
	// make thousands of connections): four for the daemons, one held to
	// see the in-use error
	free, _, err := freeport.Take(5, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, p := range free[:4] {
		ports = append(ports, strconv.Itoa(p))
	}
	heldPort := strconv.Itoa(free[4])
	held, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", heldPort))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		return code, out.String(), errb.String()
	}
	flags := []string{"--state-dir", state, "--pki-dir", pki}

	code, _, stderr := cli(append([]string{"local", "up", "--mqtts-port", heldPort}, flags...)...)
	if code != exitCouldNotRun || !strings.Contains(stderr, heldPort) || !strings.Contains(stderr, "--mqtts-port") {
		t.Fatalf("up on a taken port: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = cli("local", "up", "--devices", "-1")
	if code != exitUsage || !strings.Contains(stderr, "--devices -1") {
		t.Fatalf("up --devices -1: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = cli("local", "sideways")
	if code != exitUsage || !strings.Contains(stderr, `unknown subcommand "sideways"`) {
		t.Fatalf("unknown subcommand: exit %d, stderr %q", code, stderr)
	}

	up := append([]string{"local", "up", "--mqtts-port", ports[0], "--ws-port", ports[1], "--https-port", ports[2], "--http-port", ports[3], "--devices", "2"}, flags...)
	code, stdout, stderr := cli(up...)
	if code != exitOK {
		t.Fatalf("up: exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Cleanup(func() { cli(append([]string{"local", "down"}, flags[:2]...)...) })
	if !strings.Contains(stdout, filepath.Join(state, "target.json")) {
		t.Errorf("up does not print the target path: %q", stdout)
	}
	if _, err := os.Stat(filepath.Join(pki, "clients", "dev-00002.crt")); err != nil {
		t.Errorf("--devices 2 did not issue dev-00002: %v", err)
	}
	code, stdout, _ = cli(append([]string{"local", "status"}, flags[:2]...)...)
	if code != exitOK || !strings.Contains(stdout, "mosquitto   running") || !strings.Contains(stdout, "nginx       running") {
		t.Fatalf("status: exit %d\n%s", code, stdout)
	}
	// the WebSocket listeners are one line, in port order, named
	wsFirst, _ := strconv.Atoi(ports[1])
	wss := fmt.Sprintf("wss         18 WSS identity listeners 127.0.0.1:%d–%d (observer … backend-8) listening\n", wsFirst, wsFirst+17)
	if !strings.Contains(stdout, wss) || strings.Count(stdout, "127.0.0.1:") != 4 {
		t.Errorf("status does not group the WebSocket listeners as\n%s\n%s", wss, stdout)
	}
	code, stdout, _ = cli(append([]string{"local", "down"}, flags[:2]...)...)
	if code != exitOK || !strings.Contains(stdout, "stopped") {
		t.Fatalf("down: exit %d %q", code, stdout)
	}
	code, stdout, _ = cli(append([]string{"local", "status"}, flags[:2]...)...)
	if code != exitCouldNotRun || !strings.Contains(stdout, "not running") {
		t.Fatalf("status after down: exit %d %q", code, stdout)
	}
}
