package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestTake: the ports and the block are all distinct, the block is
// consecutive, everything is below the ephemeral range and free, and a
// later call returns none of them again.
func TestTake(t *testing.T) {
	ps, base, err := Take(4, 19)
	if err != nil {
		t.Fatal(err)
	}
	all := append([]int{}, ps...)
	for i := range 19 {
		all = append(all, base+i)
	}
	seen := map[int]bool{}
	for _, p := range all {
		if seen[p] {
			t.Fatalf("port %d twice in %v (block from %d)", p, ps, base)
		}
		seen[p] = true
		if p < Lo || p >= Hi {
			t.Errorf("port %d outside %d-%d", p, Lo, Hi)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Errorf("port %d not free after Take: %v", p, err)
			continue
		}
		l.Close()
	}
	if len(ps) != 4 {
		t.Fatalf("%d ports, want 4", len(ps))
	}
	for range 50 {
		p := One(t)
		if seen[p] {
			t.Fatalf("port %d returned twice", p)
		}
		seen[p] = true
	}
	if _, base, err := Take(1, 0); err != nil || base != 0 {
		t.Errorf("Take(1, 0) = block %d, %v; want no block", base, err)
	}
}
