package devices

import (
	"math"
	"testing"
)

// TestAssign: every prefix of the fleet holds each profile within one
// device of its share (the ramp mixes the boards), and shards (disjoint
// index ranges) see exactly the profiles the whole fleet gives them.
func TestAssign(t *testing.T) {
	shares := []Share{{"esp8266-bearssl", 0.6}, {"esp32-arduino-3", 0.3}, {"go", 0.1}}
	const n = 1000
	all, err := Assign(shares, n, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for i, p := range all {
		count[p.Name]++
		for _, s := range shares {
			if d := math.Abs(float64(count[s.Profile]) - s.Share*float64(i+1)); d > 1 {
				t.Fatalf("after %d devices %s has %d, share %.0f%%", i+1, s.Profile, count[s.Profile], s.Share*100)
			}
		}
	}
	if count["esp8266-bearssl"] != 600 || count["esp32-arduino-3"] != 300 || count["go"] != 100 {
		t.Errorf("counts %v", count)
	}
	for _, r := range [][2]int{{0, 333}, {333, 666}, {666, 1000}} {
		part, err := Assign(shares, n, r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range part {
			if p.Name != all[r[0]+i].Name {
				t.Fatalf("shard [%d,%d) device %d: %s, the whole fleet says %s", r[0], r[1], r[0]+i, p.Name, all[r[0]+i].Name)
			}
		}
	}
	if _, err := Assign([]Share{{"esp9000", 1}}, 10, 0, 10); err == nil {
		t.Error("an unknown profile was assigned")
	}
	if ps, err := Assign(nil, 10, 0, 10); err != nil || ps != nil {
		t.Errorf("no shares: %v %v", ps, err)
	}
}
