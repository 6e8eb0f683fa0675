package certs

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestExportPEM(t *testing.T) {
	a := newPKI(t, InitOptions{Observers: []string{}, Backends: []string{}})
	if err := a.IssueClient("dev-1", ClientOptions{}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := a.Export(&buf, "dev-1", FormatPEM); err != nil {
		t.Fatal(err)
	}
	// The bundle is a usable identity on its own.
	pair, err := tls.X509KeyPair(buf.Bytes(), buf.Bytes())
	if err != nil {
		t.Fatalf("exported PEM is not a cert+key bundle: %v", err)
	}
	if pair.Leaf.Subject.CommonName != "dev-1" {
		t.Errorf("CN %q", pair.Leaf.Subject.CommonName)
	}
	if err := a.Export(&buf, "dev-1", FormatDER); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("Export der to a writer = %v, want a pointer to ExportDER", err)
	}
	if err := a.Export(&buf, "dev-1", "zip"); err == nil || !strings.Contains(err.Error(), "c-header") {
		t.Errorf("unknown format error %v does not list the formats", err)
	}
	if err := a.Export(&buf, "nobody", FormatPEM); err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("export of a missing id = %v", err)
	}
}

func TestExportDER(t *testing.T) {
	a := newPKI(t, InitOptions{Observers: []string{}, Backends: []string{}})
	if err := a.IssueClient("dev-1", ClientOptions{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "der")
	if err := a.ExportDER(out, "dev-1"); err != nil {
		t.Fatal(err)
	}
	crt, _ := os.ReadFile(filepath.Join(out, "dev-1.crt.der"))
	leaf, err := x509.ParseCertificate(crt)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := os.ReadFile(filepath.Join(out, "dev-1.key.der"))
	k, err := x509.ParsePKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if !publicKeysEqual(k.(crypto.Signer).Public(), leaf.PublicKey) {
		t.Error("DER key does not match DER certificate")
	}
	ca, _ := os.ReadFile(filepath.Join(out, "ca.der"))
	if !bytes.Equal(ca, a.Cert.Raw) {
		t.Error("ca.der is not the CA")
	}
	if m := mode(t, filepath.Join(out, "dev-1.key.der")); m != 0o600 {
		t.Errorf("key mode %o, want 600", m)
	}
}

// TestExportCHeader compiles the header with gcc, for ids that are not C
// identifiers as they stand, and checks the arrays hold the DER bytes.
func TestExportCHeader(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatal("gcc not found: the C header is checked by compiling it (apt-get install gcc)")
	}
	a := newPKI(t, InitOptions{Observers: []string{}, Backends: []string{}})
	sub, err := a.SubCA("ci")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ca    *Authority
		id    string
		ident string
	}{
		{a, "dev-00001", "dev_00001"},
		{a, "7seg_board", "id_7seg_board"},
		{sub, "ci-dev", "ci_dev"}, // carries the intermediate as chain1
	}
	dir := t.TempDir()
	var main strings.Builder
	for _, tc := range tests {
		if err := tc.ca.IssueClient(tc.id, ClientOptions{}); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := tc.ca.Export(&buf, tc.id, FormatCHeader); err != nil {
			t.Fatal(err)
		}
		h := buf.String()
		if err := os.WriteFile(filepath.Join(dir, tc.id+".h"), buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		// Included twice: the guard and static linkage must hold.
		main.WriteString("#include \"" + tc.id + ".h\"\n#include \"" + tc.id + ".h\"\n")
		for _, arr := range []string{"_cert_der", "_key_der", "_ca_der"} {
			name := tc.ident + arr
			if !strings.Contains(h, "static const unsigned char "+name+"[] = {") || !strings.Contains(h, "static const unsigned int "+name+"_len = ") {
				t.Errorf("%s: header lacks %s and its _len", tc.id, name)
			}
			main.WriteString("unsigned int use_" + name + "(void) { return " + name + "_len + " + name + "[0]; }\n")
		}
		it, err := tc.ca.readIdentity(tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if got := cArrayBytes(t, h, tc.ident+"_cert_der"); !bytes.Equal(got, it.chain[0]) {
			t.Errorf("%s: cert array is not the certificate DER", tc.id)
		}
		if got := cArrayBytes(t, h, tc.ident+"_ca_der"); !bytes.Equal(got, a.Cert.Raw) {
			t.Errorf("%s: ca array is not the root CA", tc.id)
		}
		if tc.ca == sub && !bytes.Equal(cArrayBytes(t, h, tc.ident+"_chain1_der"), sub.Cert.Raw) {
			t.Errorf("%s: chain1 array is not the intermediate", tc.id)
		}
	}
	src := filepath.Join(dir, "main.c")
	if err := os.WriteFile(src, []byte(main.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(gcc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-Wno-unused-const-variable", "-fsyntax-only", "-I", dir, src).CombinedOutput()
	if err != nil {
		t.Fatalf("gcc rejected the headers: %v\n%s", err, out)
	}
}

var hexByte = regexp.MustCompile(`0x([0-9a-f]{2})`)

// cArrayBytes extracts the bytes of array name from a generated header.
func cArrayBytes(t *testing.T, h, name string) []byte {
	t.Helper()
	start := strings.Index(h, " "+name+"[] = {")
	if start < 0 {
		t.Fatalf("no array %s", name)
	}
	body := h[start:]
	body = body[:strings.Index(body, "};")]
	var out []byte
	for _, m := range hexByte.FindAllStringSubmatch(body, -1) {
		b, _ := hex.DecodeString(m[1])
		out = append(out, b...)
	}
	return out
}

func TestExportFingerprint(t *testing.T) {
	a := newPKI(t, InitOptions{Observers: []string{}, Backends: []string{}})
	if err := a.IssueClient("dev-1", ClientOptions{}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := a.Export(&buf, "dev-1", FormatFingerprint); err != nil {
		t.Fatal(err)
	}
	srv := readCert(t, PathsOf(a.Dir).ServerCert)
	dev := readCert(t, filepath.Join(a.Dir, clientsDir, "dev-1.crt"))
	colon := func(sum []byte) string {
		s := strings.ToUpper(hex.EncodeToString(sum))
		var parts []string
		for i := 0; i < len(s); i += 2 {
			parts = append(parts, s[i:i+2])
		}
		return strings.Join(parts, ":")
	}
	s256, s1 := sha256.Sum256(srv.Raw), sha1.Sum(srv.Raw)
	d256 := sha256.Sum256(dev.Raw)
	for _, want := range []string{"SHA-256 " + colon(s256[:]), "SHA-1   " + colon(s1[:]), colon(d256[:])} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("fingerprint output lacks %s:\n%s", want, buf.String())
		}
	}
	if !strings.HasPrefix(buf.String(), "server ") {
		t.Errorf("server line is not first:\n%s", buf.String())
	}
	buf.Reset()
	if err := a.Export(&buf, "", FormatFingerprint); err != nil || strings.Contains(buf.String(), "\ndevice ") {
		t.Errorf("fingerprint without id: %v\n%s", err, buf.String())
	}
	// The same digest openssl x509 -fingerprint prints.
	if Fingerprint([]byte("abc"), "sha1") != "A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D" {
		t.Error("Fingerprint(sha1) wrong for a known vector")
	}
}
