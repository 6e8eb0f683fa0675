package certs

import (
	"bufio"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mqttstack/mqttstack/internal/atomicfile"
)

// Format is an export format of Export.
type Format string

// Export formats.
const (
	// FormatPEM is the certificate (chain) followed by the PKCS#8 key.
	FormatPEM Format = "pem"
	// FormatDER writes separate DER files to a directory (ExportDER).
	FormatDER Format = "der"
	// FormatCHeader is a C header with the certificate, key and CA as DER
	// byte arrays, for firmware that embeds its identity.
	FormatCHeader Format = "c-header"
	// FormatFingerprint lists SHA-256 and SHA-1 fingerprints of the
	// server, CA and device certificates in the colon-hex form boards pin.
	FormatFingerprint Format = "fingerprint"
)

// Formats lists the formats Export and ExportDER understand.
var Formats = []Format{FormatPEM, FormatDER, FormatCHeader, FormatFingerprint}

// identity is one client's certificate chain and key, as DER.
type identity struct {
	id    string
	chain [][]byte // leaf first
	key   []byte   // PKCS#8
	leaf  *x509.Certificate
	// ca is the CA that issued the identity (its generation during a
	// rollover); others are the other trusted generations, which a device
	// also needs as anchors while the server may chain to either.
	ca     *x509.Certificate
	others []*x509.Certificate
}

func (a *Authority) readIdentity(id string) (*identity, error) {
	g, err := a.locate(id)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	it, err := g.readOwnIdentity(id)
	if err != nil {
		return nil, err
	}
	it.ca = g.root().Cert
	if gens, err := a.Generations(); err == nil && a.parent == nil {
		for _, o := range gens {
			if !o.Cert.Equal(it.ca) {
				it.others = append(it.others, o.Cert)
			}
		}
	}
	return it, nil
}

func (a *Authority) readOwnIdentity(id string) (*identity, error) {
	base := filepath.Join(a.Dir, clientsDir, id)
	crt, err := os.ReadFile(base + ".crt")
	if err != nil {
		return nil, fmt.Errorf("export %s: %w (issue it first: `mqttstack certs issue --id %s`)", id, err, id)
	}
	keyPEM, err := os.ReadFile(base + ".key")
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", id, err)
	}
	it := &identity{id: id}
	for {
		var b *pem.Block
		b, crt = pem.Decode(crt)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			it.chain = append(it.chain, b.Bytes)
		}
	}
	if len(it.chain) == 0 {
		return nil, fmt.Errorf("export %s: %s.crt holds no certificate (re-issue it)", id, base)
	}
	if it.leaf, err = x509.ParseCertificate(it.chain[0]); err != nil {
		return nil, fmt.Errorf("export %s: %s.crt: %w", id, base, err)
	}
	signer, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("export %s: %s.key: %w", id, base, err)
	}
	if !publicKeysEqual(signer.Public(), it.leaf.PublicKey) {
		return nil, fmt.Errorf("export %s: %s.key does not match %s.crt (re-issue the identity)", id, base, base)
	}
	if it.key, err = x509.MarshalPKCS8PrivateKey(signer); err != nil {
		return nil, fmt.Errorf("export %s: %w", id, err)
	}
	return it, nil
}

// Export writes the identity id in format to w. FormatDER needs a
// directory: use ExportDER. For FormatFingerprint id may be empty (server
// and CA only). The PEM and C header outputs contain the private key.
func (a *Authority) Export(w io.Writer, id string, format Format) error {
	switch format {
	case FormatFingerprint:
		return a.exportFingerprints(w, id)
	case FormatDER:
		return fmt.Errorf("export %s: format der writes several files; give a directory (--out DIR, or ExportDER)", id)
	case FormatPEM, FormatCHeader:
	default:
		return fmt.Errorf("export %s: unknown format %q (use one of %s)", id, format, formatList())
	}
	it, err := a.readIdentity(id)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	if format == FormatPEM {
		for _, der := range it.chain {
			if err := pem.Encode(bw, &pem.Block{Type: "CERTIFICATE", Bytes: der}); err != nil {
				return err
			}
		}
		if err := pem.Encode(bw, &pem.Block{Type: "PRIVATE KEY", Bytes: it.key}); err != nil {
			return err
		}
	} else {
		a.writeCHeader(bw, it)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export %s: %w", id, err)
	}
	return nil
}

