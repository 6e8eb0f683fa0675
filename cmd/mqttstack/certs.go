package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/internal/atomicfile"
)

func init() {
	register("certs", "private device CA: init, issue, revoke, crl, check, export, negative", runCerts)
}

const defaultPKIDir = ".mqttstack/pki"

const certsUsage = `usage: mqttstack certs <subcommand> [flags]

subcommands:
  init    [--dir DIR] [--key ecdsa|rsa2048] [--name mqtt.local.test] [--san DNS-or-IP,...] [--force]
  issue   (--count N [--prefix dev-] [--from 1] | --id ID[,ID...] ...) [--dir DIR]
  revoke  ID [--dir DIR]              (--dir DIR/<subca> for a sub-CA's client)
  crl     [--next-update 720h|30d] [--dir DIR]
  check   [--within 30d] [--all] [--dir DIR]   exit 1 when anything expires inside the window
  export  ID --format pem|der|c-header|fingerprint [--out PATH] [--dir DIR]
  negative [--name ci] [--impersonate dev-00001] [--dir DIR]   CI-only identities of SECURITY.md (sub-CA, foreign, self-signed)
`

func runCerts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, certsUsage)
		return usageErrorf("certs: no subcommand given (see the list above)")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "init":
		return certsInit(rest, stdout, stderr)
	case "issue":
		return certsIssue(ctx, rest, stdout, stderr)
	case "revoke":
		return certsRevoke(rest, stdout, stderr)
	case "crl":
		return certsCRL(rest, stdout, stderr)
	case "check":
		return certsCheck(rest, stdout, stderr)
	case "export":
		return certsExport(rest, stdout, stderr)
	case "negative":
		return certsNegative(rest, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, certsUsage)
		return nil
	}
	fmt.Fprint(stderr, certsUsage)
	return usageErrorf("certs: unknown subcommand %q (see the list above)", sub)
}

