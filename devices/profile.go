// Package devices emulates the TLS stacks of real boards (ESP8266 BearSSL,
// ESP32 and Pico W mbedTLS, Arduino with a secure element, cellular modems)
// so that a load run and a compatibility matrix meet the broker as those
// boards do, not as a modern Go client does.
//
// A Profile is data (profiles.yaml, embedded): versions, cipher suites,
// groups, signature algorithms and extensions in wire order, the record
// and handshake sizes the board can take, its client key type, its
// certificate checks and its clock. Handshake builds the board's exact
// ClientHello with uTLS (crypto/tls can neither send max_fragment_length
// nor choose the order of suites, groups and extensions) and plays the
// board's limits around the handshake: it fragments its own records to the
// negotiated MFLN, measures the server's records against the board's input
// buffer, checks the chain the way the board's verifier does and uses the
// board's clock. Matrix runs every profile against a target: a real
// handshake, CONNECT, and a publish/subscribe round trip.
package devices

import (
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// KeyType is the key a board's client certificate carries.
type KeyType string

// Client key types (the certs package's names).
const (
	KeyECDSA KeyType = "ecdsa"   // ECDSA P-256
	KeyRSA   KeyType = "rsa2048" // RSA 2048
)

// SNI rules: what a board sends as server_name.
const (
	SNIName   = "name"   // the host name when dialled by name; nothing for an IP address
	SNIAlways = "always" // also an IP literal, as a host name (ESP32 ssl_client.cpp)
	SNINever  = "never"
)

// Verify modes of the board's certificate check.
const (
	VerifyChain    = "chain"     // full chain to the configured CA
	VerifyP256Only = "p256-only" // as chain, but every signature must be ECDSA P-256/SHA-256 or RSA (secure element)
	VerifyOptional = "optional"  // a failed check does not abort (mbedTLS VERIFY_OPTIONAL)
)

// Clock behaviours.
const (
	ClockChecks  = "checks"  // validity dates are checked against the board's clock
	ClockIgnores = "ignores" // validity dates are never checked
)

// Profile is one board's TLS client as data.
type Profile struct {
	Name  string `yaml:"name" json:"name"`
	Board string `yaml:"board" json:"board"`
	Stack string `yaml:"stack" json:"stack"`
	// MinVersion and MaxVersion are TLS versions (0x0301 … 0x0304).
	MinVersion uint16 `yaml:"-" json:"min_version"`
	MaxVersion uint16 `yaml:"-" json:"max_version"`
	// Suites, Groups, SigAlgs and Extensions are in wire order.
	Suites     []uint16 `yaml:"-" json:"suites"`
	Groups     []uint16 `yaml:"-" json:"groups"`
	SigAlgs    []uint16 `yaml:"-" json:"sig_algs"`
	Extensions []uint16 `yaml:"-" json:"extensions"`
	// MFLN is the record size the board asks for with max_fragment_length
	// (512, 1024, 2048 or 4096; 0 = not sent).
	MFLN int    `yaml:"mfln" json:"mfln,omitempty"`
	SNI  string `yaml:"sni" json:"sni"`
	// ClientKey is the key type of the board's client certificate.
	ClientKey KeyType `yaml:"client_key" json:"client_key"`
	// RecordIn is the largest record the board can receive (0 = unknown).
	RecordIn int `yaml:"record_in" json:"record_in,omitempty"`
	// HandshakeIn is the largest handshake message (the broker's
	// certificate chain) the board can hold; 0 = streamed or unknown.
	HandshakeIn int `yaml:"handshake_in" json:"handshake_in,omitempty"`
	// HandshakeOut is the largest handshake message (its own certificate
	// chain) the board can send; 0 = streamed or unknown.
	HandshakeOut int    `yaml:"handshake_out" json:"handshake_out,omitempty"`
	Verify       string `yaml:"verify" json:"verify"`
	Clock        string `yaml:"clock" json:"clock"`
	// Capture names the captured ClientHello in testdata/hello ("" none).
	Capture string `yaml:"capture" json:"capture,omitempty"`
	// Derived says which parts were not captured from the real library.
	Derived string `yaml:"derived" json:"derived,omitempty"`
	// Native profiles handshake with crypto/tls as the fleet does.
	Native bool `yaml:"native" json:"native,omitempty"`
	// Expect is the verdict against the hardened broker mqttstack renders
	// ("works" or "refused"), ExpectReason the refusal's short reason.
	Expect       string   `yaml:"expect" json:"expect"`
	ExpectReason string   `yaml:"expect_reason" json:"expect_reason,omitempty"`
	Sources      []string `yaml:"sources" json:"sources"`
	Notes        string   `yaml:"notes" json:"notes,omitempty"`
}

// Has reports whether the profile's hello carries extension ext.
func (p *Profile) Has(ext uint16) bool { return slices.Contains(p.Extensions, ext) }

// rawProfile is the YAML form: versions and hex lists as text.
type rawProfile struct {
	Profile    `yaml:",inline"`
	Versions   []string `yaml:"versions"`
	Suites     string   `yaml:"suites"`
	Groups     string   `yaml:"groups"`
	SigAlgs    string   `yaml:"sig_algs"`
	Extensions string   `yaml:"extensions"`
}

//go:embed profiles.yaml
var profilesYAML []byte

var (
	loadOnce sync.Once
	loaded   []Profile
	loadErr  error
)

// Profiles returns every built-in profile, in file order. The slice is a
// copy; the profiles' slices are shared and must not be modified.
func Profiles() []Profile {
	loadOnce.Do(func() { loaded, loadErr = parseProfiles(profilesYAML) })
	if loadErr != nil {
		// The file is embedded and tested: a parse error is a build defect.
		panic(loadErr)
	}
	return slices.Clone(loaded)
}

// Names lists the built-in profile names in file order.
func Names() []string {
	var out []string
	for _, p := range Profiles() {
		out = append(out, p.Name)
	}
	return out
}

// Lookup returns the named profile, or an error that lists the names.
func Lookup(name string) (Profile, error) {
	for _, p := range Profiles() {
		if p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("unknown device profile %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Select returns the named profiles in the order given (all when names is
// empty), reporting every unknown name at once.
func Select(names []string) ([]Profile, error) {
	if len(names) == 0 {
		return Profiles(), nil
	}
	var out []Profile
	var errs []error
	for _, n := range names {
		p, err := Lookup(strings.TrimSpace(n))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

func parseProfiles(data []byte) ([]Profile, error) {
	var raw []rawProfile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("profiles.yaml: %w", err)
	}
	var out []Profile
	var errs []error
	seen := map[string]bool{}
	for i, r := range raw {
		p := r.Profile
		bad := func(field, msg string) {
			errs = append(errs, fmt.Errorf("profiles.yaml: profile %d (%s): %s: %s", i, p.Name, field, msg))
		}
		if p.Name == "" || seen[p.Name] {
			bad("name", "missing or repeated")
		}
		seen[p.Name] = true
		if len(r.Versions) != 2 {
			bad("versions", "want [min, max]")
		} else {
			var err error
			if p.MinVersion, err = parseVersion(r.Versions[0]); err != nil {
				bad("versions", err.Error())
			}
			if p.MaxVersion, err = parseVersion(r.Versions[1]); err != nil {
				bad("versions", err.Error())
			}
			if p.MinVersion > p.MaxVersion {
				bad("versions", "min above max")
			}
		}
		for _, f := range []struct {
			name string
			text string
			dst  *[]uint16
		}{{"suites", r.Suites, &p.Suites}, {"groups", r.Groups, &p.Groups}, {"sig_algs", r.SigAlgs, &p.SigAlgs}, {"extensions", r.Extensions, &p.Extensions}} {
			v, err := parseHexList(f.text)
			if err != nil {
				bad(f.name, err.Error())
			}
			*f.dst = v
		}
		if !p.Native && len(p.Suites) == 0 {
			bad("suites", "empty")
		}
		if p.MFLN != 0 && mflnCode(p.MFLN) == 0 {
			bad("mfln", "want 512, 1024, 2048 or 4096")
		}
		if (p.MFLN != 0) != p.Has(ExtMaxFragment) {
			bad("mfln", "set exactly when extensions list 0001")
		}
		if !slices.Contains([]string{SNIName, SNIAlways, SNINever}, p.SNI) {
			bad("sni", "want name, always or never")
		}
		if !p.Native && (p.SNI == SNINever) == p.Has(ExtServerName) {
			bad("sni", "never exactly when extensions leave out 0000")
		}
		if p.ClientKey != KeyECDSA && p.ClientKey != KeyRSA {
			bad("client_key", "want ecdsa or rsa2048")
		}
		if !slices.Contains([]string{VerifyChain, VerifyP256Only, VerifyOptional}, p.Verify) {
			bad("verify", "want chain, p256-only or optional")
		}
		if p.Clock != ClockChecks && p.Clock != ClockIgnores {
			bad("clock", "want checks or ignores")
		}
		if p.Expect != "works" && p.Expect != "refused" {
			bad("expect", "want works or refused")
		}
		if len(p.Sources) == 0 {
			bad("sources", "every profile names where its facts come from")
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

func parseVersion(s string) (uint16, error) {
	switch s {
	case "1.0":
		return 0x0301, nil
	case "1.1":
		return 0x0302, nil
	case "1.2":
		return 0x0303, nil
	case "1.3":
		return 0x0304, nil
	}
	return 0, fmt.Errorf("version %q: want 1.0, 1.1, 1.2 or 1.3", s)
}

// VersionName is "TLS 1.2" for 0x0303.
func VersionName(v uint16) string {
	switch v {
	case 0x0300:
		return "SSL 3.0"
	case 0x0301, 0x0302, 0x0303, 0x0304:
		return "TLS 1." + strconv.Itoa(int(v-0x0301))
	case 0:
		return ""
	}
	return fmt.Sprintf("%#04x", v)
}

func parseHexList(s string) ([]uint16, error) {
	var out []uint16
	for _, f := range strings.Fields(s) {
		v, err := strconv.ParseUint(f, 16, 16)
		if err != nil || len(f) != 4 {
			return nil, fmt.Errorf("%q is not a 4-digit hex code", f)
		}
		out = append(out, uint16(v))
	}
	return out, nil
}

func mflnCode(size int) uint8 {
	switch size {
	case 512:
		return 1
	case 1024:
		return 2
	case 2048:
		return 3
	case 4096:
		return 4
	}
	return 0
}
