package scenarios

import (
	"strings"
	"testing"
)

// FuzzParse holds Parse to its promises on any input: it never panics, it
// returns a scenario or an error (never both, never neither), every error
// is a list of located one-line problems, and what it accepts is valid and
// survives a round trip through Format. The seed corpus is the built-ins
// plus the nasty inputs in testdata/fuzz/FuzzParse (alias bombs, alias
// cycles, merge keys, deep nesting, huge numbers, NaN, tags, BOM, CRLF).
func FuzzParse(f *testing.F) {
	for _, name := range BuiltinNames() {
		src, err := BuiltinSource(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte(minimal))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if (s == nil) == (err == nil) {
			t.Fatalf("Parse returned scenario %v and error %v", s, err)
		}
		if err != nil {
			ps := Problems(err)
			if len(ps) == 0 {
				t.Fatalf("error without problems: %v", err)
			}
			if got, want := strings.Count(err.Error(), "\n")+1, len(ps); got != want {
				t.Fatalf("error has %d lines for %d problems:\n%v", got, want, err)
			}
			for _, p := range ps {
				if p.File != "fuzz.yaml" || p.Msg == "" || p.Line < 0 {
					t.Fatalf("badly located problem %#v", p)
				}
				// Values and keys are clipped: a problem stays one
				// readable line whatever the input.
				if len(p.Error()) > 1200 {
					t.Fatalf("problem line of %d bytes: %.200s...", len(p.Error()), p.Error())
				}
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
		if s.TotalDuration() < 0 || s.EstimatedDuration() < 0 || s.RampDuration() < 0 {
			t.Fatalf("negative duration: total %v ramp %v", s.TotalDuration(), s.RampDuration())
		}
		roundTrip(t, s)
	})
}
