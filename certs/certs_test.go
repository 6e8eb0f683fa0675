package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fixedClock returns a clock stuck at a whole second close to the real time,
// so that certificates are valid for real TLS peers and tests can compute
// exact validity bounds.
func fixedClock() func() time.Time {
	t0 := time.Now().Truncate(time.Second)
	return func() time.Time { return t0 }
}

// newPKI creates a PKI in a temporary directory with only the identities
// a test asks for (Init's defaults issue 18).
func newPKI(t testing.TB, opts InitOptions) *Authority {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = filepath.Join(t.TempDir(), "pki")
	}
	if opts.Now == nil {
		opts.Now = fixedClock()
	}
	if opts.Observers == nil {
		opts.Observers = []string{"observer"}
	}
	if opts.Backends == nil {
		opts.Backends = []string{"backend"}
	}
	a, err := Init(opts)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return a
}

func readCert(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseCertPEM(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

func mode(t testing.TB, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestInitChain(t *testing.T) {
	tests := []struct {
		name    string
		key     KeyType
		dns     []string
		ips     []net.IP
		wantDNS []string
		wantIPs []string
	}{
		{name: "ecdsa-default-sans", key: ECDSAP256, wantDNS: []string{"mqtt.local.test", "localhost"}, wantIPs: []string{"127.0.0.1", "::1"}},
		{name: "ecdsa-explicit-sans", key: ECDSAP256, dns: []string{"mqtt.example.com"}, ips: []net.IP{net.ParseIP("203.0.113.7")},
			wantDNS: []string{"mqtt.local.test", "mqtt.example.com"}, wantIPs: []string{"203.0.113.7"}},
		{name: "rsa2048", key: RSA2048, wantDNS: []string{"mqtt.local.test", "localhost"}, wantIPs: []string{"127.0.0.1", "::1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := fixedClock()
			now := clock()
			a := newPKI(t, InitOptions{Key: tc.key, DNSNames: tc.dns, IPs: tc.ips, Now: clock})
			p := PathsOf(a.Dir)

			ca := readCert(t, p.CACert)
			if !ca.IsCA || !ca.BasicConstraintsValid || ca.MaxPathLen != 1 {
				t.Errorf("CA: IsCA=%v MaxPathLen=%d, want CA with MaxPathLen 1", ca.IsCA, ca.MaxPathLen)
			}
			if ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
				t.Errorf("CA key usage %b, want CertSign|CRLSign", ca.KeyUsage)
			}
			if got := ca.NotAfter.Sub(now); got != DefaultCAValidity {
				t.Errorf("CA validity %v, want %v", got, DefaultCAValidity)
			}
			pool, err := LoadCAPool(p.CACert)
			if err != nil {
				t.Fatal(err)
			}

			srv := readCert(t, p.ServerCert)
			if !slices.Equal(srv.DNSNames, tc.wantDNS) {
				t.Errorf("server DNS SANs %v, want %v", srv.DNSNames, tc.wantDNS)
			}
			var ips []string
			for _, ip := range srv.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(ips, tc.wantIPs) {
				t.Errorf("server IP SANs %v, want %v", ips, tc.wantIPs)
			}
			for _, name := range append(tc.wantDNS, tc.wantIPs...) {
				if _, err := srv.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: now,
					KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
					t.Errorf("server certificate for %s: %v", name, err)
				}
			}
			if _, err := srv.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
				t.Error("server certificate verified for clientAuth; want serverAuth only")
			}
			if got := srv.NotAfter.Sub(now); got != DefaultServerValidity {
				t.Errorf("server validity %v, want %v", got, DefaultServerValidity)
			}

			for _, id := range []string{"observer", "backend"} {
				c, err := LoadClient(a.Dir, id)
				if err != nil {
					t.Fatal(err)
				}
				leaf := c.Leaf
				if leaf.Subject.CommonName != id {
					t.Errorf("%s: CN %q", id, leaf.Subject.CommonName)
				}
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now,
					KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
					t.Errorf("%s does not verify for clientAuth: %v", id, err)
				}
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now,
					KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
					t.Errorf("%s verified for serverAuth; a device must not pose as the broker", id)
				}
				if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
					t.Errorf("%s key usage %b, want DigitalSignature only", id, leaf.KeyUsage)
				}
				if leaf.IsCA {
					t.Errorf("%s is a CA", id)
				}
				if !leaf.NotBefore.Equal(now.Add(-backdate)) || !leaf.NotAfter.Equal(now.Add(DefaultClientValidity)) {
					t.Errorf("%s validity %v..%v", id, leaf.NotBefore, leaf.NotAfter)
				}
				switch tc.key {
				case ECDSAP256:
					if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
						t.Errorf("%s key %T, want ECDSA", id, leaf.PublicKey)
					}
				case RSA2048:
					if k, ok := leaf.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
						t.Errorf("%s key %T, want RSA-2048", id, leaf.PublicKey)
					}
				}
			}
			if tc.key == ECDSAP256 && srv.KeyUsage&x509.KeyUsageKeyEncipherment != 0 {
				t.Error("ECDSA server certificate carries KeyEncipherment")
			}

			for _, f := range []string{p.CAKey, p.ServerKey, filepath.Join(p.Clients, "observer.key"), filepath.Join(p.Clients, "observer.pass")} {
				if m := mode(t, f); m != 0o600 {
					t.Errorf("%s mode %o, want 600", f, m)
				}
			}
			if m := mode(t, a.Dir); m != 0o700 {
				t.Errorf("PKI dir mode %o, want 700", m)
			}
		})
	}
}