func formatList() string {
	s := make([]string, len(Formats))
	for i, f := range Formats {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

// ExportDER writes <dir>/<id>.crt.der (leaf), <id>.key.der (PKCS#8, 0600)
// and ca.der (the root CA) for tools that want binary files.
func (a *Authority) ExportDER(dir, id string) error {
	it, err := a.readIdentity(id)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("export %s: %w", id, err)
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{id + ".crt.der", it.chain[0], 0o644},
		{id + ".key.der", it.key, 0o600},
		{"ca.der", it.ca.Raw, 0o644},
	}
	for _, o := range it.others {
		files = append(files, struct {
			name string
			data []byte
			mode os.FileMode
		}{"ca-" + GenerationName(o) + ".der", o.Raw, 0o644})
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := atomicfile.Write(p, f.data, f.mode); err != nil {
			return fmt.Errorf("export %s: write %s: %w", id, p, err)
		}
	}
	return nil
}

// CIdent turns an id into a C identifier prefix: every byte that is not a
// letter, digit or '_' becomes '_', and a leading digit gets "id_" in front.
func CIdent(id string) string {
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	s := string(b)
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		s = "id_" + s
	}
	return s
}

func (a *Authority) writeCHeader(w *bufio.Writer, it *identity) {
	p := CIdent(it.id)
	guard := "MQTTSTACK_" + strings.ToUpper(p) + "_H"
	fmt.Fprintf(w, "/* Identity of device %q, written by `mqttstack certs export --format c-header`.\n", it.id)
	fmt.Fprintf(w, " * It holds the device's PRIVATE KEY: keep it out of version control.\n")
	fmt.Fprintf(w, " * Certificate CN=%s valid until %s; CA %q.\n", it.leaf.Subject.CommonName,
		it.leaf.NotAfter.UTC().Format("2006-01-02"), it.ca.Subject.CommonName)
	fmt.Fprintf(w, " * Key and certificates are DER (the key PKCS#8), as mbedTLS/BearSSL parse them. */\n")
	fmt.Fprintf(w, "#ifndef %s\n#define %s\n\n", guard, guard)
	fmt.Fprintf(w, "/* MQTT username = certificate CN */\n#define %s_MQTT_USERNAME %q\n\n", strings.ToUpper(p), it.id)
	cArray(w, p+"_cert_der", it.chain[0])
	for i, der := range it.chain[1:] {
		cArray(w, fmt.Sprintf("%s_chain%d_der", p, i+1), der)
	}
	cArray(w, p+"_key_der", it.key)
	cArray(w, p+"_ca_der", it.ca.Raw)
	if len(it.others) > 0 {
		fmt.Fprintf(w, "/* CA rollover in progress: the broker may present a chain to any of these\n")
		fmt.Fprintf(w, " * CAs until the old one is retired; load them as trust anchors too. */\n")
	}
	for _, o := range it.others {
		cArray(w, p+"_ca_"+strings.ToLower(GenerationName(o))+"_der", o.Raw)
	}
	fmt.Fprintf(w, "#endif /* %s */\n", guard)
}

// cArray writes a static const byte array and its length; static so that
// the header can be included from several translation units.
func cArray(w *bufio.Writer, name string, data []byte) {
	fmt.Fprintf(w, "static const unsigned char %s[] = {", name)
	for i, c := range data {
		if i%12 == 0 {
			w.WriteString("\n ")
		}
		fmt.Fprintf(w, " 0x%02x,", c)
	}
	fmt.Fprintf(w, "\n};\nstatic const unsigned int %s_len = %d;\n\n", name, len(data))
}

// Fingerprint returns the hex digest of der in the colon form boards and
// openssl print (AB:CD:…), for sha1 or sha256.
func Fingerprint(der []byte, alg string) string {
	var sum []byte
	switch alg {
	case "sha1":
		s := sha1.Sum(der)
		sum = s[:]
	default:
		s := sha256.Sum256(der)
		sum = s[:]
	}
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

func (a *Authority) exportFingerprints(w io.Writer, id string) error {
	h := a.pkiHome()
	sp := filepath.Join(h.Dir, serverCertFile)
	server, err := readCertFile(sp)
	if err != nil {
		return fmt.Errorf("fingerprint: %w", err)
	}
	type row struct {
		role, name string
		der        []byte
	}
	rows := []row{{"server", server.Subject.CommonName, server.Raw}}
	if pending, err := readCertFile(filepath.Join(h.Dir, pendingServerDir, serverCertFile)); err == nil {
		// a staged renewal: firmware carries both pins before the switch
		rows = append(rows, row{"server-next", pending.Subject.CommonName, pending.Raw})
	}
	gens, err := h.Generations()
	if err != nil {
		return fmt.Errorf("fingerprint: %w", err)
	}
	for _, g := range gens {
		rows = append(rows, row{"ca", g.Cert.Subject.CommonName, g.Cert.Raw})
	}
	if id != "" {
		it, err := a.readIdentity(id)
		if err != nil {
			return err
		}
		rows = append(rows, row{"device", id, it.chain[0]})
	}
	bw := bufio.NewWriter(w)
	for _, rw := range rows {
		fmt.Fprintf(bw, "%-6s %-24s SHA-256 %s\n", rw.role, rw.name, Fingerprint(rw.der, "sha256"))
		fmt.Fprintf(bw, "%-6s %-24s SHA-1   %s\n", rw.role, rw.name, Fingerprint(rw.der, "sha1"))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("fingerprint: %w", err)
	}
	return nil
}
