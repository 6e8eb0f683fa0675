package loadtest

import "testing"

func TestProcs(t *testing.T) {
	tests := []struct {
		cpus       int
		brokerHere bool
		want       int
	}{
		{1, true, 1},
		{2, true, 1},
		{8, true, 7},
		{2, false, 2},
		{8, false, 8},
		{0, false, 1},
	}
	for _, tc := range tests {
		if got := Procs(tc.cpus, tc.brokerHere); got != tc.want {
			t.Errorf("Procs(%d, %v) = %d, want %d", tc.cpus, tc.brokerHere, got, tc.want)
		}
	}
}
