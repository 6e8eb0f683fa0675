package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/internal/stacktest"
	"github.com/mqttstack/mqttstack/loadtest/result"
)

// procCounters are the test process's own counts (threads included, the
// stack's daemons not): read and write system calls (/proc/self/io) and
// voluntary context switches (getrusage), and how many times a goroutine
// was made to run (the runtime samples one in eight into its scheduling
// latencies: a proportional count).
type procCounters struct{ reads, writes, sleeps, runs int64 }

func readProcCounters(b *testing.B) procCounters {
	var c procCounters
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "syscr":
			c.reads = n
		case "syscw":
			c.writes = n
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	c.sleeps = ru.Nvcsw
	m := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(m)
	if m[0].Value.Kind() == metrics.KindFloat64Histogram {
		for _, n := range m[0].Value.Float64Histogram().Counts {
			c.runs += int64(n)
		}
	}
	return c
}

// BenchmarkToolCost runs two scenarios through Run against a real local
// Mosquitto and reports the tool's cost as the run's own report shows it,
// next to the broker's, read through the host in the same run:
//
//   - publish: 100 devices × 1,000 QoS 1 messages back to back (the broker's
//     full rate), observers included: tool and broker CPU per publish;
//   - publish-observer-qos1: the same with the observers at QoS 1: how much
//     their in-flight window leaves unverified (observer overload);
//   - memory: 5,000 devices (MQTTSTACK_BENCH_DEVICES) ramp and report every
//     5 s: the tool's peak RSS per connected device (peak resident memory /
//     peak connected, as the console shows it) and the broker's RSS per
//     session.
//
// GOGC is 50 as `mqttstack run` sets it (GOGC in the environment wins).
// Profile with -cpuprofile/-memprofile; numbers depend on the machine and on
// what else runs on it: see docs/BENCHMARKS.md.
//
//	go test -run '^$' -bench ToolCost -benchtime 1x -timeout 20m ./loadtest/
func BenchmarkToolCost(b *testing.B) {
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(50))
	}
	n := 5000
	if s := os.Getenv("MQTTSTACK_BENCH_DEVICES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	s := stacktest.Start(b, stacktest.WithDevices(n))
	h := s.Host()
	run := func(b *testing.B, yaml string, qos1 bool) *result.Result {
		sc := parse(b, yaml)
		p := compile(b, s, sc, Shard{})
		var log bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		// MQTTSTACK_PROFILE=dir profiles the run only (not the stack's
		// set-up, which issues thousands of identities).
		if dir := os.Getenv("MQTTSTACK_PROFILE"); dir != "" {
			f, err := os.Create(filepath.Join(dir, strings.ReplaceAll(b.Name(), "/", "_")+".cpu.pprof"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				b.Fatal(err)
			}
			defer pprof.StopCPUProfile()
		}
		// The cores `mqttstack run` gives the tool against a local stack
		// (see Procs), unless GOMAXPROCS is set.
		if os.Getenv("GOMAXPROCS") == "" {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(Procs(runtime.NumCPU(), true)))
		}
		r, err := Run(ctx, p, Options{Log: &log, Quiet: true, Host: h, ObserverQoS1: qos1})
		if err != nil {
			b.Fatalf("run: %v\n%s", err, log.String())
		}
		var console bytes.Buffer
		result.WriteConsole(&console, r, nil)
		b.Logf("%s\n%s", log.String(), console.String())
		if d := r.Delivery; d.Lost != 0 || (d.Unverified != 0 && !qos1) {
			b.Errorf("delivery %+v", d)
		}
		return r
	}
	const burst = `
fleet: {count: 100, prefix: dev-, qos: 1}
connect: {rate: 500/s}
stages:
  - {kind: ramp}
  - {kind: burst, count: 1000, duration: 15s}
`
	// The same burst with the observers at QoS 1: what their in-flight
	// window costs in unverified messages (reported as observer overload).
	b.Run("publish-observer-qos1", func(b *testing.B) {
		for range b.N {
			r := run(b, burst, true)
			b.ReportMetric(float64(r.Delivery.Unverified), "unverified")
			b.ReportMetric(float64(r.Delivery.Lost), "lost")
		}
	})
	b.Run("publish", func(b *testing.B) {
		for range b.N {
			before := readProcCounters(b)
			r := run(b, burst, false)
			after := readProcCounters(b)
			// What the CPU per publish is made of, counted rather than
			// timed (steadier than CPU time on a shared machine): the
			// tool's read and write system calls and the times one of its
			// threads went to sleep (a futex or epoll wait: the scheduler's
			// cost), over the whole run.
			if n := float64(r.Total.Counts.Published); n > 0 {
				b.ReportMetric(float64(after.reads-before.reads)/n, "reads/publish")
				b.ReportMetric(float64(after.writes-before.writes)/n, "writes/publish")
				b.ReportMetric(float64(after.sleeps-before.sleeps)/n, "thread-sleeps/publish")
				b.ReportMetric(float64(after.runs-before.runs)/n, "sched-samples/publish")
			}
			b.ReportMetric(r.Cost.CPUPerPublishMicros, "tool-µs-cpu/publish")
			if r.Broker != nil {
				b.ReportMetric(r.Broker.CPUPerPublishMicros, "broker-µs-cpu/publish")
			}
			b.ReportMetric(float64(r.Total.Counts.Published), "publishes")
			for _, m := range []result.Metric{result.PUBACK, result.E2E} {
				if sm, ok := r.Total.Summary(m); ok {
					b.ReportMetric(float64(sm.P50), m.String()+"-p50-µs/publish")
					b.ReportMetric(float64(sm.P99), m.String()+"-p99-µs/publish")
				}
			}
		}
	})
	b.Run(fmt.Sprintf("memory-%d", n), func(b *testing.B) {
		for range b.N {
			if dir := os.Getenv("MQTTSTACK_PROFILE"); dir != "" {
				// In the steady stage, every device connected: the heap
				// and the goroutines then.
				t := time.AfterFunc(time.Duration(n/500+12)*time.Second, func() {
					if f, err := os.Create(filepath.Join(dir, "memory.heap.pprof")); err == nil {
						pprof.Lookup("heap").WriteTo(f, 0)
						f.Close()
					}
					if f, err := os.Create(filepath.Join(dir, "memory.goroutine.txt")); err == nil {
						pprof.Lookup("goroutine").WriteTo(f, 1)
						f.Close()
					}
				})
				defer t.Stop()
			}
			r := run(b, fmt.Sprintf(`
fleet: {count: %d, prefix: dev-, qos: 1}
connect: {rate: 500/s, max_in_flight: 128}
stages:
  - {kind: ramp}
  - {kind: steady, duration: 20s, every: 5s}
`, n), false)
			b.ReportMetric(r.Cost.RSSPerDeviceBytes/1024, "tool-KiB-rss/device")
			b.ReportMetric(float64(r.Cost.MaxRSSBytes)/(1<<20), "tool-MiB-rss-peak")
			b.ReportMetric(r.Cost.CPUPerConnectMillis*1000, "tool-µs-cpu/connect")
			if r.Broker != nil {
				b.ReportMetric(r.Broker.RSSPerSessionBytes/1024, "broker-KiB-rss/session")
				b.ReportMetric(r.Broker.CPUPerConnectMillis*1000, "broker-µs-cpu/connect")
			}
		}
	})
}
