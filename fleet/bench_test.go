package fleet

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/internal/stacktest"
)

// BenchmarkConnect5000 connects 5,000 mTLS devices (ECDSA P-256) to a real
// local Mosquitto started by stacktest, faster than one Mosquitto core can
// accept them, and reports:
//
//   - connects/s and Mosquitto's CPU utilisation during the connect phase
//     (from /proc/<pid>/stat; ~100% means the broker, not the tool, was the
//     bottleneck),
//   - CPU per TLS connect of the tool and of Mosquitto,
//   - RSS per connected idle device (the tool's resident memory with all
//     devices connected, minus before connecting, divided by 5,000),
//   - CPU per QoS 1 publish of the tool and of Mosquitto (each device
//     publishes twice; one observer receives everything),
//   - failed connects (must be 0).
//
// Run once: go test -run '^$' -bench BenchmarkConnect5000 -benchtime 1x ./fleet/
// The numbers depend on the machine and on what else runs on it.
func BenchmarkConnect5000(b *testing.B) {
	if os.Getenv("MQTTSTACK_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 512
	}
	n := 5000
	if s := os.Getenv("MQTTSTACK_BENCH_DEVICES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	if _, _, err := RaiseFileLimit(); err != nil {
		b.Fatal(err)
	}
	// One observer receives every device's burst: with the default
	// max_queued_messages (1,000) the broker would drop most of a 5,000
	// message burst queued for it, which is the broker's policy, not a cost.
	s := stacktest.Start(b, stacktest.WithDevices(n), stacktest.WithStack(func(st *hostconfig.Stack) {
		st.Limits.MaxQueuedMessages = 4 * n
	}))
	pool, err := certs.LoadCAPool(s.Target.CACert)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]Identity, n)
	for i, id := range s.Devices[:n] {
		ids[i] = Identity{ID: id, Cert: loadIdentity(b, s.PKIDir, id)}
	}
	obsCert := loadIdentity(b, s.PKIDir, s.Target.Observer)
	pid := s.MosquittoPID()
	b.ResetTimer()
	for range b.N {
		benchConnect(b, s.Target.MQTTSAddr(), s.Target.ServerName, pool, ids, obsCert, s.Target.Observer, pid)
	}
}

