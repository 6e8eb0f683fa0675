package certs

import (
	"context"
	"testing"
	"time"
)

// BenchmarkIssue10000 issues 10,000 device identities (key, certificate,
// password: 30,000 files) into a fresh PKI per iteration. cpu-s/op is the
// process's user+system CPU time for the timed part, which shows the cost
// independently of how many other processes share the machine.
func BenchmarkIssue10000(b *testing.B) {
	ids := DeviceIDs("dev-", 1, 10000)
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		a, err := Init(InitOptions{Dir: b.TempDir(), Observers: []string{}, Backends: []string{}})
		if err != nil {
			b.Fatal(err)
		}
		c0 := cpuTime()
		b.StartTimer()
		res, err := a.IssueClients(context.Background(), ids)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += cpuTime() - c0
		b.StartTimer()
		if len(res.Issued) != len(ids) {
			b.Fatalf("issued %d of %d", len(res.Issued), len(ids))
		}
	}
	if cpu > 0 {
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	}
}

// BenchmarkLoadClient is the per-device cost of the fleet loading its
// identities (19,000 of them for a large run).
func BenchmarkLoadClient(b *testing.B) {
	a, err := Init(InitOptions{Dir: b.TempDir(), Observers: []string{}, Backends: []string{}})
	if err != nil {
		b.Fatal(err)
	}
	ids := DeviceIDs("dev-", 1, 100)
	if _, err := a.IssueClients(context.Background(), ids); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		c, err := LoadClient(a.Dir, ids[i%len(ids)])
		if err != nil || c.Leaf == nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkCheck2000 is the expiry report over 2,000 clients; per client
// it is what `certs check` costs for a fleet of 20,000.
func BenchmarkCheck2000(b *testing.B) {
	a, err := Init(InitOptions{Dir: b.TempDir(), Observers: []string{}, Backends: []string{}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.IssueClients(context.Background(), DeviceIDs("dev-", 1, 2000)); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for b.Loop() {
		es, err := a.Check(30*24*time.Hour, now)
		if err != nil || len(es) != 2003 {
			b.Fatalf("%d entries, %v", len(es), err)
		}
	}
}

// BenchmarkReissue10000 is a whole fleet's re-issue under the successor CA
// of a rollover (`certs issue --ca next --from 1 --count 10000`): 10,000
// G1 identities exist, `ca next` ran, and the timed part issues each id
// again under G2, keeping its password (read from the G1 files).
func BenchmarkReissue10000(b *testing.B) {
	ids := DeviceIDs("dev-", 1, 10000)
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		a, err := Init(InitOptions{Dir: b.TempDir(), Observers: []string{}, Backends: []string{}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.IssueClients(context.Background(), ids); err != nil {
			b.Fatal(err)
		}
		if _, err := a.Next(NextOptions{}); err != nil {
			b.Fatal(err)
		}
		c0 := cpuTime()
		b.StartTimer()
		g2, err := a.Generation(GenNext)
		if err != nil {
			b.Fatal(err)
		}
		res, err := g2.IssueClients(context.Background(), ids)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += cpuTime() - c0
		b.StartTimer()
		if len(res.Issued) != len(ids) {
			b.Fatalf("re-issued %d of %d", len(res.Issued), len(ids))
		}
	}
	if cpu > 0 {
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	}
}
