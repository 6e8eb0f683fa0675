package local_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/infra/local"
	"github.com/mqttstack/mqttstack/internal/stacktest"
)

// TestBrokerHoldsManyConnections opens N concurrent mTLS MQTT sessions (one
// certificate each) and holds them all, proving the rendered limits and the
// raised RLIMIT_NOFILE let the broker keep a fleet. N is 1200 by default
// (beyond the usual 1024 soft limit, so a broker that kept it fails), 200
// with -short, and MQTTSTACK_CAPACITY=19000 measures the target size.
// Durations are logged as measurements, never asserted.
func TestBrokerHoldsManyConnections(t *testing.T) {
	n := 1200
	if testing.Short() {
		n = 200
	}
	if v := os.Getenv("MQTTSTACK_CAPACITY"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("MQTTSTACK_CAPACITY=%q: want a positive count", v)
		}
	}
	t0 := time.Now()
	s := stacktest.Start(t, stacktest.WithPrivatePKI(), stacktest.WithDevices(n))
	t.Logf("issue %d identities + start: %v", n, time.Since(t0).Round(time.Millisecond))

	cfgs := make([]*tls.Config, n)
	base := s.ServerTLS()
	for i, id := range s.Devices {
		c, err := certs.LoadClient(s.PKIDir, id)
		if err != nil {
			t.Fatal(err)
		}
		cfg := base.Clone()
		cfg.Certificates = []tls.Certificate{c}
		cfgs[i] = cfg
	}

	var (
		mu    sync.Mutex
		conns []net.Conn
		lat   []time.Duration
		fails = map[string]int{}
	)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t1 := time.Now()
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", s.Target.MQTTSAddr(), cfgs[i])
			if err == nil {
				c.SetDeadline(time.Now().Add(30 * time.Second))
				// keepalive 0: the sessions must survive however long the
				// ramp takes (2.0.11 does not cap v3.1.1 keepalive, F4)
				_, err = c.Write(local.ConnectPacket(s.Devices[i], "", "", 0))
				if err == nil {
					var rc byte
					rc, err = local.ReadConnack(c)
					if err == nil && rc != 0 {
						err = fmt.Errorf("CONNACK %d", rc)
					}
				}
				c.SetDeadline(time.Time{})
			}
			d := time.Since(t1)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fails[err.Error()]++
				if c != nil {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
			lat = append(lat, d)
		}()
	}
	wg.Wait()
	ramp := time.Since(start)
	if len(fails) > 0 {
		t.Fatalf("%d of %d connects failed: %v", n-len(conns), n, fails)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(time.Microsecond) }
	pid := s.MosquittoPID()
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	t.Logf("%d sessions held: ramp %v (%.0f/s at 64 in flight); TCP+TLS+CONNACK p50 %v p99 %v max %v; broker %d fds, %s",
		len(conns), ramp.Round(time.Millisecond), float64(n)/ramp.Seconds(), pct(0.5), pct(0.99), pct(1), len(fds), rss(pid))
	if len(fds) < n {
		t.Errorf("broker holds %d descriptors for %d sessions", len(fds), n)
	}
	// with the fleet attached the broker still admits and answers a newcomer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := local.ProbeMQTTS(ctx, s.Target.MQTTSAddr(), s.Target.ServerName, base.RootCAs, s.ClientTLS(local.ProbeIdentity).Certificates[0]); err != nil {
		t.Fatalf("probe with %d sessions attached: %v", n, err)
	}
}

// rss is the VmRSS line of pid's /proc status.
func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "rss unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return "RSS " + strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	return "rss unknown"
}