func TestInitDefaultIdentities(t *testing.T) {
	a := newPKI(t, InitOptions{Observers: DefaultObservers(), Backends: DefaultBackends()})
	want := append(DefaultObservers(), DefaultBackends()...)
	if len(want) != 18 || want[0] != "observer" || want[8] != "observer-8" || want[9] != "backend" || want[17] != "backend-8" {
		t.Fatalf("defaults = %v", want)
	}
	ids, err := clientIDs(a.Dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("issued %v, want %v", ids, want)
	}
}

func TestSerialsAreRandom128Bit(t *testing.T) {
	a := newPKI(t, InitOptions{})
	res, err := a.IssueClients(context.Background(), DeviceIDs("s-", 1, 200))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var or big.Int
	for _, id := range res.Issued {
		s := readCert(t, filepath.Join(a.Dir, clientsDir, id+".crt")).SerialNumber
		if s.Sign() <= 0 || s.BitLen() > 128 {
			t.Fatalf("%s serial %x: want positive, at most 128 bits", id, s)
		}
		if seen[s.String()] {
			t.Fatalf("serial %x issued twice", s)
		}
		seen[s.String()] = true
		or.Or(&or, s)
	}
	// With 200 random serials every one of the 128 bit positions is set
	// somewhere unless the generator is broken (probability 128·2^-200).
	if or.BitLen() != 128 || strings.Count(or.Text(2), "1") != 128 {
		t.Errorf("OR of all serials %x: some bit never set; serials are not 128-bit random", &or)
	}
}

func TestInitRefusesOverwrite(t *testing.T) {
	a := newPKI(t, InitOptions{})
	old := readCert(t, PathsOf(a.Dir).CACert)
	if _, err := a.IssueClients(context.Background(), []string{"dev-1"}); err != nil {
		t.Fatal(err)
	}
	_, err := Init(InitOptions{Dir: a.Dir})
	if err == nil {
		t.Fatal("second Init succeeded; want refusal")
	}
	for _, want := range []string{a.Dir, "--force"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if !readCert(t, PathsOf(a.Dir).CACert).Equal(old) {
		t.Fatal("refused Init still replaced ca.crt")
	}

	b, err := Init(InitOptions{Dir: a.Dir, Force: true, Observers: []string{}, Backends: []string{}})
	if err != nil {
		t.Fatalf("Init --force: %v", err)
	}
	if b.Cert.Equal(old) {
		t.Fatal("Init --force kept the old CA")
	}
	if _, err := os.Stat(filepath.Join(a.Dir, clientsDir, "dev-1.crt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("client of the old CA survived --force: %v", err)
	}
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		id      string
		wantErr string // substring; "" = valid
	}{
		{"dev-00001", ""},
		{"Sensor_7", ""},
		{strings.Repeat("a", 64), ""},
		{"", "empty"},
		{strings.Repeat("a", 65), "65 bytes"},
		{"devA/sub", "'/'"},
		{"dev+", "wildcard"},
		{"dev#", "wildcard"},
		{"dev\x00a", "NUL"},
		{"dev a", `" "`},
		{"dev.a", `"."`},
		{"dév", "byte 1"},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			err := ValidateID(tc.id)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateID(%q) = %v, want ok", tc.id, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ValidateID(%q) = %v, want error containing %q", tc.id, err, tc.wantErr)
			}
			if tc.id != "" && !strings.Contains(err.Error(), "letters, digits") {
				t.Errorf("error %q does not say what is allowed", err)
			}
		})
	}
}

