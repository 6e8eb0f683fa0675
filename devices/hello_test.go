package devices

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// sentHello runs p's handshake into a pipe and returns the ClientHello
// record the board put on the wire.
func sentHello(t *testing.T, p Profile, b Board) *Hello {
	t.Helper()
	client, server := net.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		Handshake(ctx, client, p, b) // fails when the pipe closes: only the hello matters
	}()
	server.SetDeadline(time.Now().Add(10 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(server, hdr); err != nil {
		t.Fatalf("%s: read hello header: %v", p.Name, err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(server, body); err != nil {
		t.Fatalf("%s: read hello: %v", p.Name, err)
	}
	server.Close()
	<-done
	h, err := ParseClientHello(append(hdr, body...))
	if err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	return h
}

func hexes(v []uint16) []string {
	var out []string
	for _, x := range v {
		out = append(out, hex4(x))
	}
	return out
}

func sameList(t *testing.T, what string, got, want []uint16) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %v\n want %v", what, hexes(got), hexes(want))
	}
}

// TestHelloMatchesCapture: every profile with a captured ClientHello of
// the real library sends the same suites, groups, signature algorithms and
// extensions, in the same order, and the same MFLN and SNI.
func TestHelloMatchesCapture(t *testing.T) {
	n := 0
	for _, p := range Profiles() {
		if p.Capture == "" {
			continue
		}
		n++
		t.Run(p.Name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "hello", p.Capture))
			if err != nil {
				t.Fatal(err)
			}
			want, err := ParseClientHello(raw)
			if err != nil {
				t.Fatal(err)
			}
			got := sentHello(t, p, Board{ServerName: want.ServerName})
			sameList(t, "cipher suites", got.Suites, want.Suites)
			sameList(t, "groups", got.Groups, want.Groups)
			sameList(t, "signature algorithms", got.SigAlgs, want.SigAlgs)
			sameList(t, "extension order", got.Extensions, want.Extensions)
			if got.MaxFragment != want.MaxFragment {
				t.Errorf("max_fragment_length code %d, want %d", got.MaxFragment, want.MaxFragment)
			}
			if got.ServerName != want.ServerName {
				t.Errorf("SNI %q, want %q", got.ServerName, want.ServerName)
			}
			if got.Version != want.Version || got.SessionIDLen != want.SessionIDLen || !slices.Equal(got.PointFormats, want.PointFormats) {
				t.Errorf("version %#04x session id %d point formats %v, want %#04x %d %v", got.Version, got.SessionIDLen, got.PointFormats, want.Version, want.SessionIDLen, want.PointFormats)
			}
		})
	}
	if n < 6 {
		t.Fatalf("only %d profiles are checked against a capture", n)
	}
}

// TestHelloCarriesProfile: the hello of every uTLS profile (captured or
// derived) is its data, in order; the derived ones share the parts they
// were derived from with a capture.
func TestHelloCarriesProfile(t *testing.T) {
	for _, p := range Profiles() {
		if p.Native {
			continue
		}
		t.Run(p.Name, func(t *testing.T) {
			got := sentHello(t, p, Board{ServerName: "mqtt.example.org"})
			sameList(t, "cipher suites", got.Suites, p.Suites)
			sameList(t, "groups", got.Groups, p.Groups)
			sameList(t, "signature algorithms", got.SigAlgs, p.SigAlgs)
			sameList(t, "extensions", got.Extensions, p.Extensions)
			if MaxFragmentBytes(got.MaxFragment) != p.MFLN {
				t.Errorf("MFLN %d, want %d", MaxFragmentBytes(got.MaxFragment), p.MFLN)
			}
			if v := max(p.MaxVersion, 0x0301); got.Version != min(v, 0x0303) {
				t.Errorf("hello version %#04x, want %#04x", got.Version, v)
			}
		})
	}
	// Derived profiles keep what they share with a capture.
	esp, _ := Lookup("esp8266-bearssl")
	less, _ := Lookup("esp8266-bearssl-less-secure")
	sameList(t, "less-secure extensions", less.Extensions, esp.Extensions)
	pico, _ := Lookup("pico-w-mbedtls-2.28")
	esp2, _ := Lookup("esp32-arduino-2")
	sameList(t, "esp32-2 groups (mbedTLS 2.28)", esp2.Groups, pico.Groups)
	sameList(t, "esp32-2 signature algorithms (mbedTLS 2.28)", esp2.SigAlgs, pico.SigAlgs)
}

// TestSNIRules: by name every SNI-sending board sends the name; by IP
// address only the boards that send IP literals (ESP32) send one.
func TestSNIRules(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		profile string
		dialIP  bool
		want    string
	}{
		{"esp8266-bearssl", false, "mqtt.example.org"},
		{"esp8266-bearssl", true, ""},
		{"esp32-arduino-3", true, "127.0.0.1"},
		{"pico-w-mbedtls-3.6", true, ""},
		{"bg96", false, ""},
	} {
		p, err := Lookup(tc.profile)
		if err != nil {
			t.Fatal(err)
		}
		b := Board{ServerName: "mqtt.example.org"}
		if tc.dialIP {
			b.DialIP = ip
		}
		got := sentHello(t, p, b)
		if got.ServerName != tc.want {
			t.Errorf("%s (dial by IP %v): SNI %q, want %q", tc.profile, tc.dialIP, got.ServerName, tc.want)
		}
		if tc.want == "" && slices.Contains(got.Extensions, ExtServerName) {
			t.Errorf("%s: server_name extension sent without a name", tc.profile)
		}
	}
}

func TestProfilesValid(t *testing.T) {
	ps := Profiles()
	for _, want := range []string{"esp8266-bearssl", "esp8266-bearssl-less-secure", "arduino-bearssl-eccx08", "esp32-arduino-2", "esp32-arduino-3", "pico-w-mbedtls-2.28", "pico-w-mbedtls-3.6", "nrf9160", "sim800", "a7670", "bg96", "go"} {
		if _, err := Lookup(want); err != nil {
			t.Error(err)
		}
	}
	if _, err := Select([]string{"esp8266-bearssl", "nope", "esp9000"}); err == nil {
		t.Error("Select accepted unknown profiles")
	}
	if len(ps) < 12 {
		t.Errorf("%d profiles", len(ps))
	}
	_, err := parseProfiles([]byte("- name: x\n  versions: [\"1.2\"]\n  suites: zz\n  sni: maybe\n  client_key: dsa\n  verify: chain\n  clock: checks\n  expect: works\n"))
	if err == nil {
		t.Fatal("a bad profile parsed")
	}
	for _, frag := range []string{"versions", "suites", "sni", "client_key", "sources"} {
		if !contains(err.Error(), frag) {
			t.Errorf("error does not name %s: %v", frag, err)
		}
	}
}