// leadingArg takes a positional argument given before the flags
// (`revoke dev-00001 --dir x`), which package flag would stop at.
func leadingArg(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

// openPKI opens dir and marks a missing or damaged PKI as bad input.
func openPKI(dir string) (*certs.Authority, error) {
	a, err := certs.Open(dir)
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	return a, nil
}

func certsInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("certs init", stderr)
	dir := fs.String("dir", defaultPKIDir, "PKI directory")
	key := fs.String("key", "ecdsa", "key type: ecdsa (P-256) or rsa2048")
	name := fs.String("name", certs.DefaultServerName, "broker server name (first SAN, CN)")
	caName := fs.String("ca-name", certs.DefaultCAName, "CA common name")
	san := fs.String("san", "", "extra server SANs, comma-separated DNS names or IPs (default: localhost,127.0.0.1,::1)")
	force := fs.Bool("force", false, "replace an existing PKI (every issued certificate stops verifying)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("certs init: unexpected argument %q", fs.Arg(0))
	}
	opts := certs.InitOptions{Dir: *dir, CAName: *caName, ServerName: *name, Force: *force}
	switch *key {
	case "ecdsa", "ecdsa-p256", "p256":
		opts.Key = certs.ECDSAP256
	case "rsa2048", "rsa":
		opts.Key = certs.RSA2048
	default:
		return usageErrorf("certs init: --key %q: use ecdsa or rsa2048", *key)
	}
	for _, s := range strings.Split(*san, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
		case net.ParseIP(s) != nil:
			opts.IPs = append(opts.IPs, net.ParseIP(s))
		case validDNSName(s):
			opts.DNSNames = append(opts.DNSNames, s)
		default:
			return usageErrorf("certs init: --san %q is neither an IP address nor a DNS name", s)
		}
	}
	if !validDNSName(*name) {
		return usageErrorf("certs init: --name %q is not a DNS name (e.g. mqtt.example.com)", *name)
	}
	a, err := certs.Init(opts)
	if err != nil {
		if strings.Contains(err.Error(), "--force") {
			return withCode(exitUsage, err)
		}
		return err
	}
	p := certs.PathsOf(a.Dir)
	fmt.Fprintf(stdout, "created PKI in %s (%s)\n  CA      %s  %q valid until %s\n  server  %s  %s\n  CRL     %s\n  clients %s  %d observer and backend identities\n",
		a.Dir, a.Key, p.CACert, a.Cert.Subject.CommonName, a.Cert.NotAfter.UTC().Format("2006-01-02"),
		p.ServerCert, strings.Join(append(append([]string{*name}, opts.DNSNames...), ipStrings(opts.IPs)...), ","),
		p.CRL, p.Clients, len(certs.DefaultObservers())+len(certs.DefaultBackends()))
	return nil
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimPrefix(s, "*."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// idList is a repeatable, comma-separated --id flag.
type idList []string

func (l *idList) String() string { return strings.Join(*l, ",") }
func (l *idList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func certsIssue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("certs issue", stderr)
	dir := fs.String("dir", defaultPKIDir, "PKI directory (or a sub-CA directory inside it)")
	count := fs.Int("count", 0, "number of devices to issue: <prefix>00001 …")
	prefix := fs.String("prefix", "dev-", "device id prefix for --count")
	from := fs.Int("from", 1, "first device number for --count")
	var ids idList
	fs.Var(&ids, "id", "identity to issue (repeatable, or comma-separated)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ids = append(ids, fs.Args()...)
	switch {
	case *count < 0:
		return usageErrorf("certs issue: --count %d must be > 0", *count)
	case *count == 0 && len(ids) == 0:
		return usageErrorf("certs issue: nothing to issue (give --count N [--prefix dev-] or --id ID)")
	case *from < 0:
		return usageErrorf("certs issue: --from %d must be >= 0", *from)
	}
	if *count > 0 {
		ids = append(ids, certs.DeviceIDs(*prefix, *from, *count)...)
	}
	for _, id := range ids {
		if err := certs.ValidateID(id); err != nil {
			return usageErrorf("certs issue: %v", err)
		}
	}
	a, err := openPKI(*dir)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := a.IssueClients(ctx, ids)
	fmt.Fprintf(stdout, "issued %d, kept %d (already issued) in %s, in %s\n",
		len(res.Issued), len(res.Kept), time.Since(start).Round(time.Millisecond), certs.PathsOf(a.Dir).Clients)
	return err
}

func certsRevoke(args []string, stdout, stderr io.Writer) error {
	id, args := leadingArg(args)
	fs := newFlagSet("certs revoke", stderr)
	dir := fs.String("dir", defaultPKIDir, "PKI directory (a sub-CA directory for its clients)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	if id == "" {
		return usageErrorf("certs revoke: which identity? (mqttstack certs revoke ID)")
	}
	a, err := openPKI(*dir)
	if err != nil {
		return err
	}
	if err := a.Revoke(id); err != nil {
		return withCode(exitUsage, err)
	}
	fmt.Fprintf(stdout, "revoked %s; CRL rewritten: %s\nreload the broker (SIGHUP) so new handshakes see it; restart it to evict a connected device\n",
		id, certs.PathsOf(a.Dir).CRL)
	return nil
}

func certsCRL(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("certs crl", stderr)
	dir := fs.String("dir", defaultPKIDir, "PKI directory")
	next := fs.String("next-update", "720h", "CRL validity (Go duration, or days like 30d)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	d, err := parseDays(*next)
	if err != nil || d <= 0 {
		return usageErrorf("certs crl: --next-update %q: give a positive duration like 720h or 30d", *next)
	}
	a, err := openPKI(*dir)
	if err != nil {
		return err
	}
	if err := a.WriteCRL(d); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s, next update %s\n", certs.PathsOf(a.Dir).CRL, a.Now().Add(d).UTC().Format(time.RFC3339))
	return nil
}

// parseDays is time.ParseDuration plus a whole-day form ("30d").
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		f, err := strconv.ParseFloat(n, 64)
		if err != nil {
			return 0, err
		}
		return time.Duration(f * float64(24*time.Hour)), nil
	}
	return time.ParseDuration(s)
}

func certsCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("certs check", stderr)
	dir := fs.String("dir", defaultPKIDir, "PKI directory")
	within := fs.String("within", "30d", "report what expires within this window (e.g. 30d, 720h)")
	all := fs.Bool("all", false, "list every client, not only those inside the window")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	w, err := parseDays(*within)
	if err != nil || w < 0 {
		return usageErrorf("certs check: --within %q: give a duration like 30d or 720h", *within)
	}
	a, err := openPKI(*dir)
	if err != nil {
		return err
	}
	now := time.Now()
	es, err := a.Check(w, now)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tSUBJECT\tNOT AFTER\tLEFT\tSTATUS\tPATH")
	inside, clients, hidden := 0, 0, 0
	for _, e := range es {
		if e.Kind == "client" {
			clients++
		}
		if e.Inside {
			inside++
		}
		if e.Kind == "client" && !e.Inside && !*all {
			hidden++
			continue
		}
		status := "ok"
		switch {
		case !e.NotAfter.After(now):
			status = "EXPIRED"
		case e.Inside:
			status = "EXPIRES SOON"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Kind, e.Subject, e.NotAfter.UTC().Format("2006-01-02 15:04"),
			left(e.NotAfter.Sub(now)), status, e.Path)
	}
	tw.Flush()
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d client certificates", clients)
	if hidden > 0 {
		fmt.Fprintf(stdout, " (%d outside the window not listed; --all lists them)", hidden)
	}
	fmt.Fprintf(stdout, "; window %s\n", *within)
	if inside > 0 {
		return withCode(exitFailed, fmt.Errorf("certs check: %d item(s) expire within %s: renew them (`mqttstack certs crl` for the CRL; re-issue certificates)", inside, *within))
	}
	return nil
}

