package result

import (
	"testing"
	"time"
)

// BenchmarkRecorderObserve is the cost of one latency observation on the
// collector goroutine (phase histogram + total histogram).
func BenchmarkRecorderObserve(b *testing.B) {
	r := NewRecorder(Meta{Start: t0})
	r.Phase("steady", t0)
	ts := t0.Add(30 * time.Second)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Observe(E2E, ts, time.Duration(1000+i%50000)*time.Microsecond)
		i++
	}
}

// BenchmarkRecorderAdd is the cost of one counter event, series included.
func BenchmarkRecorderAdd(b *testing.B) {
	r := NewRecorder(Meta{Start: t0})
	r.Phase("steady", t0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// A new second every 1000 events, as a busy run would see.
		r.Add(Published, t0.Add(time.Duration(i)*time.Millisecond), 1)
		i++
	}
}

// BenchmarkRecorderError is the cost of one error event of a known cause.
func BenchmarkRecorderError(b *testing.B) {
	r := NewRecorder(Meta{Start: t0})
	r.Phase("steady", t0)
	causes := []string{"connack: server unavailable", "tls: bad certificate", "publish: timeout"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Error(causes[i%len(causes)], t0.Add(time.Duration(i)*time.Millisecond))
		i++
	}
}

// BenchmarkMerge merges 8 shard results of a run with three phases and every
// metric, as `mqttstack report merge` does after reading them.
func BenchmarkMerge(b *testing.B) {
	var shards []*Result
	for k := range 8 {
		shards = append(shards, synthetic(b, k, 8, k*50, (k+1)*50))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Merge(shards...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFinish is the once-per-run cost of computing percentiles and
// encoding the histograms.
func BenchmarkFinish(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		r := NewRecorder(syntheticMeta(0, 1, 0, 100))
		feed(r, 0, 100)
		b.StartTimer()
		r.Finish(at(50), Final{})
	}
}
