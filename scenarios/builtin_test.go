package scenarios

import (
	"testing"
)

func TestBuiltinsParse(t *testing.T) {
	names := BuiltinNames()
	if len(names) < 5 {
		t.Fatalf("BuiltinNames() = %v, want at least smoke, launch, burst, soak, reconnect-storm", names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			s, err := Builtin(name)
			if err != nil {
				t.Fatalf("Builtin(%q):\n%v", name, err)
			}
			if s.Name != name {
				t.Errorf("Name = %q, want %q", s.Name, name)
			}
			if s.Description == "" {
				t.Errorf("no description")
			}
			if err := s.Validate(); err != nil {
				t.Errorf("Validate() after Parse: %v", err)
			}
		})
	}
}
