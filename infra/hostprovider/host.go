package hostprovider

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The host-side steps: one small bash script each, sent as `bash -c SCRIPT`
// over SSH; data (file content, path lists) travels on stdin, never on a
// command line.
//
//go:embed scripts/*.sh
var scripts embed.FS

// Runner runs one command on the host (*sshconn.Client is one).
type Runner interface {
	Run(ctx context.Context, cmd string, stdin io.Reader) (stdout, stderr []byte, err error)
}

// Daemon kinds a file can belong to (the same strings as infra/hostres).
const (
	kindMosquitto = "mosquitto"
	kindNginx     = "nginx"
	kindNftables  = "nftables"
	kindSystemd   = "systemd"
)

var knownKinds = []string{kindMosquitto, kindNginx, kindNftables, kindSystemd}

// FileSpec is one file as it must be on the host.
type FileSpec struct {
	Path    string
	Content []byte
	Mode    string // four octal digits, "0644"
	Owner   string // user:group
	Daemons []string
	Secret  bool
	// Seed: create only. Written when absent on the host; a file that
	// exists is never compared, overwritten or rolled back (its owner after
	// the first write, e.g. certbot's deploy hook, may replace it).
	Seed bool
}

// Sum is the file's content hash (hex SHA-256).
func (f FileSpec) Sum() string {
	s := sha256.Sum256(f.Content)
	return hex.EncodeToString(s[:])
}

// DirSpec is a directory that must exist.
type DirSpec struct {
	Path  string
	Mode  string
	Owner string
}

// Plan is everything one apply puts on a host.
type Plan struct {
	Files           []FileSpec // sorted by path
	Dirs            []DirSpec
	Packages        []string
	MosquittoConfig string
	NginxConfig     string
	Sudo            bool // the SSH user is not root: run the steps through sudo -n
	// Acme, if set, runs certbot once after a successful apply while the
	// live certificate is absent (see AcmeSpec).
	Acme *AcmeSpec
	// AcmeInstall: if the live certificate already exists (issued by hand,
	// or before the host came under this resource), run the deploy hook
	// once so the daemons use it. Set while the last apply did not see the
	// certificate issued.
	AcmeInstall bool
}

// AcmeSpec is a Let's Encrypt certificate obtained with certbot's webroot
// plugin: `certbot certonly --webroot -w Webroot -d Domain --email Email
// --agree-tos --non-interactive --deploy-hook DeployHook`, run only while
// /etc/letsencrypt/live/Domain/fullchain.pem is absent. Renewals are
// certbot's own (its timer), with the same deploy hook.
type AcmeSpec struct {
	Domain     string
	Email      string
	Webroot    string
	DeployHook string // "" means none
}

// acmeLive is where certbot keeps the current certificate of domain.
func acmeLive(domain string) string { return "/etc/letsencrypt/live/" + domain + "/fullchain.pem" }

// AcmeTimeout bounds one certbot run (it talks to Let's Encrypt, which
// then fetches the challenge from the host).
const AcmeTimeout = 5 * time.Minute

// FileState is what the host holds at one path.
type FileState struct {
	Sha256  string
	Mode    string
	Owner   string
	Missing bool
}

// Observed is the host as the probe saw it.
type Observed struct {
	Files            map[string]FileState
	MosquittoVersion string
	NginxVersion     string
	// Set by Apply: the paths it wrote and the service actions it ran.
	Changed []string
	Actions []string
	// Acme is what the acme step did: "issued" (certbot ran), "installed"
	// (an existing live certificate, handed to the deploy hook), "present"
	// (it exists; nothing to do). AcmeErr: it failed (certbot's own
	// message); the configuration itself is applied all the same.
	Acme    string
	AcmeErr error
}

// host runs the scripts over a Runner.
type host struct {
	r    Runner
	sudo bool
	log  func(string) // progress lines for the engine (never content)
}

