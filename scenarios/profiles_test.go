package scenarios

import (
	"strings"
	"testing"
)

func TestFleetProfiles(t *testing.T) {
	base := "name: mix\nfleet:\n  count: 10\n  profiles: %s\nstages:\n  - {kind: ramp}\n"
	for _, tc := range []struct {
		name, profiles string
		transport      string
		want           []ProfileShare
		errs           []string // every fragment must be in the error
	}{
		{name: "two", profiles: "{esp8266-bearssl: 60%, esp32-arduino-3: 40%}",
			want: []ProfileShare{{"esp8266-bearssl", 0.6}, {"esp32-arduino-3", 0.4}}},
		{name: "fraction", profiles: "{go: 1}", want: []ProfileShare{{"go", 1}}},
		{name: "unknown profile", profiles: "{esp8266-bearsl: 60%, esp32-arduino-3: 40%}",
			errs: []string{"mix.yaml:4", "fleet.profiles.esp8266-bearsl", "unknown field", "esp8266-bearssl"}},
		{name: "sum", profiles: "{esp8266-bearssl: 60%, esp32-arduino-3: 30%}",
			errs: []string{"fleet.profiles", "shares sum to 90%, not 100%", "add up to 100%"}},
		{name: "zero share", profiles: "{esp8266-bearssl: 0%, go: 100%}",
			errs: []string{"fleet.profiles.esp8266-bearssl", "share 0%"}},
		{name: "not a mapping", profiles: "[esp8266-bearssl]", errs: []string{"fleet.profiles", "must be a mapping"}},
		{name: "wss", profiles: "{go: 100%}", transport: "wss", errs: []string{"fleet.profiles", "need transport mqtts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(base, "%s", tc.profiles, 1)
			if tc.transport != "" {
				src = strings.Replace(src, "  count: 10\n", "  count: 10\n  transport: "+tc.transport+"\n", 1)
			}
			s, err := Parse("mix.yaml", []byte(src))
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatal("accepted")
				}
				for _, f := range tc.errs {
					if !strings.Contains(err.Error(), f) {
						t.Errorf("error does not say %q:\n%v", f, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Fleet.Profiles) != len(tc.want) {
				t.Fatalf("profiles %v, want %v", s.Fleet.Profiles, tc.want)
			}
			for i := range tc.want {
				if s.Fleet.Profiles[i] != tc.want[i] {
					t.Errorf("profiles %v, want %v", s.Fleet.Profiles, tc.want)
				}
			}
			// The canonical form reads back the same.
			out, err := s.Format()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse("mix.yaml", out)
			if err != nil || len(back.Fleet.Profiles) != len(tc.want) {
				t.Fatalf("canonical form does not read back: %v\n%s", err, out)
			}
		})
	}
}
