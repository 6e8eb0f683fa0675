package shard

import (
	"fmt"
	"testing"
)

func TestRange(t *testing.T) {
	for _, tc := range []struct {
		total, i, n, from, to int
	}{
		{10, 0, 3, 0, 3},
		{10, 1, 3, 3, 6},
		{10, 2, 3, 6, 10},
		{5, 0, 1, 0, 5},
		{2, 1, 4, 0, 1}, // more shards than devices: some shards are empty
		{0, 0, 2, 0, 0},
		{1_000_000, 999, 1000, 999_000, 1_000_000},
	} {
		t.Run(fmt.Sprintf("%d/%d of %d", tc.i, tc.n, tc.total), func(t *testing.T) {
			from, to := Range(tc.total, tc.i, tc.n)
			if from != tc.from || to != tc.to {
				t.Errorf("Range(%d, %d, %d) = [%d, %d), want [%d, %d)", tc.total, tc.i, tc.n, from, to, tc.from, tc.to)
			}
		})
	}
}

// The rule's promises, over many sizes: contiguous, disjoint, covering,
// balanced to within one device.
func TestRangeCoversFleet(t *testing.T) {
	for total := 0; total <= 60; total++ {
		for n := 1; n <= 13; n++ {
			next, smallest, largest := 0, total, 0
			for i := range n {
				from, to := Range(total, i, n)
				if from != next || to < from {
					t.Fatalf("total %d n %d: shard %d is [%d, %d), want to start at %d", total, n, i, from, to, next)
				}
				next = to
				smallest, largest = min(smallest, to-from), max(largest, to-from)
			}
			if next != total {
				t.Fatalf("total %d n %d: shards end at %d", total, n, next)
			}
			if largest-smallest > 1 {
				t.Fatalf("total %d n %d: shard sizes range %d..%d", total, n, smallest, largest)
			}
		}
	}
}

func TestRangePanicsOnBadShard(t *testing.T) {
	for _, c := range [][2]int{{3, 3}, {-1, 3}, {0, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Range(10, %d, %d) did not panic", c[0], c[1])
				}
			}()
			Range(10, c[0], c[1])
		}()
	}
}

func TestIdentity(t *testing.T) {
	if got := Identity("observer", 0, 1); got != "observer" {
		t.Errorf("single shard: %q", got)
	}
	if got := Identity("observer", 0, 3); got != "observer-1" {
		t.Errorf("shard 0 of 3: %q", got)
	}
	if got := Identity("backend", 2, 3); got != "backend-3" {
		t.Errorf("shard 2 of 3: %q", got)
	}
}