func (h *host) run(ctx context.Context, step string, args []string, stdin io.Reader) ([]byte, error) {
	body, err := scripts.ReadFile("scripts/" + step + ".sh")
	if err != nil {
		return nil, fmt.Errorf("internal: no script %s: %w", step, err)
	}
	var cmd strings.Builder
	if h.sudo {
		cmd.WriteString("sudo -n ")
	}
	cmd.WriteString("bash -c ")
	cmd.WriteString(shellQuote(string(body)))
	cmd.WriteString(" mqttstack-" + step)
	for _, a := range args {
		cmd.WriteString(" " + shellQuote(a))
	}
	out, stderr, err := h.r.Run(ctx, cmd.String(), stdin)
	if err != nil {
		msg := strings.TrimSpace(string(stderr))
		if msg == "" {
			return out, fmt.Errorf("%s: %w", step, err)
		}
		return out, fmt.Errorf("%s: %s", step, msg)
	}
	return out, nil
}

// probe reads the state of paths and the daemons' versions.
func (h *host) probe(ctx context.Context, paths []string) (Observed, error) {
	out, err := h.run(ctx, "probe", nil, strings.NewReader(strings.Join(paths, "\n")+"\n"))
	if err != nil {
		return Observed{}, err
	}
	return parseProbe(out)
}

func parseProbe(out []byte) (Observed, error) {
	o := Observed{Files: map[string]FileState{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 5 && f[0] == "F":
			o.Files[f[4]] = FileState{Sha256: f[1], Mode: normMode(f[2]), Owner: f[3]}
		case len(f) == 2 && f[0] == "M":
			o.Files[f[1]] = FileState{Missing: true}
		case len(f) == 3 && f[0] == "V" && f[1] == kindMosquitto:
			o.MosquittoVersion = f[2]
		case len(f) == 3 && f[0] == "V" && f[1] == kindNginx:
			o.NginxVersion = f[2]
		default:
			return o, fmt.Errorf("probe: unexpected line %q", sc.Text())
		}
	}
	return o, sc.Err()
}

// normMode turns stat's "640" into "0640".
func normMode(m string) string {
	v, err := strconv.ParseUint(m, 8, 32)
	if err != nil {
		return m
	}
	return fmt.Sprintf("%04o", v)
}

// matches says whether the host already holds f exactly.
func (s FileState) matches(f FileSpec) bool {
	return !s.Missing && s.Sha256 == f.Sum() && s.Mode == f.Mode && s.Owner == f.Owner
}

// ApplyError is an apply that failed. RolledBack says the host is back on
// its previous files (nothing changed, or everything restored).
type ApplyError struct {
	Step       string // "validate mosquitto", "restart mosquitto", ...
	Msg        string // the daemon's own message
	RolledBack bool
	Restore    error // a failure while restoring, if any
}

func (e *ApplyError) Error() string {
	s := e.Step + ": " + e.Msg
	switch {
	case e.Restore != nil:
		s += fmt.Sprintf("; restoring the previous files also failed: %v", e.Restore)
	case e.RolledBack && e.Step == "activate":
		s += "; the previous files were restored and the daemons brought back on them"
	case e.RolledBack:
		s += "; nothing was changed on the host: it keeps serving its previous files"
	}
	return s
}

