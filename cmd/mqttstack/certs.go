package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/internal/atomicfile"
)

const defaultPKIDir = ".mqttstack/pki"

func newCertsCmd(a *app) *cobra.Command {
	c := newGroupCmd("certs", "Private device CA: init, issue, revoke, crl, check, export, negative, ca rollover, server renewal",
		`The private CA of the stack (ECDSA P-256, or RSA 2048 for boards that need
it): the broker's server certificate, one client certificate per device
(CN = device id), the CRL, an expiry report, firmware exports and the
CI-only negative identities of SECURITY.md.

Exit codes: 0 ok, 1 something expires inside the window (check), 2 bad
flags or a missing or damaged PKI, 3 could not run.`,
		`  mqttstack certs init --san mqtt.example.com,203.0.113.5
  mqttstack certs issue --count 5000
  mqttstack certs revoke dev-00042
  mqttstack certs check --within 30d`)
	c.AddCommand(newCertsInitCmd(a))
	c.AddCommand(newCertsIssueCmd(a))
	c.AddCommand(newCertsRevokeCmd(a))
	c.AddCommand(newCertsCRLCmd(a))
	c.AddCommand(newCertsCheckCmd(a))
	c.AddCommand(newCertsExportCmd(a))
	c.AddCommand(newCertsNegativeCmd(a))
	c.AddCommand(newCertsCACmd(a))
	c.AddCommand(newCertsServerCmd(a))
	return c
}

// pkiDirFlag is the --dir flag of every certs subcommand.
func pkiDirFlag(c *cobra.Command, usage string) *string {
	return c.Flags().String("dir", defaultPKIDir, usage)
}

// openPKI opens dir and marks a missing or damaged PKI as bad input.
func openPKI(c *cobra.Command, dir string) (*certs.Authority, error) {
	a, err := certs.Open(dir)
	if err != nil {
		return nil, badInput(c, err)
	}
	return a, nil
}

func newCertsInitCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "init",
		Short: "Create the CA, the server certificate, the CRL and the observer and backend identities",
		Long: `Creates a PKI in --dir: the CA, the broker's server certificate (CN and
first SAN --name, plus --san), an empty CRL and the observer and backend
identities. Refuses to overwrite an existing PKI unless --force (every
certificate issued from it then stops verifying).`,
		Example: `  mqttstack certs init
  mqttstack certs init --name mqtt.example.com --san mqtt.example.com,203.0.113.5
  mqttstack certs init --key rsa2048 --dir pki-rsa`,
		Args: noArgs,
	}
	dir := pkiDirFlag(c, "PKI directory")
	fl := c.Flags()
	key := fl.String("key", "ecdsa", "key type: ecdsa (P-256) or rsa2048")
	name := fl.String("name", certs.DefaultServerName, "broker server name (first SAN, CN)")
	caName := fl.String("ca-name", certs.DefaultCAName, "CA common name")
	san := fl.String("san", "", "extra server SANs, comma-separated DNS names or IPs (default: localhost,127.0.0.1,::1)")
	force := fl.Bool("force", false, "replace an existing PKI (every issued certificate stops verifying)")
	c.RunE = func(c *cobra.Command, _ []string) error {
		stdout := a.stdout
		opts := certs.InitOptions{Dir: *dir, CAName: *caName, ServerName: *name, Force: *force}
		switch *key {
		case "ecdsa", "ecdsa-p256", "p256":
			opts.Key = certs.ECDSAP256
		case "rsa2048", "rsa":
			opts.Key = certs.RSA2048
		default:
			return usageErrorf(c, "--key %q: use ecdsa or rsa2048", *key)
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
				return usageErrorf(c, "--san %q is neither an IP address nor a DNS name", s)
			}
		}
		if !validDNSName(*name) {
			return usageErrorf(c, "--name %q is not a DNS name (e.g. mqtt.example.com)", *name)
		}
		ca, err := certs.Init(opts)
		if err != nil {
			if strings.Contains(err.Error(), "--force") {
				return badInput(c, err)
			}
			return couldNotRun(c, err)
		}
		p := certs.PathsOf(ca.Dir)
		fmt.Fprintf(stdout, "created PKI in %s (%s)\n  CA      %s  %q valid until %s\n  server  %s  %s\n  CRL     %s\n  clients %s  %d observer and backend identities\n",
			ca.Dir, ca.Key, p.CACert, ca.Cert.Subject.CommonName, ca.Cert.NotAfter.UTC().Format("2006-01-02"),
			p.ServerCert, strings.Join(append(append([]string{*name}, opts.DNSNames...), ipStrings(opts.IPs)...), ","),
			p.CRL, p.Clients, len(certs.DefaultObservers())+len(certs.DefaultBackends()))
		return nil
	}
	return c
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

func newCertsIssueCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "issue [ID...]",
		Short: "Issue device identities (idempotent, parallel)",
		Long: `Issues a client certificate, key and wss password per identity into
<dir>/clients (CN = id). Identities already issued are kept, so the
command is safe to repeat. --dir may name a sub-CA directory inside the PKI.`,
		Example: `  mqttstack certs issue --count 5000
  mqttstack certs issue --count 100 --prefix sensor- --from 501
  mqttstack certs issue --id gateway-1,gateway-2
  mqttstack certs issue gateway-3
  mqttstack certs issue --ca next --from 1 --count 1000   # a rollover wave`,
	}
	dir := pkiDirFlag(c, "PKI directory (or a sub-CA directory inside it)")
	fl := c.Flags()
	count := fl.Int("count", 0, "number of devices to issue: <prefix>00001 ...")
	prefix := fl.String("prefix", "dev-", "device id prefix for --count")
	from := fl.Int("from", 1, "first device number for --count")
	ids := fl.StringSlice("id", nil, "identity to issue (repeatable, or comma-separated)")
	caName := fl.String("ca", "", "CA generation during a rollover: current (default), next, or G<n>; a re-issue keeps id and password")
	c.RunE = func(c *cobra.Command, args []string) error {
		ids := append(*ids, args...)
		switch {
		case *count < 0:
			return usageErrorf(c, "--count %d must be > 0", *count)
		case *count == 0 && len(ids) == 0:
			return usageErrorf(c, "nothing to issue (give --count N [--prefix dev-] or --id ID)")
		case *from < 0:
			return usageErrorf(c, "--from %d must be >= 0", *from)
		}
		if *count > 0 {
			ids = append(ids, certs.DeviceIDs(*prefix, *from, *count)...)
		}
		for _, id := range ids {
			if err := certs.ValidateID(id); err != nil {
				return badInput(c, err)
			}
		}
		ca, err := openPKI(c, *dir)
		if err != nil {
			return err
		}
		if *caName != "" {
			g, err := ca.Generation(*caName)
			if err != nil {
				return badInput(c, err)
			}
			if g != ca {
				// a wave moves existing devices: ids neither generation
				// issued are a typo in --prefix/--from/--count
				unknown, err := ca.UnknownIDs(ids)
				if err != nil {
					return badInput(c, err)
				}
				if len(unknown) > 0 {
					more := ""
					if len(unknown) > 10 {
						more = fmt.Sprintf(" … and %d more", len(unknown)-10)
						unknown = unknown[:10]
					}
					return badInput(c, fmt.Errorf("re-issue under %s: %d id(s) were issued by neither CA generation: %s%s (check --prefix, --from and --count; issue new devices without --ca)",
						certs.GenerationName(g.Cert), len(unknown), strings.Join(unknown, ", "), more))
				}
			}
			ca = g
		}
		start := time.Now()
		res, err := ca.IssueClients(c.Context(), ids)
		fmt.Fprintf(a.stdout, "issued %d, kept %d (already issued) in %s, in %s\n",
			len(res.Issued), len(res.Kept), time.Since(start).Round(time.Millisecond), certs.PathsOf(ca.Dir).Clients)
		return couldNotRun(c, err)
	}
	return c
}

func newCertsRevokeCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an identity: CRL rewritten, its password leaves the password files",
		Long: `Revokes the identity's certificate (during a CA rollover: every trusted
generation's) and rewrites the CRL. Its password leaves the broker's
password files too: they are rendered from the PKI without revoked
identities, so the ops listener and the WebSocket listeners refuse it.

The command names the files that changed. Load them: on the local stack
with --reload-local (rewrites the password files, SIGHUP to mosquitto and
nginx); on a deployed stack 'mqttstack deploy preview' names them and
'mqttstack deploy up' ships them. A connected device keeps its session
until 'mqttstack security --end-sessions ID'.
For a client of a sub-CA, give --dir <pki>/<sub-ca>.`,
		Example: `  mqttstack certs revoke dev-00042
  mqttstack certs revoke dev-00042 --reload-local
  mqttstack certs revoke dev-00001 --dir .mqttstack/pki/ci`,
		Args: oneArg("the identity to revoke, e.g. dev-00042"),
	}
	dir := pkiDirFlag(c, "PKI directory (a sub-CA directory for its clients)")
	reload, state := reloadFlags(c)
	c.RunE = func(c *cobra.Command, args []string) error {
		id := args[0]
		ca, err := openPKI(c, *dir)
		if err != nil {
			return err
		}
		if err := ca.Revoke(id); err != nil {
			return badInput(c, err)
		}
		home := ca.PKIDir()
		// The password files lose id's line when it held a password and
		// no certificate of it is left unrevoked (certs.RevokedIDs).
		var dropped []string
		if _, err := os.Stat(filepath.Join(certs.PathsOf(home).Clients, id+".pass")); err == nil {
			rv, err := certs.RevokedIDs(home, []string{id})
			if err != nil {
				return couldNotRun(c, err)
			}
			if rv[id] {
				dropped = []string{id}
			}
		}
		w := a.stdout
		fmt.Fprintf(w, "revoked %s\n", id)
		printChanged(w, []string{certs.PathsOf(home).CRL})
		printDropped(w, dropped)
		if *reload {
			if err := reloadLocal(c, w, *state, home, dropped); err != nil {
				return err
			}
		}
		_, err = fmt.Fprintf(w, "a connected %s keeps its session until `mqttstack security --end-sessions %s` (after the CRL is loaded)\n", id, id)
		return err
	}
	return c
}

func newCertsCRLCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "crl",
		Short: "Rewrite the CRL with a new next update",
		Long: `Re-signs the CRL with every revoked serial and a next update --next-update
from now. Once a CRL's next update passes, the broker refuses every client:
refresh it before (see 'mqttstack certs check' for the rule).`,
		Example: `  mqttstack certs crl
  mqttstack certs crl --next-update 90d`,
		Args: noArgs,
	}
	dir := pkiDirFlag(c, "PKI directory")
	next := c.Flags().String("next-update", "720h", "CRL validity (Go duration, or days like 30d)")
	c.RunE = func(c *cobra.Command, _ []string) error {
		d, err := parseDays(*next)
		if err != nil || d <= 0 {
			return usageErrorf(c, "--next-update %q: give a positive duration like 720h or 30d", *next)
		}
		ca, err := openPKI(c, *dir)
		if err != nil {
			return err
		}
		if err := ca.WriteCRL(d); err != nil {
			return couldNotRun(c, err)
		}
		_, err = fmt.Fprintf(a.stdout, "wrote %s, next update %s\n", certs.PathsOf(ca.Dir).CRL, ca.Now().Add(d).UTC().Format(time.RFC3339))
		return err
	}
	return c
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

func newCertsCheckCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "check",
		Short: "Report what expires soon (exit 1 when anything expires inside the window)",
		Long: `Lists the CA (every trusted generation during a CA rollover, and the
cross certificate), the server certificate (and a staged renewal), each
CRL, each sub-CA and the client certificates, soonest first, then the
devices grouped by the month they expire, and exits 1 when any of them is
due; the message names what. --json writes the same for CI alerting.

Certificates are due when they expire within --within. A CRL is due by its
own refresh rule, whatever --within says: see the rule printed under the
table.`,
		Example: `  mqttstack certs check
  mqttstack certs check --within 90d --all
  mqttstack certs check --within 60d --json expiry.json   # CI: exit 1 and the JSON names what is due`,
		Args: noArgs,
	}
	dir := pkiDirFlag(c, "PKI directory")
	within := c.Flags().String("within", "30d", "report what expires within this window (e.g. 30d, 720h)")
	all := c.Flags().Bool("all", false, "list every client, not only those inside the window")
	jsonOut := c.Flags().String("json", "", "also write the timeline as JSON to this file ('-' = stdout instead of the table), for CI alerting")
	c.RunE = func(c *cobra.Command, _ []string) error {
		stdout := a.stdout
		w, err := parseDays(*within)
		if err != nil || w < 0 {
			return usageErrorf(c, "--within %q: give a duration like 30d or 720h", *within)
		}
		ca, err := openPKI(c, *dir)
		if err != nil {
			return err
		}
		now := time.Now()
		es, err := ca.Check(w, now)
		if err != nil {
			return badInput(c, err)
		}
		var buf bytes.Buffer
		tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tCA\tSUBJECT\tNOT AFTER\tLEFT\tSTATUS\tPATH")
		inside, clients, hidden := 0, 0, 0
		var crls []certs.Expiry
		var due []string
		for _, e := range es {
			if e.Kind == "client" {
				clients++
			}
			if e.Kind == "crl" {
				crls = append(crls, e)
			}
			if e.Inside {
				inside++
				due = append(due, e.Kind)
			}
			if e.Kind == "client" && !e.Inside && !*all {
				hidden++
				continue
			}
			status := "ok"
			switch {
			case !e.NotAfter.After(now):
				status = "EXPIRED"
			case e.Inside && e.Kind == "crl":
				status = "REFRESH DUE"
			case e.Inside:
				status = "EXPIRES SOON"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Kind, e.Generation, e.Subject, e.NotAfter.UTC().Format("2006-01-02 15:04"),
				left(e.NotAfter.Sub(now)), status, e.Path)
		}
		tw.Flush()
		fmt.Fprintf(&buf, "%d client certificates", clients)
		if hidden > 0 {
			fmt.Fprintf(&buf, " (%d outside the window not listed; --all lists them)", hidden)
		}
		fmt.Fprintf(&buf, "; certificates are due when they expire within %s (--within)\n", *within)
		for _, e := range crls {
			// The CRL's own rule, spelled out: --within does not apply.
			lifetime := 2 * e.NotAfter.Sub(e.Due)
			fmt.Fprintf(&buf, "CRL of %s: next update %s UTC; due from %s UTC, when less than half of its %s lifetime is left (its own rule, not --within)\n",
				e.Subject, e.NotAfter.UTC().Format("2006-01-02 15:04"), e.Due.UTC().Format("2006-01-02 15:04"), left(lifetime))
		}
		tl := certs.NewTimeline(es, w, now)
		if len(tl.Devices) > 0 {
			buf.WriteString("\n")
			if err := tl.WriteDevices(&buf); err != nil {
				return err
			}
		}
		switch *jsonOut {
		case "":
		case "-":
			buf.Reset()
			if err := tl.WriteJSON(&buf); err != nil {
				return err
			}
		default:
			var jb bytes.Buffer
			if err := tl.WriteJSON(&jb); err != nil {
				return err
			}
			if err := atomicfile.Write(*jsonOut, jb.Bytes(), 0o644); err != nil {
				return couldNotRun(c, fmt.Errorf("write %s: %w", *jsonOut, err))
			}
		}
		if _, err := stdout.Write(buf.Bytes()); err != nil {
			return err
		}
		if inside > 0 {
			return failed(c, fmt.Errorf("%d item(s) due (%s): %s: %s", inside, countKinds(due), renewAdvice(due), tl.DueSummary()))
		}
		return nil
	}
	return c
}

// countKinds summarises kinds in order of first appearance: "2 client, 1 crl".
func countKinds(kinds []string) string {
	var order []string
	n := map[string]int{}
	for _, k := range kinds {
		if n[k] == 0 {
			order = append(order, k)
		}
		n[k]++
	}
	parts := make([]string, len(order))
	for i, k := range order {
		parts[i] = fmt.Sprintf("%d %s", n[k], k)
	}
	return strings.Join(parts, ", ")
}

