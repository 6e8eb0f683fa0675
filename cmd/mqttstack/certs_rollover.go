package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/devices"
	"github.com/mqttstack/mqttstack/infra/local"
	"github.com/mqttstack/mqttstack/target"
)

// deployHint is printed after every step that changed trust files.
const deployHint = "local stack: --reload-local (SIGHUP to mosquitto and nginx) loads them; deployed stack: `mqttstack deploy preview` names exactly these files, `mqttstack deploy up` ships them"

func newCertsCACmd(a *app) *cobra.Command {
	c := newGroupCmd("ca", "CA rollover in named steps: next, promote, retire, status",
		`Moves the fleet from the active CA to a successor without a flag day.

  next      create the successor CA (key stays here), optionally cross-signed;
            the trust files (ca.crt, ca.crl) now hold both CAs and both CRLs
  (issue)   re-issue devices in waves: certs issue --ca next --from N --count K
  promote   the successor becomes the active CA (certs issue uses it); the old
            one stays trusted in <dir>/previous
  (server)  move the server certificate: certs server renew, then switch
  retire    remove the old CA from the trust files; refused while devices hold
            only old certificates (--force overrides)

Each step rewrites only the trust files it names; deploy them.`,
		`  mqttstack certs ca next --cross-sign
  mqttstack certs issue --ca next --from 1 --count 1000
  mqttstack certs ca promote
  mqttstack certs ca retire
  mqttstack certs ca status`)
	c.AddCommand(newCertsCANextCmd(a), newCertsCAPromoteCmd(a), newCertsCARetireCmd(a), newCertsCAStatusCmd(a))
	return c
}

func crlFlag(c *cobra.Command) *string {
	return c.Flags().String("crl-next-update", "30d", "validity of the CRLs the step re-signs (e.g. 30d, 720h)")
}

func parseCRLFlag(c *cobra.Command, v string) (time.Duration, error) {
	d, err := parseDays(v)
	if err != nil || d <= 0 {
		return 0, usageErrorf(c, "--crl-next-update %q: give a duration like 30d or 720h", v)
	}
	return d, nil
}

// reloadFlags are --reload-local and --state-dir of the steps that change
// files the local stack reads.
func reloadFlags(c *cobra.Command) (*bool, *string) {
	return c.Flags().Bool("reload-local", false, "afterwards SIGHUP the local stack's mosquitto and nginx (it must run on this PKI)"),
		c.Flags().String("state-dir", local.DefaultStateDir, "the local stack's state directory (for --reload-local)")
}

// reloadLocal makes the local stack in stateDir re-read its trust files
// and server certificate: Mosquitto 2.0.11 reloads cafile, crlfile and
// certfile on SIGHUP, nginx its whole configuration. When a step locked
// identities out (dropped), the stack's password files are first rewritten
// without them, which reloads mosquitto (once).
func reloadLocal(c *cobra.Command, w io.Writer, stateDir, pkiDir string, dropped []string) error {
	t, err := target.Load(local.TargetPath(stateDir))
	if err != nil {
		return badInput(c, fmt.Errorf("--reload-local: no local stack in %s: %w (start it with `mqttstack local up`)", stateDir, err))
	}
	want, _ := filepath.Abs(pkiDir)
	if got, _ := filepath.Abs(t.PKIDir); got != want {
		return badInput(c, fmt.Errorf("--reload-local: the local stack in %s runs on the PKI %s, not %s", stateDir, t.PKIDir, pkiDir))
	}
	reload := []local.Daemon{local.Mosquitto, local.Nginx}
	if len(dropped) > 0 {
		if err := local.RefreshPasswords(c.Context(), stateDir); err != nil {
			return couldNotRun(c, fmt.Errorf("--reload-local: password files: %w", err))
		}
		fmt.Fprintf(w, "local stack in %s: password files rewritten without %s (mosquitto reloaded)\n", stateDir, strings.Join(dropped, " "))
		reload = reload[1:]
	}
	for _, d := range reload {
		if err := local.Reload(c.Context(), stateDir, d); err != nil {
			return couldNotRun(c, fmt.Errorf("--reload-local: %w", err))
		}
	}
	_, err = fmt.Fprintf(w, "local stack in %s reloaded (mosquitto, nginx)\n", stateDir)
	return err
}

