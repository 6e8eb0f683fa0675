package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/internal/stacktest"
	"github.com/mqttstack/mqttstack/loadtest/result"
)

// TestShardsEndToEnd runs one scenario as four `mqttstack run --shard i/4`
// processes at once (the built binary, not the in-process CLI) against one
// real local stack, merges their results with `mqttstack report merge`, and
// checks that the merge is exact: every counter, histogram count, per-second
// series point and delivery figure of the merged result is the sum of the
// shards'; the shards' devices are disjoint and cover the fleet; every
// shard's observer saw every message its devices published; and merge
// refuses a shard given twice.
func TestShardsEndToEnd(t *testing.T) {
	const (
		devices = 400
		shards  = 4
	)
	bin := buildBinary(t)
	s := stacktest.Start(t, stacktest.WithDevices(devices))
	dir := t.TempDir()
	scenario := filepath.Join(dir, "shard-e2e.yaml")
	if err := os.WriteFile(scenario, []byte(fmt.Sprintf(`name: shard-e2e
description: %d devices in %d shards, ramp then 5s of QoS 1 telemetry every second, with commands
fleet: {count: %d, prefix: dev-, qos: 1}
connect: {rate: 400/s, max_in_flight: 64, timeout: 10s}
stages:
  - {kind: ramp}
  - {kind: steady, duration: 5s, every: 1s}
commands: {rate: 40/s}
thresholds:
  loss: "== 0"
  connect_failures: "== 0"
`, devices, shards, devices)), 0o644); err != nil {
		t.Fatal(err)
	}

	// The four shards run concurrently, each its own process, bounded in time.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	files := make([]string, shards)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	start := time.Now()
	for i := range shards {
		out := filepath.Join(dir, fmt.Sprintf("shard%d", i+1))
		files[i] = filepath.Join(out, fmt.Sprintf("result-shard-%dof%d.json", i+1, shards))
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, stdout, stderr := runBinary(ctx, bin, "run", scenario, "--target", s.TargetPath,
				"--shard", fmt.Sprintf("%d/%d", i+1, shards), "--out", out, "--quiet")
			if code != exitOK {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("shard %d/%d: exit %d\nstdout:\n%s\nstderr:\n%s", i+1, shards, code, stdout, stderr))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d shard processes of %d devices ran in %v", shards, devices, time.Since(start).Round(time.Millisecond))
	if len(failures) > 0 {
		t.Fatal(strings.Join(failures, "\n"))
	}

	merged := filepath.Join(dir, "merged.json")
	mergeArgs := append([]string{"report", "merge", "-o", merged, "-scenario", scenario}, files...)
	if code, stdout, stderr := runBinary(ctx, bin, mergeArgs...); code != exitOK || !strings.Contains(stdout, fmt.Sprintf("merged %d results", shards)) {
		t.Fatalf("report merge: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	parts := make([]*result.Result, shards)
	for i, f := range files {
		r, err := result.ReadJSON(f)
		if err != nil {
			t.Fatal(err)
		}
		parts[i] = r
	}
	m, err := result.ReadJSON(merged)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("devices", func(t *testing.T) {
		checkShardDevices(t, parts, m, s.Devices)
	})
	t.Run("counters", func(t *testing.T) {
		var sum result.Counts
		for _, p := range parts {
			sum = plusCounts(sum, p.Total.Counts)
		}
		if m.Total.Counts != sum {
			t.Errorf("merged total counts\n %+v\nsum of shards\n %+v", m.Total.Counts, sum)
		}
		if c := m.Total.Counts; c.Connects != devices || c.ConnectFailures != 0 || c.Published == 0 {
			t.Errorf("merged: %d connects (want %d), %d failures, %d published", c.Connects, devices, c.ConnectFailures, c.Published)
		}
		// phases are matched by name across the shards
		if len(m.Phases) == 0 {
			t.Fatal("merged result has no phases")
		}
		for _, mp := range m.Phases {
			var want result.Counts
			found := 0
			for _, p := range parts {
				if pp, ok := p.Phase(mp.Name); ok {
					want = plusCounts(want, pp.Counts)
					found++
				}
			}
			if found != shards || mp.Counts != want {
				t.Errorf("phase %q: in %d of %d shards; merged counts %+v, sum %+v", mp.Name, found, shards, mp.Counts, want)
			}
		}
		var errSum, mergedErr int64
		for _, p := range parts {
			for _, e := range p.Errors {
				errSum += e.Count
			}
		}
		for _, e := range m.Errors {
			mergedErr += e.Count
		}
		if mergedErr != errSum {
			t.Errorf("merged errors %d, shards %d", mergedErr, errSum)
		}
	})
	t.Run("commands", func(t *testing.T) {
		var sent, recv int64
		for i, p := range parts {
			c := p.Total.Counts
			if c.CommandsSent == 0 || c.CommandsReceived == 0 || c.CommandsReceived > c.CommandsSent {
				t.Errorf("shard %d: commands sent %d received %d", i+1, c.CommandsSent, c.CommandsReceived)
			}
			sent += c.CommandsSent
			recv += c.CommandsReceived
		}
		if m.Total.Counts.CommandsSent != sent || m.Total.Counts.CommandsReceived != recv {
			t.Errorf("merged commands sent %d received %d, shards %d/%d",
				m.Total.Counts.CommandsSent, m.Total.Counts.CommandsReceived, sent, recv)
		}
	})
	t.Run("histograms", func(t *testing.T) {
		phases := []string{""} // "" is the total
		for _, p := range m.Phases {
			phases = append(phases, p.Name)
		}
		seen := 0
		for _, name := range phases {
			mp := &m.Total
			if name != "" {
				mp, _ = m.Phase(name)
			}
			for _, metric := range result.Metrics() {
				var count, lo, hi int64
				var p50lo, p50hi int64
				lo, p50lo = 1<<62, 1<<62
				for _, p := range parts {
					pp := &p.Total
					if name != "" {
						if pp, _ = p.Phase(name); pp == nil {
							continue
						}
					}
					if s, ok := pp.Summary(metric); ok {
						count += s.Count
						lo, hi = min(lo, s.Min), max(hi, s.Max)
						p50lo, p50hi = min(p50lo, s.P50), max(p50hi, s.P50)
					}
				}
				ms, ok := mp.Summary(metric)
				if count == 0 {
					if ok && ms.Count != 0 {
						t.Errorf("phase %q %s: merged %d observations, shards none", name, metric, ms.Count)
					}
					continue
				}
				seen++
				if !ok || ms.Count != count {
					t.Errorf("phase %q %s: merged count %v, sum of shards %d", name, metric, summaryCount(ms, ok), count)
					continue
				}
				// bucket-by-bucket merge: the extremes are the shards' own,
				// and the median of a mixture lies between the parts' medians
				if ms.Min != lo || ms.Max != hi || ms.P50 < p50lo || ms.P50 > p50hi {
					t.Errorf("phase %q %s: merged min %d max %d p50 %d; shards min %d max %d p50 in [%d, %d] µs",
						name, metric, ms.Min, ms.Max, ms.P50, lo, hi, p50lo, p50hi)
				}
			}
		}
		for _, metric := range []result.Metric{result.TCP, result.TLS, result.CONNACK, result.PUBACK, result.E2E} {
			if s, ok := m.Total.Summary(metric); !ok || s.Count == 0 {
				t.Errorf("merged total has no %s observations", metric)
			}
		}
		if seen == 0 {
			t.Error("no histogram compared")
		}
	})
	t.Run("series", func(t *testing.T) {
		want := map[int64]result.Counts{}
		for _, p := range parts {
			for _, sec := range p.Series {
				want[sec.T] = plusCounts(want[sec.T], sec.Counts)
			}
		}
		got := map[int64]result.Counts{}
		for i, sec := range m.Series {
			if i > 0 && sec.T != m.Series[i-1].T+1 {
				t.Errorf("merged series jumps from %d to %d", m.Series[i-1].T, sec.T)
			}
			got[sec.T] = sec.Counts
		}
		for ts, c := range want {
			if got[ts] != c {
				t.Errorf("second %d: merged %+v, sum of shards %+v", ts, got[ts], c)
			}
		}
		var total result.Counts
		for _, c := range got {
			total = plusCounts(total, c)
		}
		if total.Published != m.Total.Counts.Published || total.Connects != m.Total.Counts.Connects {
			t.Errorf("merged series add up to %d published %d connects; total says %d, %d",
				total.Published, total.Connects, m.Total.Counts.Published, m.Total.Counts.Connects)
		}
	})
	t.Run("delivery", func(t *testing.T) {
		var exp, recv, pub int64
		for i, p := range parts {
			d := p.Delivery
			if d.Expected == 0 || d.Lost != 0 || d.Received != d.Expected || d.Expected != p.Total.Counts.Published || d.Duplicates != 0 {
				t.Errorf("shard %d: delivery %+v, its devices published %d", i+1, d, p.Total.Counts.Published)
			}
			exp += d.Expected
			recv += d.Received
			pub += p.Total.Counts.Published
		}
		d := m.Delivery
		if d.Lost != 0 || d.Expected != exp || d.Received != recv || d.Received != pub {
			t.Errorf("merged delivery %+v; shards expected %d received %d, devices published %d", d, exp, recv, pub)
		}
		if len(m.Thresholds) == 0 || !result.Passed(m.Thresholds) {
			t.Errorf("merged thresholds (evaluated by report merge -scenario): %+v", m.Thresholds)
		}
	})
	t.Run("cost", func(t *testing.T) {
		var rss int64
		for _, p := range parts {
			rss += p.Cost.MaxRSSBytes
		}
		if m.Cost.MaxRSSBytes != rss || rss == 0 {
			t.Errorf("merged max RSS %d, sum of the shard processes %d", m.Cost.MaxRSSBytes, rss)
		}
	})
	t.Run("overlap refused", func(t *testing.T) {
		bad := filepath.Join(dir, "overlap.json")
		code, stdout, stderr := runBinary(ctx, bin, "report", "merge", "-o", bad, files[0], files[0])
		if code == exitOK || !strings.Contains(stderr, "both shard 1/4") {
			t.Errorf("merging shard 1/4 with itself: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		if _, err := os.Stat(bad); err == nil {
			t.Errorf("a refused merge wrote %s", bad)
		}
	})
}

// checkShardDevices: every shard is i/4 in order, its numbered range matches
// its count, the ranges are disjoint and together are exactly the stack's
// devices; the merged result names all of them and its four sources.
func checkShardDevices(t *testing.T, parts []*result.Result, m *result.Result, fleet []string) {
	t.Helper()
	owner := map[string]int{}
	type span struct{ from, to int }
	var spans []span
	for i, p := range parts {
		if p.Meta.Shard != (result.Shard{Index: i, Count: len(parts)}) {
			t.Errorf("%d: meta shard %+v", i+1, p.Meta.Shard)
		}
		d := p.Meta.Devices
		if d.Prefix == "" || d.To-d.From != d.Count || d.Count == 0 {
			t.Fatalf("shard %d devices %+v: want a numbered range", i+1, d)
		}
		spans = append(spans, span{d.From, d.To})
		for _, id := range certs.DeviceIDsWidth(d.Prefix, d.From, d.Count, len(fleet)) {
			if j, dup := owner[id]; dup {
				t.Errorf("device %s in shard %d and %d", id, j, i+1)
			}
			owner[id] = i + 1
		}
		if p.Total.Counts.Connects != int64(d.Count) {
			t.Errorf("shard %d: %d connects for %d devices", i+1, p.Total.Counts.Connects, d.Count)
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].from < spans[j].from })
	for i := 1; i < len(spans); i++ {
		if spans[i].from != spans[i-1].to {
			t.Errorf("device ranges %v are not contiguous", spans)
		}
	}
	if len(owner) != len(fleet) {
		t.Errorf("shards drove %d distinct devices, the fleet has %d", len(owner), len(fleet))
	}
	for _, id := range fleet {
		if owner[id] == 0 {
			t.Errorf("device %s in no shard", id)
		}
	}
	if d := m.Meta.Devices; d.Count != len(fleet) || d.From != spans[0].from || d.To != spans[len(spans)-1].to {
		t.Errorf("merged devices %+v, want %d devices %d…%d", d, len(fleet), spans[0].from, spans[len(spans)-1].to-1)
	}
	if len(m.Meta.Merged) != len(parts) || m.Meta.Shard.Count != 1 {
		t.Errorf("merged meta: %d sources, shard %+v", len(m.Meta.Merged), m.Meta.Shard)
	}
}

func plusCounts(a, b result.Counts) result.Counts {
	a.ConnectAttempts += b.ConnectAttempts
	a.Connects += b.Connects
	a.ConnectFailures += b.ConnectFailures
	a.Published += b.Published
	a.PublishFailures += b.PublishFailures
	a.Received += b.Received
	a.Duplicates += b.Duplicates
	a.Reorders += b.Reorders
	a.Reconnects += b.Reconnects
	a.Disconnects += b.Disconnects
	a.CommandsSent += b.CommandsSent
	a.CommandsReceived += b.CommandsReceived
	a.Errors += b.Errors
	return a
}

func summaryCount(s *result.Summary, ok bool) any {
	if !ok {
		return "none"
	}
	return s.Count
}

// buildBinary builds this command into a temporary directory, once per test.
func buildBinary(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "mqttstack")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "build", "-buildvcs=false", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runBinary runs the built CLI and returns its exit code and output.
func runBinary(ctx context.Context, bin string, args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err != nil {
		if x, ok := err.(*exec.ExitError); ok {
			code = x.ExitCode()
		} else {
			code = -1
			e.WriteString("\n" + err.Error())
		}
	}
	return code, o.String(), e.String()
}