func left(d time.Duration) string {
	if d <= 0 {
		return "-" + left(-d)
	}
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	return d.Round(time.Minute).String()
}

func certsExport(args []string, stdout, stderr io.Writer) error {
	id, args := leadingArg(args)
	fs := newFlagSet("certs export", stderr)
	dir := fs.String("dir", defaultPKIDir, "PKI directory (a sub-CA directory for its clients)")
	format := fs.String("format", "pem", "pem | der | c-header | fingerprint")
	out := fs.String("out", "", "output file (a directory for der); default stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	f := certs.Format(*format)
	known := false
	for _, k := range certs.Formats {
		known = known || k == f
	}
	if !known {
		return usageErrorf("certs export: --format %q: use pem, der, c-header or fingerprint", *format)
	}
	if id == "" && f != certs.FormatFingerprint {
		return usageErrorf("certs export: which identity? (mqttstack certs export ID --format %s)", f)
	}
	if id != "" {
		if err := certs.ValidateID(id); err != nil {
			return usageErrorf("certs export: %v", err)
		}
	}
	a, err := openPKI(*dir)
	if err != nil {
		return err
	}
	if f == certs.FormatDER {
		if *out == "" {
			return usageErrorf("certs export: --format der writes three files: give --out DIR")
		}
		if err := a.ExportDER(*out, id); err != nil {
			return withCode(exitUsage, err)
		}
		fmt.Fprintf(stdout, "wrote %s/%s.crt.der, %s.key.der (0600), ca.der\n", *out, id, id)
		return nil
	}
	var buf bytes.Buffer
	if err := a.Export(&buf, id, f); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return withCode(exitUsage, err)
		}
		return err
	}
	if *out == "" {
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	// pem and c-header hold the private key.
	mode := os.FileMode(0o600)
	if f == certs.FormatFingerprint {
		mode = 0o644
	}
	if err := atomicfile.Write(*out, buf.Bytes(), mode); err != nil {
		return fmt.Errorf("certs export: write %s: %w", *out, err)
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return nil
}

func certsNegative(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("certs negative", stderr)
	dir := fs.String("dir", defaultPKIDir, "PKI directory (the root)")
	name := fs.String("name", "ci", "name of the CI sub-CA (a directory inside the PKI)")
	imp := fs.String("impersonate", "dev-00001", "device id that the foreign, self-signed and CN-with-slash certificates borrow")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("certs negative: unexpected argument %q", fs.Arg(0))
	}
	if err := certs.ValidateID(*name); err != nil || *name == "clients" {
		return usageErrorf("certs negative: --name %q: use letters, digits, '-' or '_' (not \"clients\")", *name)
	}
	if err := certs.ValidateID(*imp); err != nil {
		return usageErrorf("certs negative: --impersonate: %v", err)
	}
	a, err := openPKI(*dir)
	if err != nil {
		return err
	}
	n, err := a.IssueNegative(*name, *imp)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tIDENTITY\tDIR (LoadClient(dir, id))")
	for _, r := range [][3]string{
		{"control", n.Valid, n.SubCADir},
		{"CRT-02 foreign CA", n.Impersonated, n.ForeignDir},
		{"CRT-02 self-signed", n.Impersonated, n.SelfSignedDir},
		{"CRT-03 expired", n.Expired, n.SubCADir},
		{"CRT-04 not yet valid", n.NotYetValid, n.SubCADir},
		{"CRT-05 revoked", n.Revoked, n.SubCADir},
		{"CRT-06 serverAuth only", n.ServerAuthOnly, n.SubCADir},
		{"CRT-07 CN with /", n.CNSlash, n.SubCADir},
		{"CRT-07 CN with + #", n.CNPlusHash, n.SubCADir},
		{"CRT-07 CN 100 chars", n.CNLong, n.SubCADir},
		{"CRT-07 CN non-ASCII", n.CNNonASCII, n.SubCADir},
	} {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r[0], r[1], r[2])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ca.crl now carries the sub-CA's CRL: reload the broker (SIGHUP) before using these\n")
	return nil
}