func benchConnect(b *testing.B, addr, serverName string, pool *x509.CertPool, ids []Identity, obsCert *tls.Certificate, obsID string, pid int) {
	n := len(ids)
	sink := NewSink(1 << 18)
	counts := map[Kind]int{}
	causes := map[string]int{}
	stopDrain := make(chan struct{})
	drained := make(chan struct{})
	go func() { // the collector: count only
		defer close(drained)
		for {
			select {
			case e := <-sink.Events():
				counts[e.Kind]++
				if e.Cause != "" {
					causes[e.Cause]++
				}
			case <-stopDrain:
				return
			}
		}
	}()
	cfg := Config{
		Addr: addr, ServerName: serverName, RootCAs: pool,
		KeepAlive: 30 * time.Second, CleanSession: true, QoS: 1, Sink: sink,
		ConnectTimeout: 30 * time.Second,
		Backoff:        Backoff{Min: 500 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.3},
	}
	f, err := New(cfg, ids, Options{MaxInFlight: 256, Workers: 128})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	obs, err := NewObserver(ObserverConfig{Addr: addr, ServerName: serverName, RootCAs: cfg.RootCAs, ID: obsID, Cert: obsCert,
		Devices: idsOf(ids), QoS: 1, KeepAlive: 30 * time.Second, Sink: sink})
	if err != nil {
		b.Fatal(err)
	}
	if err := obs.Start(ctx); err != nil {
		b.Fatal(err)
	}
	if err := f.Start(ctx); err != nil {
		b.Fatal(err)
	}

	settle()
	rss0 := selfRSS(b)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	g0 := runtime.NumGoroutine()
	tool0, broker0 := selfCPU(), procCPU(b, pid)
	start := time.Now()
	// Ask for more than the broker can take: MaxInFlight and the broker's
	// pace decide the rate, so the broker should be the one at 100%.
	f.Connect(ctx, f.Devices(), PerSecond(5000))
	for f.ConnectedCount() < n && time.Since(start) < 2*time.Minute {
		time.Sleep(50 * time.Millisecond) // devices whose first attempt failed retry
	}
	wall := time.Since(start)
	tool1, broker1 := selfCPU(), procCPU(b, pid)
	connected := f.ConnectedCount()

	// Idle: first as the process is after a few seconds (the GC's headroom
	// included, which GOGC sets), then the floor: what is live.
	time.Sleep(3 * time.Second)
	rssNatural := selfRSS(b)
	settle()
	rss1 := selfRSS(b)
	runtime.ReadMemStats(&ms1)
	if path := os.Getenv("MQTTSTACK_HEAPPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	g1 := runtime.NumGoroutine()

	// Publish: every device twice, QoS 1, one observer receiving.
	tool2, broker2 := selfCPU(), procCPU(b, pid)
	pubStart := time.Now()
	for range 2 {
		done := make(chan struct{})
		go func() {
			defer close(done)
			stage, stop := context.WithCancel(ctx)
			defer stop()
			f.Burst(stage, f.Devices(), 1, 0, Shape{Payload: PayloadDHT11})
		}()
		<-done
		for !f.Idle() {
			time.Sleep(5 * time.Millisecond)
		}
	}
	sent := func(i int) int64 { return f.Devices()[i].Sent() }
	obs.Drain(ctx, sent, 3*time.Second)
	pubWall := time.Since(pubStart)
	tool3, broker3 := selfCPU(), procCPU(b, pid)
	expected, unique, lost := obs.Lost(sent)

	b.StopTimer()
	f.Close(250 * time.Millisecond)
	obs.Stop()
	close(stopDrain)
	<-drained

	failed := counts[KindConnectFailed]
	b.ReportMetric(float64(n)/wall.Seconds(), "connects/s")
	b.ReportMetric(100*(broker1-broker0).Seconds()/wall.Seconds(), "broker-cpu-%")
	b.ReportMetric(100*(tool1-tool0).Seconds()/wall.Seconds(), "tool-cpu-%")
	b.ReportMetric(float64((tool1-tool0).Microseconds())/float64(n), "tool-µs-cpu/connect")
	b.ReportMetric(float64((broker1-broker0).Microseconds())/float64(n), "broker-µs-cpu/connect")
	b.ReportMetric(float64(rss1-rss0)/float64(n)/1024, "KiB-rss/device")
	b.ReportMetric(float64(rss1)/float64(n)/1024, "KiB-total-rss/device")
	b.ReportMetric(float64(rssNatural-rss0)/float64(n)/1024, "KiB-rss-before-gc/device")
	b.ReportMetric(float64(g1-g0)/float64(n), "goroutines/device")
	if expected > 0 {
		b.ReportMetric(float64((tool3-tool2).Microseconds())/float64(expected), "tool-µs-cpu/publish")
		b.ReportMetric(float64((broker3-broker2).Microseconds())/float64(expected), "broker-µs-cpu/publish")
	}
	b.ReportMetric(float64(failed), "failed-connects")
	b.Logf("%d devices: %d connected in %v (%.0f/s), %d failed attempts %v; broker cpu %v, tool cpu %v over the connect phase",
		n, connected, wall.Round(time.Millisecond), float64(n)/wall.Seconds(), failed, causes, (broker1 - broker0), (tool1 - tool0))
	b.Logf("idle: rss %s → %s (%.1f KiB/device; %s, %.1f KiB/device before a forced GC), goroutines %d → %d; GOGC=%s GOMEMLIMIT=%s",
		mib(rss0), mib(rss1), float64(rss1-rss0)/float64(n)/1024, mib(rssNatural), float64(rssNatural-rss0)/float64(n)/1024, g0, g1, os.Getenv("GOGC"), os.Getenv("GOMEMLIMIT"))
	b.Logf("idle per device: heap %.1f KiB, stacks %.1f KiB, other runtime %.1f KiB",
		float64(ms1.HeapInuse-ms0.HeapInuse)/float64(n)/1024, float64(ms1.StackInuse-ms0.StackInuse)/float64(n)/1024,
		float64((ms1.Sys-ms1.HeapSys-ms1.StackSys)-(ms0.Sys-ms0.HeapSys-ms0.StackSys))/float64(n)/1024)
	b.Logf("publish: %d sent, %d unique received, %d lost in %v; tool cpu %v, broker cpu %v; load average %s",
		expected, unique, lost, pubWall.Round(time.Millisecond), tool3-tool2, broker3-broker2, loadavg())
	if connected != n || failed != 0 {
		b.Errorf("%d of %d connected, %d failed attempts (%v): want all, none", connected, n, failed, causes)
	}
	if lost != 0 {
		b.Errorf("lost %d of %d QoS 1 messages", lost, expected)
	}
}

func idsOf(ids []Identity) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.ID
	}
	return out
}

// settle runs the collector and returns freed pages to the OS, so RSS
// reflects what is live rather than when the GC last ran.
func settle() {
	// Each GC shrinks an idle goroutine's stack by at most half; an idle
	// process gets a forced GC every two minutes anyway.
	for range 3 {
		runtime.GC()
	}
	debug.FreeOSMemory()
}

func selfRSS(tb testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU reads utime+stime of pid from /proc/<pid>/stat (10ms ticks).
func procCPU(tb testing.TB, pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func mib(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB" }