// printDropped says that the passwords of ids (locked out by a revocation
// or a forced retire) leave the broker's password files, and how to load
// that.
func printDropped(w io.Writer, ids []string) {
	if len(ids) == 0 {
		return
	}
	verb := "leave"
	if len(ids) == 1 {
		verb = "leaves"
	}
	fmt.Fprintf(w, "password files: %s %s the broker's password files; local stack: --reload-local (or `mqttstack local passwords`) rewrites them; deployed stack: `mqttstack deploy preview` names them, `mqttstack deploy up` ships them\n", strings.Join(ids, " "), verb)
}

func printChanged(w io.Writer, changed []string) {
	if len(changed) == 0 {
		fmt.Fprintln(w, "trust files: unchanged (nothing to deploy)")
		return
	}
	fmt.Fprintf(w, "trust files changed: %s\n%s\n", strings.Join(changed, ", "), deployHint)
}

func newCertsCANextCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "next",
		Short: "Create the successor CA and trust both (overlap begins)",
		Long: `Creates the successor CA in <dir>/next (its key stays on this machine,
0600) and rewrites <dir>/ca.crt (both CAs) and <dir>/ca.crl (both CRLs,
fresh). Mosquitto's cafile and crlfile and nginx's ssl_client_certificate
and ssl_crl are these files.

--cross-sign also certifies the successor's key with the active CA
(<dir>/next/ca-cross.crt). It helps devices that still trust only the old
CA verify a server certificate issued by the successor: the server
presents leaf + cross certificate. It does not help client authentication
(the broker trusts both CAs directly), boards that pin the server's leaf
fingerprint or public key (they never look at the chain), or anything
after the old CA expires (the cross certificate cannot outlive it).`,
		Example: `  mqttstack certs ca next
  mqttstack certs ca next --cross-sign --reload-local      # the local stack trusts both at once
  mqttstack certs ca next --cross-sign --validity 3650d`,
		Args: noArgs,
	}
	dir := pkiDirFlag(c, "PKI directory")
	cross := c.Flags().Bool("cross-sign", false, "also certify the successor with the active CA (ca-cross.crt)")
	reload, state := reloadFlags(c)
	validity := c.Flags().String("validity", "3650d", "validity of the successor CA")
	crl := crlFlag(c)
	c.RunE = func(c *cobra.Command, _ []string) error {
		v, err := parseDays(*validity)
		if err != nil || v <= 0 {
			return usageErrorf(c, "--validity %q: give a duration like 3650d", *validity)
		}
		cn, err := parseCRLFlag(c, *crl)
		if err != nil {
			return err
		}
		ca, err := openPKI(c, *dir)
		if err != nil {
			return err
		}
		res, err := ca.Next(certs.NextOptions{CrossSign: *cross, Validity: v, CRLNextUpdate: cn})
		if err != nil {
			return badInput(c, err)
		}
		w := a.stdout
		fmt.Fprintf(w, "successor CA %s %q valid until %s in %s/next (key 0600, stays here)\n",
			certs.GenerationName(res.CA), res.CA.Subject.CommonName, res.CA.NotAfter.UTC().Format("2006-01-02"), *dir)
		if res.Cross != nil {
			fmt.Fprintf(w, "cross certificate: %s's key certified by %q until %s\n", certs.GenerationName(res.CA), res.Cross.Issuer.CommonName, res.Cross.NotAfter.UTC().Format("2006-01-02"))
		}
		printChanged(w, res.Changed)
		fmt.Fprintf(w, "next: re-issue devices in waves: mqttstack certs issue --dir %s --ca next --from 1 --count 1000\n", *dir)
		if *reload {
			return reloadLocal(c, w, *state, *dir, nil)
		}
		return nil
	}
	return c
}

func newCertsCAPromoteCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "promote",
		Short: "Make the successor the active CA (the old one stays trusted)",
		Long: `The successor CA becomes the active CA in <dir>: certs issue, revoke and
export use it by default. The old CA moves to <dir>/previous and stays in
the trust files; devices not yet re-issued keep connecting. Observer and
backend identities are re-issued under the new CA with their passwords.
The server certificate is not touched: move it with certs server renew
and certs server switch before retiring the old CA.`,
		Example: `  mqttstack certs ca promote`,
		Args:    noArgs,
	}
	dir := pkiDirFlag(c, "PKI directory")
	crl := crlFlag(c)
	reload, state := reloadFlags(c)
	c.RunE = func(c *cobra.Command, _ []string) error {
		cn, err := parseCRLFlag(c, *crl)
		if err != nil {
			return err
		}
		ca, err := openPKI(c, *dir)
		if err != nil {
			return err
		}
		old := ca.Cert
		res, err := ca.Promote(cn)
		if err != nil {
			if res.CA != nil {
				return couldNotRun(c, err)
			}
			return badInput(c, err)
		}
		w := a.stdout
		fmt.Fprintf(w, "%s %q is the active CA; %s %q stays trusted in %s/previous\n",
			certs.GenerationName(res.CA), res.CA.Subject.CommonName, certs.GenerationName(old), old.Subject.CommonName, *dir)
		fmt.Fprintf(w, "re-issued under %s with their passwords: %s\n", certs.GenerationName(res.CA), strings.Join(res.Reissued, " "))
		printChanged(w, res.Changed)
		fmt.Fprintf(w, "next: mqttstack certs server renew --dir %s (stage the server certificate under %s), then certs ca retire\n", *dir, certs.GenerationName(res.CA))
		if *reload {
			return reloadLocal(c, w, *state, *dir, nil)
		}
		return nil
	}
	return c
}

func newCertsCARetireCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "retire",
		Short: "Remove the old CA from the trust files (overlap ends)",
		Long: `Removes the previous CA and its CRL from <dir>/ca.crt and <dir>/ca.crl and
moves it to <dir>/retired (key included, for audit). Refused while
identities hold only a certificate of the old CA (it names how many and
which; revoked ones do not count) and while the server certificate is
still issued by it. --force locks those identities out, and their passwords
leave the broker's password files: --reload-local then rewrites the local
stack's password files as well as reloading both daemons.`,
		Example: `  mqttstack certs ca retire
  mqttstack certs ca retire --force`,
		Args: noArgs,
	}
	dir := pkiDirFlag(c, "PKI directory")
	force := c.Flags().Bool("force", false, "retire even though identities hold only old certificates")
	crl := crlFlag(c)
	reload, state := reloadFlags(c)
	c.RunE = func(c *cobra.Command, _ []string) error {
		cn, err := parseCRLFlag(c, *crl)
		if err != nil {
			return err
		}
		ca, err := openPKI(c, *dir)
		if err != nil {
			return err
		}
		res, err := ca.Retire(*force, cn)
		var old *certs.OldOnlyError
		if errors.As(err, &old) {
			return failed(c, err)
		}
		if err != nil {
			return badInput(c, err)
		}
		w := a.stdout
		fmt.Fprintf(w, "retired %s %q (archived in %s)\n", certs.GenerationName(res.CA), res.CA.Subject.CommonName, res.Archive)
		if len(res.OldOnly) > 0 {
			fmt.Fprintf(w, "--force: %d identities locked out: %s\n", len(res.OldOnly), strings.Join(res.OldOnly, " "))
		}
		printChanged(w, res.Changed)
		printDropped(w, res.Dropped)
		if *reload {
			return reloadLocal(c, w, *state, *dir, res.Dropped)
		}
		return nil
	}
	return c
}

func newCertsCAStatusCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:     "status",
		Short:   "Where the PKI is in a CA rollover",
		Example: `  mqttstack certs ca status`,
		Args:    noArgs,
	}
	dir := pkiDirFlag(c, "PKI directory")
	c.RunE = func(c *cobra.Command, _ []string) error {
		ca, err := openPKI(c, *dir)
		if err != nil {
			return err
		}
		st, err := ca.Status()
		if err != nil {
			return badInput(c, err)
		}
		w := a.stdout
		fmt.Fprintf(w, "active    %s %q until %s\n", certs.GenerationName(st.Active), st.Active.Subject.CommonName, st.Active.NotAfter.UTC().Format("2006-01-02"))
		if st.Next != nil {
			fmt.Fprintf(w, "next      %s %q until %s\n", certs.GenerationName(st.Next), st.Next.Subject.CommonName, st.Next.NotAfter.UTC().Format("2006-01-02"))
		}
		if st.Previous != nil {
			fmt.Fprintf(w, "previous  %s %q until %s (still trusted)\n", certs.GenerationName(st.Previous), st.Previous.Subject.CommonName, st.Previous.NotAfter.UTC().Format("2006-01-02"))
		}
		if st.Cross != nil {
			fmt.Fprintf(w, "cross     %q certified by %q until %s\n", st.Cross.Subject.CommonName, st.Cross.Issuer.CommonName, st.Cross.NotAfter.UTC().Format("2006-01-02"))
		}
		if st.Next != nil || st.Previous != nil {
			fmt.Fprintf(w, "identities re-issued under the newer CA: %d, still only on the older: %d\n", st.Reissued, st.Pending)
		}
		fmt.Fprintf(w, "rollover: %s\n", st.Step)
		return nil
	}
	return c
}

func newCertsServerCmd(a *app) *cobra.Command {
	c := newGroupCmd("server", "Server certificate renewal: renew (stage + pin report), switch, pins",
		`Renews the broker's server certificate in two steps, so firmware can carry
the new pins before the broker presents the new certificate: renew stages
it in <dir>/server-next and reports, per pinning method and board
profile, who keeps connecting; switch puts it in place.`,
		`  mqttstack certs server renew                # keep the key: setKnownKey pins survive
  mqttstack certs server renew --new-key
  mqttstack certs server pins                 # current and staged pins, for firmware
  mqttstack certs server switch`)
	c.AddCommand(newCertsServerRenewCmd(a), newCertsServerSwitchCmd(a), newCertsServerPinsCmd(a))
	return c
}

// pinProfiles maps the devices package's board profiles to what the pin
// report needs; boards without a profile there use certs.PinProfiles.
func pinProfiles() []certs.DeviceProfile {
	var out []certs.DeviceProfile
	for _, p := range devices.Profiles() {
		if p.Expect != "works" || p.Native {
			continue // boards that never reach the broker have no pins to keep
		}
		dp := certs.DeviceProfile{Name: p.Name, Stack: p.Stack, ChecksDate: p.Clock == devices.ClockChecks, P256Only: p.Verify == devices.VerifyP256Only, MaxChain: p.HandshakeIn}
		if strings.HasPrefix(p.Name, "esp8266") {
			// BearSSL WiFiClientSecure: setFingerprint, setKnownKey, anchors
			dp.Methods = append(dp.Methods, certs.PinFingerprint, certs.PinPublicKey)
		}
		if p.Verify == devices.VerifyOptional {
			dp.Methods = append(dp.Methods, certs.PinNone)
		} else {
			dp.Methods = append(dp.Methods, certs.PinCAAnchor)
		}
		out = append(out, dp)
	}
	if len(out) == 0 {
		return certs.PinProfiles
	}
	return out
}

func newCertsServerRenewCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "renew",
		Short: "Stage a new server certificate and report which boards keep connecting",
		Long: `Issues a new server certificate with the current one's names into
<dir>/server-next (the broker still presents the old one), keeping the key
unless --new-key, signed by the active CA (or --ca next). During a
rollover a cross certificate follows the leaf, so devices that trust only
the old CA still verify it. Prints the new pins and, per board profile and
pinning method, whether the board verifies the server after the switch:
flash the new pins before running certs server switch.`,
		Example: `  mqttstack certs server renew
  mqttstack certs server renew --new-key --validity 825d`,
		Args: noArgs,
	}
	dir := pkiDirFlag(c, "PKI directory")
	newKey := c.Flags().Bool("new-key", false, "generate a new server key (public-key pins break)")
	caName := c.Flags().String("ca", "", "CA generation that signs: current (default), next, or G<n>")
	validity := c.Flags().String("validity", "825d", "validity of the new certificate")
	c.RunE = func(c *cobra.Command, _ []string) error {
		v, err := parseDays(*validity)
		if err != nil || v <= 0 {
			return usageErrorf(c, "--validity %q: give a duration like 825d", *validity)
		}
		ca, err := openPKI(c, *dir)
		if err != nil {
			return err
		}
		r, err := ca.RenewServer(certs.RenewOptions{NewKey: *newKey, CA: *caName, Validity: v, Profiles: pinProfiles()})
		if err != nil {
			return badInput(c, err)
		}
		w := a.stdout
		key := "kept"
		if !r.KeptKey {
			key = "NEW"
		}
		fmt.Fprintf(w, "staged %s: %q issued by %q until %s, key %s, chain of %d\n", r.Staged, r.New.Subject.CommonName, r.New.Issuer.CommonName, r.New.NotAfter.UTC().Format("2006-01-02"), key, len(r.Chain))
		writePins(w, "current", r.OldPins)
		writePins(w, "staged ", r.NewPins)
		writePinReport(w, r.Report)
		fmt.Fprintf(w, "next: flash the staged pins next to the current ones, then mqttstack certs server switch --dir %s\n", *dir)
		return nil
	}
	return c
}