// Apply puts plan on the host: packages, directories, then only the files
// that differ, validated before any reload; only daemons whose files changed
// are reloaded or restarted. On a failure after the first rename the
// previous files are restored and the daemons brought back on them.
func Apply(ctx context.Context, r Runner, plan Plan, log func(string)) (Observed, error) {
	if log == nil {
		log = func(string) {}
	}
	h := &host{r: r, sudo: plan.Sudo, log: log}
	if len(plan.Packages) > 0 {
		out, err := h.run(ctx, "packages", plan.Packages, nil)
		if err != nil {
			return Observed{}, fmt.Errorf("install packages: %w", err)
		}
		if s := strings.TrimSpace(string(out)); s != "" {
			log("installed " + s)
		}
	}
	if len(plan.Dirs) > 0 {
		var b strings.Builder
		for _, d := range plan.Dirs {
			fmt.Fprintf(&b, "%s %s %s\n", d.Mode, d.Owner, d.Path)
		}
		if _, err := h.run(ctx, "dirs", nil, strings.NewReader(b.String())); err != nil {
			return Observed{}, fmt.Errorf("directories: %w", err)
		}
	}
	paths := make([]string, len(plan.Files))
	for i, f := range plan.Files {
		paths[i] = f.Path
	}
	before, err := h.probe(ctx, paths)
	if err != nil {
		return Observed{}, err
	}
	var changed []FileSpec
	for _, f := range plan.Files {
		if f.Seed && !before.Files[f.Path].Missing {
			continue // create only: it exists, it is its owner's
		}
		if !before.Files[f.Path].matches(f) {
			changed = append(changed, f)
		}
	}
	acts := actions(plan, changed)
	if len(changed) > 0 {
		if err := h.change(ctx, plan, changed, acts); err != nil {
			return Observed{}, err
		}
	} else if len(acts) > 0 {
		// Nothing to write: make sure the daemons run (a no-op if they do).
		if _, err := h.run(ctx, "actions", acts, nil); err != nil {
			return Observed{}, &ApplyError{Step: "start services", Msg: errMsg(err)}
		}
	}
	after, err := h.probe(ctx, paths)
	for _, f := range changed {
		after.Changed = append(after.Changed, f.Path)
	}
	for _, a := range acts {
		if !strings.HasPrefix(a, "conf:") {
			after.Actions = append(after.Actions, a)
		}
	}
	if err != nil || plan.Acme == nil {
		return after, err
	}
	after.Acme, after.AcmeErr = h.acme(ctx, *plan.Acme, plan.AcmeInstall)
	return after, nil
}

// acme runs certbot once if the live certificate is absent. The files are
// applied and nginx runs, so the webroot is served for the http-01
// challenge. Its failure (DNS not pointing here yet, a rate limit) is
// returned with certbot's own message and left for the next apply.
func (h *host) acme(ctx context.Context, a AcmeSpec, install bool) (string, error) {
	present, err := h.acmePresent(ctx, a.Domain)
	if err != nil {
		return "", err
	}
	verb := "issue"
	switch {
	case present && (!install || a.DeployHook == ""):
		return "present", nil
	case present:
		verb = "install"
		h.log("certbot: the certificate for " + a.Domain + " exists; running the deploy hook")
	default:
		h.log("certbot: requesting a Let's Encrypt certificate for " + a.Domain)
	}
	ctx, cancel := context.WithTimeout(ctx, AcmeTimeout)
	defer cancel()
	out, err := h.run(ctx, "acme", []string{verb, a.Domain, a.Email, a.Webroot, a.DeployHook}, nil)
	if err != nil {
		// one line: the engine's progress shows a warning's first line only
		return "", errors.New(oneLine(strings.TrimPrefix(err.Error(), "acme: ")))
	}
	return strings.TrimSpace(string(out)), nil
}

// oneLine joins a multi-line message's non-empty lines with "; ".
func oneLine(msg string) string {
	var parts []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

// acmePresent says whether certbot's live certificate for domain exists.
func (h *host) acmePresent(ctx context.Context, domain string) (bool, error) {
	out, err := h.run(ctx, "acme", []string{"check", domain}, nil)
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(out)) == "present", nil
}

