package levenshtein

import "testing"

func TestDistance(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want int
	}{
		{"both empty", "", "", 0},
		{"empty to word", "", "qos", 3},
		{"word to empty", "qos", "", 3},
		{"equal", "stages", "stages", 0},
		{"one substitution", "rate", "rote", 1},
		{"one insertion", "fleet", "fleets", 1},
		{"one deletion", "--verbose", "--verbos", 1},
		{"transposition is two", "qos", "qso", 2},
		{"classic", "kitten", "sitting", 3},
		{"case counts", "QoS", "qos", 2},
		{"nothing shared", "abc", "xyz", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Distance(tt.a, tt.b); got != tt.want {
				t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := Distance(tt.b, tt.a); got != tt.want {
				t.Errorf("Distance(%q, %q) = %d, want %d (symmetric)", tt.b, tt.a, got, tt.want)
			}
		})
	}
}