func writePins(w io.Writer, label string, p certs.Pins) {
	fmt.Fprintf(w, "%s  setFingerprint (leaf SHA-1) %s\n", label, p.LeafSHA1)
	fmt.Fprintf(w, "%s  leaf SHA-256                %s\n", label, p.LeafSHA256)
	fmt.Fprintf(w, "%s  public key SHA-256 (SPKI)   %s\n", label, p.SPKISHA256)
}

func writePinReport(w io.Writer, rs []certs.PinVerdict) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BOARD\tPINNING\tANCHORS\tNOW\tAFTER SWITCH\tWHY")
	yes := func(b bool) string {
		if b {
			return "connects"
		}
		return "BREAKS"
	}
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Profile, r.Method, r.Anchors, yes(r.Before), yes(r.After), r.Why)
	}
	tw.Flush()
}

func newCertsServerSwitchCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "switch",
		Short: "Put the staged server certificate in place",
		Example: `  mqttstack certs server switch
  mqttstack certs server switch --reload-local`,
		Args: noArgs,
	}
	dir := pkiDirFlag(c, "PKI directory")
	reload, state := reloadFlags(c)
	c.RunE = func(c *cobra.Command, _ []string) error {
		ca, err := openPKI(c, *dir)
		if err != nil {
			return err
		}
		changed, err := ca.SwitchServer()
		if err != nil {
			return badInput(c, err)
		}
		fmt.Fprintf(a.stdout, "server files changed: %s\nreload mosquitto and nginx (local: --reload-local; deployed: mqttstack deploy preview, then deploy up)\n", strings.Join(changed, ", "))
		if *reload {
			return reloadLocal(c, a.stdout, *state, *dir, nil)
		}
		return nil
	}
	return c
}

func newCertsServerPinsCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "pins",
		Short: "Print the server's pins (current and staged) for firmware",
		Example: `  mqttstack certs server pins
  mqttstack certs server pins --format c-header > server_pins.h`,
		Args: noArgs,
	}
	dir := pkiDirFlag(c, "PKI directory")
	format := c.Flags().String("format", "text", "text | c-header (uint8_t SHA-1 arrays for setFingerprint, PEM strings for setKnownKey)")
	c.RunE = func(c *cobra.Command, _ []string) error {
		if *format != "text" && *format != "c-header" {
			return usageErrorf(c, "--format %q: use text or c-header", *format)
		}
		ca, err := openPKI(c, *dir)
		if err != nil {
			return err
		}
		cur, staged, err := ca.ServerPins()
		if err != nil {
			return badInput(c, err)
		}
		if *format == "c-header" {
			return certs.WritePinsCHeader(a.stdout, cur, staged)
		}
		writePins(a.stdout, "current", cur)
		fmt.Fprintf(a.stdout, "current  setKnownKey public key:\n%s", cur.PublicKeyPEM)
		if staged != nil {
			writePins(a.stdout, "staged ", *staged)
			fmt.Fprintf(a.stdout, "staged   setKnownKey public key:\n%s", staged.PublicKeyPEM)
		}
		return nil
	}
	return c
}