// change stages, validates, commits and activates the changed files.
func (h *host) change(ctx context.Context, plan Plan, changed []FileSpec, acts []string) error {
	list := pathList(changed)
	cleanup := func() { _, _ = h.run(context.WithoutCancel(ctx), "finish", nil, strings.NewReader(list)) }
	// A rollback restores managed files only; a seed file written by this
	// apply stays (create only), its markers are dropped.
	var managed, seeds []FileSpec
	for _, f := range changed {
		if f.Seed {
			seeds = append(seeds, f)
		} else {
			managed = append(managed, f)
		}
	}
	for _, f := range changed {
		h.log("staging " + f.Path)
		if _, err := h.run(ctx, "stage", []string{f.Path, f.Mode, f.Owner, f.Sum()}, bytes.NewReader(f.Content)); err != nil {
			cleanup()
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
	}
	if err := h.validate(ctx, plan, changed); err != nil {
		cleanup()
		return err
	}
	rollback := func(step string, cause error) error {
		e := &ApplyError{Step: step, Msg: errMsg(cause)}
		rctx := context.WithoutCancel(ctx)
		if len(seeds) > 0 {
			_, _ = h.run(rctx, "finish", nil, strings.NewReader(pathList(seeds)))
		}
		if _, err := h.run(rctx, "rollback", nil, strings.NewReader(pathList(managed))); err != nil {
			e.Restore = err
			return e
		}
		// Bring the daemons back on the previous files: restart what was
		// touched (a reload might not undo a half-applied restart).
		if back := restoreActions(acts); len(back) > 0 {
			if _, err := h.run(rctx, "actions", back, nil); err != nil {
				e.Restore = err
				return e
			}
		}
		e.RolledBack = true
		return e
	}
	if _, err := h.run(ctx, "commit", nil, strings.NewReader(list)); err != nil {
		return rollback("replace files", err)
	}
	h.log("activating: " + strings.Join(acts, " "))
	if _, err := h.run(ctx, "actions", acts, nil); err != nil {
		return rollback("activate", err)
	}
	cleanup()
	return nil
}

// validate checks the candidate configuration with the daemons' own parsers
// before anything is renamed into place.
func (h *host) validate(ctx context.Context, plan Plan, changed []FileSpec) error {
	staged := map[string]string{}
	kinds := map[string]bool{}
	byPath := map[string]FileSpec{}
	for _, f := range changed {
		staged[f.Path] = stagedPath(f.Path)
		byPath[f.Path] = f
		for _, k := range f.Daemons {
			kinds[k] = true
		}
	}
	current := func(p string) ([]byte, error) {
		if f, ok := byPath[p]; ok {
			return f.Content, nil
		}
		for _, f := range plan.Files {
			if f.Path == p {
				return f.Content, nil
			}
		}
		return h.cat(ctx, p)
	}
	fail := func(step string, err error) error {
		msg := errMsg(err)
		for real, st := range staged {
			msg = strings.ReplaceAll(msg, st, real+" (new)")
		}
		return &ApplyError{Step: step, Msg: msg, RolledBack: true}
	}
	if kinds[kindMosquitto] {
		conf, err := current(plan.MosquittoConfig)
		if err != nil {
			return &ApplyError{Step: "validate mosquitto", Msg: errMsg(err), RolledBack: true}
		}
		h.log("validating mosquitto (throwaway broker on loopback)")
		if _, err := h.run(ctx, "check-mosquitto", nil, bytes.NewReader(MosquittoCandidate(conf, staged))); err != nil {
			return fail("validate mosquitto", err)
		}
	}
	if kinds[kindNginx] {
		conf, err := current(plan.NginxConfig)
		if err != nil {
			return &ApplyError{Step: "validate nginx", Msg: errMsg(err), RolledBack: true}
		}
		h.log("validating nginx (nginx -t)")
		if _, err := h.run(ctx, "check-nginx", []string{plan.NginxConfig}, bytes.NewReader(ReplacePaths(conf, staged))); err != nil {
			return fail("validate nginx", err)
		}
	}
	for _, f := range changed {
		if slices.Contains(f.Daemons, kindNftables) {
			if _, err := h.run(ctx, "check-nft", []string{stagedPath(f.Path)}, nil); err != nil {
				return fail("validate nftables "+f.Path, err)
			}
		}
	}
	return nil
}

func (h *host) cat(ctx context.Context, p string) ([]byte, error) {
	cmd := "cat -- " + shellQuote(p)
	if h.sudo {
		cmd = "sudo -n " + cmd
	}
	out, _, err := h.r.Run(ctx, cmd, nil)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return out, nil
}

// errMsg is the message of a step error without the step prefix noise.
func errMsg(err error) string {
	var ae *ApplyError
	if errors.As(err, &ae) {
		return ae.Msg
	}
	return err.Error()
}

func stagedPath(p string) string { return path.Join(path.Dir(p), ".mqttstack-new."+path.Base(p)) }

func pathList(files []FileSpec) string {
	var b strings.Builder
	for _, f := range files {
		b.WriteString(f.Path + "\n")
	}
	return b.String()
}

// actions decides what activates the changed files, in order: systemd
// drop-ins (daemon-reload + restart of their unit), nftables (nft -f), then
// Mosquitto and nginx. Mosquitto re-reads only some settings on SIGHUP
// (mosquitto.conf(5): acl_file, password_file, psk_file are "reloaded on
// reload signal"; listeners, certificates and the CRL are not): a change
// that touches only those files is a reload, anything else a restart.
// nginx re-reads everything on reload. Every daemon the plan has files for
// is enabled and started (a no-op when it runs).
func actions(plan Plan, changed []FileSpec) []string {
	var acts []string
	restart := map[string]bool{}
	reload := map[string]bool{}
	var nft []string
	daemonReload := false
	for _, f := range changed {
		for _, k := range f.Daemons {
			switch k {
			case kindSystemd:
				daemonReload = true
				if u := dropinUnit(f.Path); u != "" {
					restart[u] = true
				}
			case kindNftables:
				nft = append(nft, f.Path)
			case kindNginx:
				reload[kindNginx] = true
			case kindMosquitto:
				if reloadable(plan, f.Path) {
					reload[kindMosquitto] = true
				} else {
					restart[kindMosquitto] = true
				}
			}
		}
	}
	acts = append(acts, "conf:"+plan.MosquittoConfig)
	if daemonReload {
		acts = append(acts, "daemon-reload")
	}
	for _, p := range nft {
		acts = append(acts, "nft:"+p)
	}
	if len(nft) > 0 {
		acts = append(acts, "enable:nftables")
	}
	units := map[string]bool{}
	for _, f := range plan.Files {
		for _, k := range f.Daemons {
			if k == kindMosquitto || k == kindNginx {
				units[k] = true
			}
		}
	}
	for u := range restart {
		units[u] = true
	}
	names := make([]string, 0, len(units))
	for u := range units {
		names = append(names, u)
	}
	// mosquitto before nginx (nginx proxies to it); others by name
	sort.Slice(names, func(i, j int) bool {
		oi, oj := unitOrder(names[i]), unitOrder(names[j])
		if oi != oj {
			return oi < oj
		}
		return names[i] < names[j]
	})
	for _, u := range names {
		acts = append(acts, "enable:"+u)
		switch {
		case restart[u]:
			acts = append(acts, "restart:"+u)
		case reload[u]:
			acts = append(acts, "reload-or-restart:"+u)
		default:
			acts = append(acts, "start:"+u)
		}
	}
	return acts
}

func unitOrder(u string) int {
	switch u {
	case kindMosquitto:
		return 0
	case kindNginx:
		return 1
	}
	return 2
}

// restoreActions re-activates the previous files after a rollback: the same
// steps, with restarts in place of reloads for Mosquitto (whose reload does
// not re-read everything).
func restoreActions(acts []string) []string {
	var out []string
	for _, a := range acts {
		if a == "reload-or-restart:"+kindMosquitto {
			a = "restart:" + kindMosquitto
		}
		out = append(out, a)
	}
	return out
}

// dropinUnit is UNIT for /etc/systemd/system/UNIT.service.d/NAME.conf.
func dropinUnit(p string) string {
	dir := path.Dir(p)
	if path.Dir(dir) != "/etc/systemd/system" || !strings.HasSuffix(dir, ".service.d") {
		return ""
	}
	return strings.TrimSuffix(path.Base(dir), ".service.d")
}

// reloadable says whether Mosquitto re-reads p on SIGHUP: p is named by an
// acl_file, password_file or psk_file line of the new mosquitto.conf.
func reloadable(plan Plan, p string) bool {
	if p == plan.MosquittoConfig {
		return false
	}
	for _, f := range plan.Files {
		if f.Path != plan.MosquittoConfig {
			continue
		}
		for _, line := range strings.Split(string(f.Content), "\n") {
			fs := strings.Fields(line)
			if len(fs) == 2 && fs[1] == p && (fs[0] == "acl_file" || fs[0] == "password_file" || fs[0] == "psk_file") {
				return true
			}
		}
	}
	return false
}

func shellQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
