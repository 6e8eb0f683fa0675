package sshhost

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/host"
)

func TestParseSS(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []host.Listener
		wantErr string
	}{
		{name: "owners, v4 and v6, sorted", in: `LISTEN 0      128    127.0.0.1:59165 0.0.0.0:* users:(("python3",pid=30163,fd=4))
LISTEN 0      511      0.0.0.0:80      0.0.0.0:* users:(("nginx",pid=12,fd=6),("nginx",pid=11,fd=6))
LISTEN 0      128        [::1]:35057    [::]:* users:(("python3",pid=30163,fd=3))
LISTEN 0      128      0.0.0.0:2024  0.0.0.0:*
`, want: []host.Listener{
			{Addr: netip.MustParseAddrPort("0.0.0.0:80"), PID: 12, Process: "nginx"},
			{Addr: netip.MustParseAddrPort("0.0.0.0:2024")},
			{Addr: netip.MustParseAddrPort("127.0.0.1:59165"), PID: 30163, Process: "python3"},
			{Addr: netip.MustParseAddrPort("[::1]:35057"), PID: 30163, Process: "python3"},
		}},
		{name: "scopes, star and mapped", in: `LISTEN 0 4096 127.0.0.53%lo:53 0.0.0.0:* users:(("systemd-resolve",pid=5,fd=14))
LISTEN 0 128 [fe80::1]%eth0:22 [::]:*
LISTEN 0 128 *:8883 *:*
LISTEN 0 128 [::ffff:127.0.0.1]:9001 [::]:*
`, want: []host.Listener{
			{Addr: netip.MustParseAddrPort("127.0.0.1:9001")},
			{Addr: netip.MustParseAddrPort("127.0.0.53:53"), PID: 5, Process: "systemd-resolve"},
			{Addr: netip.MustParseAddrPort("[::]:8883")},
			{Addr: netip.MustParseAddrPort("[fe80::1]:22")},
		}},
		{name: "empty", in: "\n", want: nil},
		{name: "not ss -Htl", in: "State Recv-Q Send-Q Local Address:Port Peer\n", wantErr: "line 1"},
		{name: "bad port", in: "LISTEN 0 1 1.2.3.4:http 0.0.0.0:*\n", wantErr: "port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSS([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseSS: %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("parseSS = %+v\nwant %+v", got, tt.want)
			}
			for i := range got {
				if got[i].Listener != tt.want[i] {
					t.Errorf("[%d] = %+v, want %+v", i, got[i].Listener, tt.want[i])
				}
			}
		})
	}
}

func TestCostsFrom(t *testing.T) {
	stats := "--- pagesize\n4096\n--- stat\n" +
		"10 (mosquitto) S 1 10 10 0 -1 0 0 0 0 0 300 100 0 0 20 0 1 0 1 1 250\n" +
		"20 (nginx) S 1 20 20 0 -1 0 0 0 0 0 10 10 0 0 20 0 1 0 1 1 25\n" +
		"21 (nginx) S 20 20 20 0 -1 0 0 0 0 0 50 50 0 0 20 0 1 0 1 1 50\n" +
		"22 (nginx) S 20 20 20 0 -1 0 0 0 0 0 25 25 0 0 20 0 1 0 1 1 75\n" +
		"30 (other) S 1 30 30 0 -1 0 0 0 0 0 999 999 0 0 20 0 1 0 1 1 9999\n"
	tests := []struct {
		name string
		pids string
		want []host.Cost
	}{
		{"both, nginx with its workers", "10\n20\n", []host.Cost{
			{Daemon: host.Mosquitto, PID: 10, CPU: 4 * time.Second, RSS: 250 * 4096},
			{Daemon: host.Nginx, PID: 20, CPU: 1700 * time.Millisecond, RSS: 150 * 4096},
		}},
		{"broker down", "0\n20\n", []host.Cost{
			{Daemon: host.Nginx, PID: 20, CPU: 1700 * time.Millisecond, RSS: 150 * 4096},
		}},
		{"stale pid file", "99\n0\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := costsFrom([]byte(tt.pids + stats))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("costsFrom = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("[%d] = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
	for _, bad := range []string{"10\n20\n", "10\n--- pagesize\n4096\n--- stat\n", "10\n20\n--- pagesize\nx\n--- stat\n"} {
		if _, err := costsFrom([]byte(bad)); err == nil {
			t.Errorf("costsFrom(%q): no error", bad)
		}
	}
}