// renewAdvice says how to renew what is due.
func renewAdvice(kinds []string) string {
	var crl, cert bool
	for _, k := range kinds {
		if k == "crl" {
			crl = true
		} else {
			cert = true
		}
	}
	switch {
	case crl && cert:
		return "refresh the CRL with 'mqttstack certs crl' and re-issue the certificates"
	case crl:
		return "refresh the CRL with 'mqttstack certs crl' and reload the broker"
	}
	return "re-issue the certificates"
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

func newCertsExportCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "export [ID]",
		Short: "Export an identity for firmware (pem, der, c-header) or the CA fingerprint",
		Long: `Exports an identity's certificate, key and the CA for a device's firmware
(during a CA rollover: the newest generation's certificate of the id, and
every trusted CA as an anchor):
pem (one file, key included, 0600), der (three files in the --out
directory) or c-header (C arrays). --format fingerprint prints the CA's
SHA-256 fingerprint and needs no ID.`,
		Example: `  mqttstack certs export dev-00001 --format pem --out dev-00001.pem
  mqttstack certs export dev-00001 --format der --out firmware/
  mqttstack certs export dev-00001 --format c-header > certs.h
  mqttstack certs export --format fingerprint`,
		Args: atMostOne("one identity"),
	}
	dir := pkiDirFlag(c, "PKI directory (a sub-CA directory for its clients)")
	format := c.Flags().String("format", "pem", "pem | der | c-header | fingerprint")
	out := c.Flags().String("out", "", "output file (a directory for der); default stdout")
	c.RunE = func(c *cobra.Command, args []string) error {
		stdout := a.stdout
		id := ""
		if len(args) == 1 {
			id = args[0]
		}
		f := certs.Format(*format)
		known := false
		for _, k := range certs.Formats {
			known = known || k == f
		}
		if !known {
			return usageErrorf(c, "--format %q: use pem, der, c-header or fingerprint", *format)
		}
		if id == "" && f != certs.FormatFingerprint {
			return usageErrorf(c, "which identity? (mqttstack certs export ID --format %s)", f)
		}
		if id != "" {
			if err := certs.ValidateID(id); err != nil {
				return badInput(c, err)
			}
		}
		ca, err := openPKI(c, *dir)
		if err != nil {
			return err
		}
		if f == certs.FormatDER {
			if *out == "" {
				return usageErrorf(c, "--format der writes three files: give --out DIR")
			}
			if err := ca.ExportDER(*out, id); err != nil {
				return badInput(c, err)
			}
			fmt.Fprintf(stdout, "wrote %s/%s.crt.der, %s.key.der (0600), ca.der\n", *out, id, id)
			return nil
		}
		var buf bytes.Buffer
		if err := ca.Export(&buf, id, f); err != nil {
			// into memory: what failed is reading the identity or the PKI
			return badInput(c, err)
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
			return couldNotRun(c, fmt.Errorf("write %s: %w", *out, err))
		}
		_, err = fmt.Fprintf(stdout, "wrote %s\n", *out)
		return err
	}
	return c
}

func newCertsNegativeCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "negative",
		Short: "Issue the CI-only negative identities of SECURITY.md (sub-CA, foreign, self-signed)",
		Long: `Issues, under a sub-CA named --name, the identities the security checks
need to prove the broker refuses them: expired, not yet valid, revoked,
serverAuth only, odd CNs, and certificates from a foreign CA and
self-signed ones that borrow a device's id (--impersonate). For CI and test
stacks only.`,
		Example: `  mqttstack certs negative
  mqttstack certs negative --name ci --impersonate dev-00001`,
		Args: noArgs,
	}
	dir := pkiDirFlag(c, "PKI directory (the root)")
	name := c.Flags().String("name", "ci", "name of the CI sub-CA (a directory inside the PKI)")
	imp := c.Flags().String("impersonate", "dev-00001", "device id that the foreign, self-signed and CN-with-slash certificates borrow")
	c.RunE = func(c *cobra.Command, _ []string) error {
		stdout := a.stdout
		if err := certs.ValidateID(*name); err != nil || *name == "clients" {
			return usageErrorf(c, "--name %q: use letters, digits, '-' or '_' (not \"clients\")", *name)
		}
		if err := certs.ValidateID(*imp); err != nil {
			return usageErrorf(c, "--impersonate: %v", err)
		}
		ca, err := openPKI(c, *dir)
		if err != nil {
			return err
		}
		n, err := ca.IssueNegative(*name, *imp)
		if err != nil {
			return couldNotRun(c, err)
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
		_, err = fmt.Fprintf(stdout, "ca.crl now carries the sub-CA's CRL: reload the broker (SIGHUP) before using these\n")
		return err
	}
	return c
}
