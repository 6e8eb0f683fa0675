package fleet

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// TestPaceOnFakeClock runs the pacer on synctest's fake clock: the time of
// every hit is exact, so the schedule itself is asserted, not a tolerance.
func TestPaceOnFakeClock(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		rate     Rate
		n        int
		deadline time.Duration // context deadline, 0 = none
		slowHit  time.Duration // hit 0 takes this long (a late caller)
		want     []time.Duration
	}{
		{name: "4/s, 5 hits", rate: PerSecond(4), n: 5, want: []time.Duration{0, 250 * ms, 500 * ms, 750 * ms, time.Second}},
		{name: "cut by the deadline at 600ms", rate: PerSecond(4), n: 5, deadline: 600 * ms, want: []time.Duration{0, 250 * ms, 500 * ms}},
		{name: "a late caller catches up without sleeping", rate: PerSecond(4), n: 6, slowHit: time.Second,
			want: []time.Duration{0, time.Second, time.Second, time.Second, time.Second, 1250 * ms}},
		{name: "3 per minute", rate: Rate{Freq: 3, Per: time.Minute}, n: 4, want: []time.Duration{0, 20 * time.Second, 40 * time.Second, time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				start := time.Now()
				var at []time.Duration
				n := pace(ctx, tt.rate, tt.n, func(i int) bool {
					at = append(at, time.Since(start))
					if i == 0 {
						time.Sleep(tt.slowHit)
					}
					return true
				})
				if n != len(tt.want) || fmt.Sprint(at) != fmt.Sprint(tt.want) {
					t.Fatalf("pace made %d hits at %v, want %v", n, at, tt.want)
				}
				if tt.deadline > 0 && time.Since(start) != tt.deadline {
					t.Errorf("pace returned at %v, want at the deadline %v", time.Since(start), tt.deadline)
				}
			})
		})
	}
}