func TestDeviceIDs(t *testing.T) {
	tests := []struct {
		prefix         string
		from, n, total int
		first, last    string
	}{
		{"dev-", 1, 3, 0, "dev-00001", "dev-00003"},
		{"dev-", 1, 100000, 0, "dev-000001", "dev-100000"},
		{"d", 99998, 3, 0, "d099998", "d100000"},
		{"dev-", 1, 10, 200000, "dev-000001", "dev-000010"},
	}
	for _, tc := range tests {
		var ids []string
		if tc.total > 0 {
			ids = DeviceIDsWidth(tc.prefix, tc.from, tc.n, tc.total)
		} else {
			ids = DeviceIDs(tc.prefix, tc.from, tc.n)
		}
		if len(ids) != tc.n || ids[0] != tc.first || ids[len(ids)-1] != tc.last {
			t.Errorf("DeviceIDs(%q,%d,%d,%d): %d ids %s..%s, want %s..%s", tc.prefix, tc.from, tc.n, tc.total, len(ids), ids[0], ids[len(ids)-1], tc.first, tc.last)
		}
	}
	if DeviceIDs("x", 1, 0) != nil {
		t.Error("DeviceIDs with n=0 returned ids")
	}
}

func TestIssueClientsIdempotent(t *testing.T) {
	a := newPKI(t, InitOptions{})
	ctx := context.Background()
	ids := DeviceIDs("dev-", 1, 20)
	res, err := a.IssueClients(ctx, append(ids, ids[0])) // duplicate on purpose
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Issued) != 20 || len(res.Kept) != 0 {
		t.Fatalf("first issue: issued %d kept %d, want 20/0", len(res.Issued), len(res.Kept))
	}
	before := readCert(t, filepath.Join(a.Dir, clientsDir, "dev-00005.crt"))
	pw, err := ClientPassword(a.Dir, "dev-00005")
	if err != nil {
		t.Fatal(err)
	}
	if len(pw) != 32 {
		t.Errorf("password %d chars, want 32 (24 random bytes, base64url)", len(pw))
	}

	// Damage three identities: no password, a certificate from another CA,
	// a truncated certificate. Those are re-issued, the rest kept.
	os.Remove(filepath.Join(a.Dir, clientsDir, "dev-00002.pass"))
	other := newPKI(t, InitOptions{Observers: []string{}, Backends: []string{}})
	if err := other.IssueClient("dev-00003", ClientOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{".crt", ".key", ".pass"} {
		data, _ := os.ReadFile(filepath.Join(other.Dir, clientsDir, "dev-00003"+ext))
		os.WriteFile(filepath.Join(a.Dir, clientsDir, "dev-00003"+ext), data, 0o600)
	}
	crt4 := filepath.Join(a.Dir, clientsDir, "dev-00004.crt")
	data, _ := os.ReadFile(crt4)
	os.WriteFile(crt4, data[:len(data)/2], 0o644)

	res, err = a.IssueClients(ctx, append(ids, "dev-00021"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"dev-00002", "dev-00003", "dev-00004", "dev-00021"}; !slices.Equal(res.Issued, want) {
		t.Errorf("second issue: issued %v, want %v", res.Issued, want)
	}
	if len(res.Kept) != 17 {
		t.Errorf("second issue: kept %d, want 17", len(res.Kept))
	}
	if after := readCert(t, filepath.Join(a.Dir, clientsDir, "dev-00005.crt")); !after.Equal(before) {
		t.Error("kept identity dev-00005 was re-issued")
	}
	if pw2, _ := ClientPassword(a.Dir, "dev-00005"); pw2 != pw {
		t.Error("kept identity dev-00005 got a new password")
	}
	pool, _ := LoadCAPool(PathsOf(a.Dir).CACert)
	if _, err := readCert(t, filepath.Join(a.Dir, clientsDir, "dev-00003.crt")).Verify(x509.VerifyOptions{Roots: pool,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("re-issued dev-00003 does not verify with this CA: %v", err)
	}
}

func TestIssueClientsBadIDsIssueNothing(t *testing.T) {
	a := newPKI(t, InitOptions{Observers: []string{}, Backends: []string{}})
	_, err := a.IssueClients(context.Background(), []string{"dev-1", "devA/sub", "dev-2", "dev+#"})
	if err == nil {
		t.Fatal("IssueClients accepted bad ids")
	}
	for _, want := range []string{`"devA/sub"`, `"dev+#"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if ids, _ := clientIDs(a.Dir); len(ids) != 0 {
		t.Errorf("issued %v before rejecting the batch", ids)
	}
}

func TestIssueClientsCancelled(t *testing.T) {
	a := newPKI(t, InitOptions{Observers: []string{}, Backends: []string{}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := a.IssueClients(ctx, DeviceIDs("dev-", 1, 50))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(res.Issued) == 50 {
		t.Error("a cancelled issue ran to the end")
	}
}

func TestIssueClientOverrides(t *testing.T) {
	clock := fixedClock()
	now := clock()
	a := newPKI(t, InitOptions{Now: clock, Observers: []string{}, Backends: []string{}})
	tests := []struct {
		id   string
		o    ClientOptions
		cn   string
		want string // x509 verification error substring, "" = verifies
	}{
		{"valid", ClientOptions{}, "valid", ""},
		{"expired", ClientOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}, "expired", "expired"},
		{"notyet", ClientOptions{NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(48 * time.Hour)}, "notyet", "not yet valid"},
		{"serverauth", ClientOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, "serverauth", "key usage"},
		{"cn-slash", ClientOptions{RawCN: "devA/sub"}, "devA/sub", ""},
		{"cn-plus-hash", ClientOptions{RawCN: "dev+#"}, "dev+#", ""},
	}
	pool, _ := LoadCAPool(PathsOf(a.Dir).CACert)
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			if err := a.IssueClient(tc.id, tc.o); err != nil {
				t.Fatal(err)
			}
			c, err := LoadClient(a.Dir, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if c.Leaf.Subject.CommonName != tc.cn {
				t.Errorf("CN %q, want %q", c.Leaf.Subject.CommonName, tc.cn)
			}
			_, err = c.Leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
			if tc.want == "" && err != nil {
				t.Errorf("verify: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("verify = %v, want error containing %q", err, tc.want)
			}
		})
	}
	if err := a.IssueClient("bad/id", ClientOptions{RawCN: "x"}); err == nil {
		t.Error("IssueClient accepted a bad file id")
	}
}

func TestOpenErrors(t *testing.T) {
	good := newPKI(t, InitOptions{Observers: []string{}, Backends: []string{}})
	if _, err := Open(good.Dir); err != nil {
		t.Fatalf("Open: %v", err)
	}
	other := newPKI(t, InitOptions{Observers: []string{}, Backends: []string{}})
	tests := []struct {
		name  string
		setup func(dir string)
		want  []string
	}{
		{"missing", func(dir string) { os.RemoveAll(dir) }, []string{"ca.crt", "does not exist", "mqttstack certs init"}},
		{"garbage-cert", func(dir string) { os.WriteFile(filepath.Join(dir, caCertFile), []byte("not pem"), 0o644) }, []string{"ca.crt", "damaged", "--force"}},
		{"unreadable-key", func(dir string) {
			// root reads any file regardless of mode, so make the key path a
			// directory: reading it fails for every user.
			os.Remove(filepath.Join(dir, caKeyFile))
			os.Mkdir(filepath.Join(dir, caKeyFile), 0o700)
		}, []string{"ca.key", "may read it"}},
		{"foreign-key", func(dir string) {
			data, _ := os.ReadFile(filepath.Join(other.Dir, caKeyFile))
			os.WriteFile(filepath.Join(dir, caKeyFile), data, 0o600)
		}, []string{"ca.key", "does not belong to", "ca.crt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "pki")
			if err := os.CopyFS(dir, os.DirFS(good.Dir)); err != nil {
				t.Fatal(err)
			}
			tc.setup(dir)
			_, err := Open(dir)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestNoHalfWrittenFiles makes each write of an identity fail in turn and
// checks that nothing partial is left that a later run would keep.
func TestNoHalfWrittenFiles(t *testing.T) {
	for _, ext := range []string{".key", ".pass", ".crt"} {
		t.Run(ext, func(t *testing.T) {
			a := newPKI(t, InitOptions{Observers: []string{}, Backends: []string{}})
			// A non-empty directory where the file should go makes both the
			// rename and the in-place open fail, as a full disk would.
			blocker := filepath.Join(a.Dir, clientsDir, "dev-1"+ext)
			if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o700); err != nil {
				t.Fatal(err)
			}
			err := a.IssueClient("dev-1", ClientOptions{})
			if err == nil || !strings.Contains(err.Error(), "dev-1") {
				t.Fatalf("IssueClient = %v, want an error naming dev-1", err)
			}
			ents, _ := os.ReadDir(filepath.Join(a.Dir, clientsDir))
			for _, e := range ents {
				if strings.Contains(e.Name(), ".tmp") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
				if e.Name() == "dev-1.crt" && ext != ".crt" {
					t.Error("dev-1.crt written although an earlier file failed")
				}
			}
			if a.hasClient("dev-1") {
				t.Error("a failed identity counts as issued")
			}
			os.RemoveAll(blocker)
			res, err := a.IssueClients(context.Background(), []string{"dev-1"})
			if err != nil || !slices.Equal(res.Issued, []string{"dev-1"}) {
				t.Fatalf("retry: %v %v, want dev-1 issued", res, err)
			}
			if _, err := LoadClient(a.Dir, "dev-1"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLoadClientErrors(t *testing.T) {
	a := newPKI(t, InitOptions{Observers: []string{}, Backends: []string{}})
	_, err := LoadClient(a.Dir, "nobody")
	if err == nil || !strings.Contains(err.Error(), "nobody") || !strings.Contains(err.Error(), "certs issue") {
		t.Errorf("LoadClient(nobody) = %v, want an error naming the id and the fix", err)
	}
	if _, err := ClientPassword(a.Dir, "nobody"); err == nil || !strings.Contains(err.Error(), "nobody.pass") {
		t.Errorf("ClientPassword(nobody) = %v", err)
	}
	if _, err := LoadCAPool(filepath.Join(a.Dir, serverKeyFile)); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("LoadCAPool(key file) = %v", err)
	}

	ids := []string{"dev-3", "dev-1", "dev-2"}
	if _, err := a.IssueClients(context.Background(), ids); err != nil {
		t.Fatal(err)
	}
	cs, err := LoadClients(a.Dir, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		if c.Leaf.Subject.CommonName != ids[i] {
			t.Errorf("LoadClients[%d] = %s, want %s", i, c.Leaf.Subject.CommonName, ids[i])
		}
	}
	// A key that belongs to another identity is caught at load time, not
	// as a confusing handshake failure later.
	other, _ := os.ReadFile(filepath.Join(a.Dir, clientsDir, "dev-2.key"))
	os.WriteFile(filepath.Join(a.Dir, clientsDir, "dev-1.key"), other, 0o600)
	if _, err := LoadClient(a.Dir, "dev-1"); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("LoadClient with a foreign key = %v", err)
	}
	if _, err := LoadClients(a.Dir, ids); err == nil || !strings.Contains(err.Error(), "dev-1") {
		t.Errorf("LoadClients with a bad identity = %v", err)
	}
}
