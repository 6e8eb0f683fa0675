package hostprovider

import (
	"context"
	"testing"
	"time"
)

// BenchmarkApply measures one apply over SSH against the namespace host
// (real sshd, Mosquitto, nginx, loopback): "first" stages, validates and
// writes every file and starts both daemons on a fresh host; "nochange" is
// an apply whose files all match (packages, directories, probe, service
// check; nothing written, no daemon touched).
//
//	go test -run '^$' -bench Apply -benchtime 5x ./infra/hostprovider
func BenchmarkApply(b *testing.B) {
	ctx := context.Background()
	b.Run("first", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			h := startHost(b)
			plan := h.plan(b, "user dev1\ntopic readwrite devices/dev1/#\n", "<p>bench</p>\n")
			b.StartTimer()
			if _, err := Apply(ctx, h.c, plan, nil); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			h.sh(b, "systemctl stop nginx; systemctl stop mosquitto")
			b.StartTimer()
		}
	})
	b.Run("nochange", func(b *testing.B) {
		h := startHost(b)
		plan := h.plan(b, "user dev1\ntopic readwrite devices/dev1/#\n", "<p>bench</p>\n")
		if _, err := Apply(ctx, h.c, plan, nil); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			obs, err := Apply(ctx, h.c, plan, nil)
			if err != nil || len(obs.Changed) > 0 {
				b.Fatalf("changed %v: %v", obs.Changed, err)
			}
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/apply")
	})
}
