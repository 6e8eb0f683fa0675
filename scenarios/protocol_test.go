package scenarios

import (
	"strings"
	"testing"
	"time"
)

// TestProtocol: fleet.protocol selects MQTT 3.1.1 (default) or 5; the MQTT
// 5 session fields are refused on 3.1.1 with a fix, and survive Format.
func TestProtocol(t *testing.T) {
	tests := []struct {
		name, fleet string
		want        Fleet // Protocol, SessionExpiry, TopicAliases compared
		err         string
	}{
		{"default", "{count: 10}", Fleet{Protocol: Protocol311}, ""},
		{"v5 clean", "{count: 10, protocol: 5}", Fleet{Protocol: Protocol5}, ""},
		{"v5 persistent", "{count: 10, protocol: 5, clean_session: false}", Fleet{Protocol: Protocol5, SessionExpiry: DefaultSessionExpiry}, ""},
		{"v5 expiry aliases", "{count: 10, protocol: 5, session_expiry: 1h, topic_aliases: true}", Fleet{Protocol: Protocol5, SessionExpiry: time.Hour, TopicAliases: true}, ""},
		{"unknown version", "{count: 10, protocol: 3}", Fleet{}, `fleet.protocol: "3" is not an MQTT version`},
		{"expiry on 3.1.1", "{count: 10, session_expiry: 1h}", Fleet{}, "fleet.session_expiry: is MQTT 5 only (add protocol: 5"},
		{"aliases on 3.1.1", "{count: 10, protocol: 3.1.1, topic_aliases: true}", Fleet{}, "fleet.topic_aliases: are MQTT 5 only"},
		{"fractional expiry", "{count: 10, protocol: 5, session_expiry: 1500ms}", Fleet{}, "not whole seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "fleet: " + tt.fleet + "\nstages:\n  - {kind: ramp}\n  - {kind: steady, duration: 5s, every: 1s}\n"
			sc, err := Parse("p.yaml", []byte(src))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f := sc.Fleet
			if f.Protocol != tt.want.Protocol || f.SessionExpiry != tt.want.SessionExpiry || f.TopicAliases != tt.want.TopicAliases {
				t.Errorf("fleet %+v, want protocol %s expiry %v aliases %v", f, tt.want.Protocol, tt.want.SessionExpiry, tt.want.TopicAliases)
			}
			b, err := sc.Format()
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse("again.yaml", b)
			if err != nil {
				t.Fatalf("formatted scenario does not parse: %v\n%s", err, b)
			}
			if again.Fleet.Protocol != f.Protocol || again.Fleet.SessionExpiry != f.SessionExpiry || again.Fleet.TopicAliases != f.TopicAliases {
				t.Errorf("round trip changed the fleet: %+v -> %+v", f, again.Fleet)
			}
		})
	}
}

// TestWithProtocol: every built-in runs on either protocol.
func TestWithProtocol(t *testing.T) {
	for _, name := range BuiltinNames() {
		for _, p := range []string{"5", "3.1.1"} {
			t.Run(name+"/"+p, func(t *testing.T) {
				sc, err := Builtin(name)
				if err != nil {
					t.Fatal(err)
				}
				got, err := sc.WithProtocol(p)
				if err != nil {
					t.Fatal(err)
				}
				if string(got.Fleet.Protocol) != p || (p == "5" && !got.Fleet.CleanSession && got.Fleet.SessionExpiry != DefaultSessionExpiry) {
					t.Errorf("fleet %+v", got.Fleet)
				}
				if sc.Fleet.Protocol != Protocol311 {
					t.Errorf("the built-in itself changed: %+v", sc.Fleet)
				}
			})
		}
	}
	sc, _ := Builtin("smoke")
	if _, err := sc.WithProtocol("4"); err == nil || !strings.Contains(err.Error(), `--protocol 4: `) {
		t.Errorf("--protocol 4: err %v", err)
	}
}
