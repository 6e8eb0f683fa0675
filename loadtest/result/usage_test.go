package result

import (
	"testing"
	"time"
)

// TestRSSCarriesForward: resident memory is a level; a second without a
// usage sample keeps the last sample instead of plotting a drop to zero.
func TestRSSCarriesForward(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	r := NewRecorder(Meta{Start: t0})
	r.Usage(t0, 0, 10<<20)
	r.Usage(t0.Add(2*time.Second), time.Second, 30<<20)
	res := r.Finish(t0.Add(4*time.Second), Final{})
	want := []int64{10 << 20, 10 << 20, 30 << 20, 30 << 20, 30 << 20}
	if len(res.Series) != len(want) {
		t.Fatalf("%d seconds in the series, want %d", len(res.Series), len(want))
	}
	for i, s := range res.Series {
		if s.RSSBytes != want[i] {
			t.Errorf("second %d: rss %d, want %d", i, s.RSSBytes, want[i])
		}
	}
}
