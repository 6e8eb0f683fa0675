package hostconfig

import (
	"bytes"
	"strings"
	"testing"
)

func legacyStack() Stack {
	s := vpsStack()
	s.LegacyTLS = &LegacyTLS{Port: 8884, CertFile: "/etc/mosquitto/certs/server-rsa.crt", KeyFile: "/etc/mosquitto/certs/server-rsa.key"}
	return s
}

// TestLegacyListener: the second listener for RSA-only/CBC-only boards is
// rendered after the main one, with its own certificate and ciphers and
// the same CA, CRL, ACL and identity rules, opened in the firewall; the
// main listener's lines are byte for byte what they are without it.
func TestLegacyListener(t *testing.T) {
	plain := MosquittoConf(vpsStack())
	legacy := MosquittoConf(legacyStack())
	golden(t, "vps-legacy/mosquitto.conf", legacy)
	main := func(conf []byte) string {
		s := string(conf)
		i := strings.Index(s, "listener 8883 ")
		j := strings.Index(s[i:], "\n\n")
		return s[i : i+j]
	}
	if main(plain) != main(legacy) {
		t.Errorf("the main listener changed:\n%s\n---\n%s", main(plain), main(legacy))
	}
	block := string(legacy[strings.Index(string(legacy), "listener 8884 "):])
	block = block[:strings.Index(block, "\n\n")]
	for _, want := range []string{"certfile /etc/mosquitto/certs/server-rsa.crt", "ciphers " + LegacyCiphers, "tls_version tlsv1.2",
		"require_certificate true", "use_identity_as_username true", "use_username_as_clientid true", "allow_anonymous false",
		"crlfile ", "acl_file "} {
		if !strings.Contains(block, want) {
			t.Errorf("legacy listener lacks %q:\n%s", want, block)
		}
	}
	if !bytes.Contains(Nftables(legacyStack()), []byte("tcp dport { 80, 443, 8883, 8884 } accept")) {
		t.Errorf("firewall does not open the legacy port:\n%s", Nftables(legacyStack()))
	}
	if !bytes.Contains(Nftables(vpsStack()), []byte("tcp dport { 80, 443, 8883 } accept")) {
		t.Errorf("firewall without a legacy listener changed:\n%s", Nftables(vpsStack()))
	}
	if err := LintMosquittoConf(legacy); err != nil {
		t.Errorf("lint: %v", err)
	}

	for _, tc := range []struct {
		name string
		l    LegacyTLS
		want string
	}{
		{"port clash", LegacyTLS{Port: 8883, CertFile: "/a.crt", KeyFile: "/a.key"}, "already used by MQTTSPort"},
		{"relative cert", LegacyTLS{Port: 8884, CertFile: "a.crt", KeyFile: "/a.key"}, "absolute"},
		{"weak cipher", LegacyTLS{Port: 8884, CertFile: "/a.crt", KeyFile: "/a.key", Ciphers: "DES-CBC3-SHA:AES128-SHA"}, "DES-CBC"},
	} {
		s := vpsStack()
		l := tc.l
		s.LegacyTLS = &l
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
}
