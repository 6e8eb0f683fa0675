// Package hostprovider implements mqttstack's Pulumi resource provider: one
// resource, mqttstack:index:HostConfig, that puts rendered host files on a
// Debian host over SSH (internal/sshconn, pinned host key).
//
// Lifecycle:
//   - Check reports every bad input at once.
//   - Diff compares the desired files with what the host held at the last
//     apply or refresh, per path: a preview names each file that changes
//     (files["/etc/mosquitto/acl"]) and never shows secret content. Only a
//     different host (connection.host, serverId) replaces.
//   - Create/Update write only differing files, each staged next to its
//     target and renamed into place, validate Mosquitto and nginx on the
//     candidate before anything is renamed, reload or restart only the
//     daemons whose files changed, and restore the previous files on failure.
//   - Read (refresh) hashes the files on the host: a hand edit is drift that
//     the next update repairs.
//   - Seed files (seed: true) are create only: written when absent, never
//     compared, overwritten, reported as drift or rolled back (nginx's
//     certificate once certbot's deploy hook owns it).
//   - acme: after a successful apply, certbot's first issuance (webroot)
//     while the live certificate is absent. Its failure is a warning and
//     acmeStatus "failed: ...", never a failed apply; Diff reports acme
//     until the status is "issued", so the next up tries again.
//   - Delete leaves the host as it is (files, packages and running daemons)
//     and only forgets it: removing a broker's configuration from under
//     connected devices is never what a state change should do by accident.
package hostprovider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi/sdk/v3/go/property"

	"github.com/mqttstack/mqttstack/internal/sshconn"
)

// DefaultRetryBudget is how long the provider waits for SSH on a host that
// does not answer yet (a fresh cloud server boots in about a minute).
const DefaultRetryBudget = 5 * time.Minute

// Provider builds the provider.
func Provider() (p.Provider, error) {
	return infer.NewProviderBuilder().
		WithDisplayName("mqttstack").
		WithDescription("Puts a rendered mqttstack host configuration (Mosquitto, nginx) on a Debian host over SSH.").
		WithNamespace("mqttstack").
		WithResources(infer.Resource(&HostConfig{})).
		Build()
}

// HostConfig is the resource.
type HostConfig struct{}

// Annotate sets the token and descriptions.
func (h *HostConfig) Annotate(a infer.Annotator) {
	a.SetToken("index", "HostConfig")
	a.Describe(h, "Files, directories and packages on one Debian host, applied over SSH with a pinned host key: "+
		"validated before reload, per-file diff, drift on refresh, rollback on failure; create-only (seed) files; "+
		"optionally a Let's Encrypt certificate via certbot (acme). Delete leaves the host as it is.")
}

// Connection is how the provider reaches the host.
type Connection struct {
	Host       string  `pulumi:"host"`
	Port       *int    `pulumi:"port,optional"`
	User       *string `pulumi:"user,optional"`
	PrivateKey string  `pulumi:"privateKey" provider:"secret"`
	HostKey    *string `pulumi:"hostKey,optional"`
}

// Annotate describes the fields.
func (c *Connection) Annotate(a infer.Annotator) {
	a.SetToken("index", "Connection")
	a.Describe(&c.Host, "Address or name of the host.")
	a.Describe(&c.Port, "SSH port (default 22).")
	a.Describe(&c.User, "Login user (default root; another user needs passwordless sudo).")
	a.Describe(&c.PrivateKey, "Unencrypted private key (PEM/OpenSSH) that logs in.")
	a.Describe(&c.HostKey, "The host's public key (authorized_keys line) to pin. Empty: the key seen on first contact is recorded and pinned from then on.")
}

// Annotate sets the type tokens of the nested types.
func (d *Directory) Annotate(a infer.Annotator) { a.SetToken("index", "Directory") }
func (f *FileOut) Annotate(a infer.Annotator)   { a.SetToken("index", "FileState") }

// File is one file (content shown in previews).
type File struct {
	Content string   `pulumi:"content"`
	Mode    *string  `pulumi:"mode,optional"`
	Owner   *string  `pulumi:"owner,optional"`
	Daemons []string `pulumi:"daemons,optional"`
	Seed    *bool    `pulumi:"seed,optional"`
}

// SecretFile is one file whose content is always a secret.
type SecretFile struct {
	Content string   `pulumi:"content" provider:"secret"`
	Mode    *string  `pulumi:"mode,optional"`
	Owner   *string  `pulumi:"owner,optional"`
	Daemons []string `pulumi:"daemons,optional"`
	Seed    *bool    `pulumi:"seed,optional"`
}

// Annotate describes the seed flag.
func (f *File) Annotate(a infer.Annotator) {
	a.SetToken("index", "File")
	a.Describe(&f.Seed, seedDoc)
}

// Annotate describes the seed flag.
func (f *SecretFile) Annotate(a infer.Annotator) {
	a.SetToken("index", "SecretFile")
	a.Describe(&f.Seed, seedDoc)
}

const seedDoc = "Create only: written when absent on the host, never overwritten, never reported as drift, never restored by a rollback " +
	"(e.g. a certificate that certbot's deploy hook replaces after the first issuance)."

// Acme asks for a Let's Encrypt certificate (certbot --webroot) once the
// files are applied and nginx serves the webroot.
type Acme struct {
	Domain     string  `pulumi:"domain"`
	Email      string  `pulumi:"email"`
	Webroot    string  `pulumi:"webroot"`
	DeployHook *string `pulumi:"deployHook,optional"`
}

// Annotate describes the fields.
func (c *Acme) Annotate(a infer.Annotator) {
	a.SetToken("index", "Acme")
	a.Describe(&c.Domain, "The name the certificate is for (must resolve to the host; http-01 on port 80).")
	a.Describe(&c.Email, "Let's Encrypt account e-mail (expiry notices).")
	a.Describe(&c.Webroot, "Directory nginx serves under /.well-known/acme-challenge/ (certbot --webroot -w).")
	a.Describe(&c.DeployHook, "certbot --deploy-hook: installs the issued certificate where the daemons read it and reloads them.")
}

// Directory must exist.
type Directory struct {
	Mode  *string `pulumi:"mode,optional"`
	Owner *string `pulumi:"owner,optional"`
}

// Args are the inputs.
type Args struct {
	Connection      Connection            `pulumi:"connection"`
	ServerID        *string               `pulumi:"serverId,optional"`
	Files           map[string]File       `pulumi:"files,optional"`
	SecretFiles     map[string]SecretFile `pulumi:"secretFiles,optional"`
	Directories     map[string]Directory  `pulumi:"directories,optional"`
	Packages        []string              `pulumi:"packages,optional"`
	MosquittoConfig *string               `pulumi:"mosquittoConfig,optional"`
	NginxConfig     *string               `pulumi:"nginxConfig,optional"`
	RetryBudget     *string               `pulumi:"retryBudget,optional"`
	Acme            *Acme                 `pulumi:"acme,optional"`
}

// FileOut is what the host holds at one managed path.
type FileOut struct {
	Sha256  string `pulumi:"sha256"`
	Mode    string `pulumi:"mode"`
	Owner   string `pulumi:"owner"`
	Missing bool   `pulumi:"missing"`
	Secret  bool   `pulumi:"secret"`
	// Seed: a create-only file. Only its presence is tracked (sha256,
	// mode and owner stay empty): whoever owns it after the first write
	// (certbot's deploy hook) may change it without drift.
	Seed bool `pulumi:"seed,optional"`
}

// State is the resource's outputs: what the host had at the last apply or
// refresh, plus the settings Diff needs (never file content).
type State struct {
	Host               string             `pulumi:"host"`
	Port               int                `pulumi:"port"`
	User               string             `pulumi:"user"`
	ServerID           string             `pulumi:"serverId"`
	HostKey            string             `pulumi:"hostKey"`
	HostKeyFingerprint string             `pulumi:"hostKeyFingerprint"`
	Files              map[string]FileOut `pulumi:"files"`
	Directories        map[string]string  `pulumi:"directories"` // path → "mode owner"
	Packages           []string           `pulumi:"packages"`
	MosquittoConfig    string             `pulumi:"mosquittoConfig"`
	NginxConfig        string             `pulumi:"nginxConfig"`
	ConfigHash         string             `pulumi:"configHash"`
	MosquittoVersion   string             `pulumi:"mosquittoVersion"`
	NginxVersion       string             `pulumi:"nginxVersion"`
	// Acme is the acme input as last applied; AcmeStatus what came of it:
	// "issued" (the live certificate exists on the host), "pending" (not
	// tried yet, or the certificate went missing), or "failed: <certbot's
	// message>". Anything but "issued" makes the next up run certbot again.
	Acme       *Acme  `pulumi:"acme,optional"`
	AcmeStatus string `pulumi:"acmeStatus,optional"`
}

// ACME statuses (State.AcmeStatus).
const (
	AcmeIssued  = "issued"
	AcmePending = "pending"
	AcmeFailed  = "failed"
)

// settings are Args with defaults applied, in the provider's terms.
type settings struct {
	ssh      sshconn.Config
	serverID string
	plan     Plan
	dirs     map[string]string
}

var (
	userRE    = regexp.MustCompile(`^[a-z_][a-z0-9_-]*[$]?$`)
	ownerRE   = regexp.MustCompile(`^[a-z_][a-z0-9_-]*:[a-z_][a-z0-9_-]*$`)
	modeRE    = regexp.MustCompile(`^0?[0-7]{3}$`)
	packageRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	plainPath = regexp.MustCompile(`^(/[A-Za-z0-9._@+-]+)+$`)
)

// resolve validates args (collect-all, each failure names its property) and
// applies defaults. unknown reports properties not known yet (preview): they
// are not validated.
func resolve(a Args, unknown func(string) bool) (settings, []p.CheckFailure) {
	var fails []p.CheckFailure
	fail := func(prop, format string, v ...any) {
		fails = append(fails, p.CheckFailure{Property: prop, Reason: fmt.Sprintf(format, v...)})
	}
	known := func(prop string) bool { return unknown == nil || !unknown(prop) }
	s := settings{dirs: map[string]string{}}
	c := a.Connection
	s.ssh.Host = strings.TrimSpace(c.Host)
	if known("connection.host") {
		if s.ssh.Host == "" {
			fail("connection.host", "required: the host's address or name")
		} else if strings.ContainsAny(s.ssh.Host, " \t\n/@") {
			fail("connection.host", "%q is not a host name or address", c.Host)
		}
	}
	s.ssh.Port = 22
	if c.Port != nil {
		s.ssh.Port = *c.Port
		if s.ssh.Port < 1 || s.ssh.Port > 65535 {
			fail("connection.port", "%d is out of range 1-65535", s.ssh.Port)
		}
	}
	s.ssh.User = "root"
	if c.User != nil && *c.User != "" {
		s.ssh.User = *c.User
		if !userRE.MatchString(s.ssh.User) {
			fail("connection.user", "%q is not a login name", s.ssh.User)
		}
	}
	s.plan.Sudo = s.ssh.User != "root"
	s.ssh.PrivateKey = []byte(c.PrivateKey)
	if known("connection.privateKey") {
		if c.PrivateKey == "" {
			fail("connection.privateKey", "required: the private key whose public half is in the host's authorized_keys")
		} else if _, err := sshconn.ParsePrivateKey(s.ssh.PrivateKey); err != nil {
			fail("connection.privateKey", "%v", err)
		}
	}
	if c.HostKey != nil && *c.HostKey != "" {
		s.ssh.HostKey = strings.TrimSpace(*c.HostKey)
		if known("connection.hostKey") {
			if _, err := sshconn.ParseHostKey(s.ssh.HostKey); err != nil {
				fail("connection.hostKey", "%v", err)
			}
		}
	}
	s.ssh.Budget = DefaultRetryBudget
	if a.RetryBudget != nil && *a.RetryBudget != "" {
		d, err := time.ParseDuration(*a.RetryBudget)
		switch {
		case err != nil:
			fail("retryBudget", "%q is not a duration (e.g. \"5m\")", *a.RetryBudget)
		case d < 0 || d > time.Hour:
			fail("retryBudget", "%s is outside 0..1h", d)
		default:
			s.ssh.Budget = d
		}
	}
	if a.ServerID != nil {
		s.serverID = *a.ServerID
	}

	s.plan.MosquittoConfig = "/etc/mosquitto/mosquitto.conf"
	if a.MosquittoConfig != nil && *a.MosquittoConfig != "" {
		s.plan.MosquittoConfig = *a.MosquittoConfig
		if !plainPath.MatchString(s.plan.MosquittoConfig) {
			fail("mosquittoConfig", "%q must be an absolute plain path", s.plan.MosquittoConfig)
		}
	}
	s.plan.NginxConfig = "/etc/nginx/nginx.conf"
	if a.NginxConfig != nil && *a.NginxConfig != "" {
		s.plan.NginxConfig = *a.NginxConfig
		if !plainPath.MatchString(s.plan.NginxConfig) {
			fail("nginxConfig", "%q must be an absolute plain path", s.plan.NginxConfig)
		}
	}

	addFile := func(group, fp, content string, mode, owner *string, daemons []string, secret bool, seed *bool) {
		prop := fmt.Sprintf("%s[%q]", group, fp)
		f := FileSpec{Path: fp, Content: []byte(content), Mode: "0644", Owner: "root:root", Daemons: daemons, Secret: secret, Seed: seed != nil && *seed}
		if !plainPath.MatchString(fp) || path.Clean(fp) != fp || path.Dir(fp) == "/" {
			fail(prop, "path must be absolute, clean, below a directory, and plain (letters, digits, ._@+-)")
		}
		if strings.HasPrefix(path.Base(fp), ".mqttstack-") {
			fail(prop, "names starting with .mqttstack- are the provider's own temporary files")
		}
		if mode != nil && *mode != "" {
			if !modeRE.MatchString(*mode) {
				fail(prop+".mode", "%q is not an octal mode like \"0640\"", *mode)
			} else {
				f.Mode = normMode(*mode)
			}
		}
		if owner != nil && *owner != "" {
			if !ownerRE.MatchString(*owner) {
				fail(prop+".owner", "%q must be user:group", *owner)
			} else {
				f.Owner = *owner
			}
		}
		for i, d := range daemons {
			if !slices.Contains(knownKinds, d) {
				fail(fmt.Sprintf("%s.daemons[%d]", prop, i), "%q is not one of %s", d, strings.Join(knownKinds, ", "))
			}
			if d == kindSystemd && dropinUnit(fp) == "" {
				fail(fmt.Sprintf("%s.daemons[%d]", prop, i), "systemd files must be drop-ins /etc/systemd/system/UNIT.service.d/NAME.conf")
			}
		}
		if len(content) > 4<<20 {
			fail(prop+".content", "%d bytes is more than the 4 MiB a config file may have", len(content))
		}
		s.plan.Files = append(s.plan.Files, f)
	}
	for fp, f := range a.Files {
		addFile("files", fp, f.Content, f.Mode, f.Owner, f.Daemons, false, f.Seed)
	}
	for fp, f := range a.SecretFiles {
		if _, dup := a.Files[fp]; dup {
			fail(fmt.Sprintf("secretFiles[%q]", fp), "also in files: a path is either secret or not")
			continue
		}
		addFile("secretFiles", fp, f.Content, f.Mode, f.Owner, f.Daemons, true, f.Seed)
	}
	if len(s.plan.Files) == 0 {
		fail("files", "at least one file (files or secretFiles)")
	}
	sort.Slice(s.plan.Files, func(i, j int) bool { return s.plan.Files[i].Path < s.plan.Files[j].Path })

	for dp, d := range a.Directories {
		prop := fmt.Sprintf("directories[%q]", dp)
		ds := DirSpec{Path: dp, Mode: "0755", Owner: "root:root"}
		if !plainPath.MatchString(dp) || path.Clean(dp) != dp {
			fail(prop, "path must be absolute, clean and plain")
		}
		if d.Mode != nil && *d.Mode != "" {
			if !modeRE.MatchString(*d.Mode) {
				fail(prop+".mode", "%q is not an octal mode like \"0750\"", *d.Mode)
			} else {
				ds.Mode = normMode(*d.Mode)
			}
		}
		if d.Owner != nil && *d.Owner != "" {
			if !ownerRE.MatchString(*d.Owner) {
				fail(prop+".owner", "%q must be user:group", *d.Owner)
			} else {
				ds.Owner = *d.Owner
			}
		}
		s.plan.Dirs = append(s.plan.Dirs, ds)
		s.dirs[dp] = ds.Mode + " " + ds.Owner
	}
	sort.Slice(s.plan.Dirs, func(i, j int) bool { return s.plan.Dirs[i].Path < s.plan.Dirs[j].Path })

	for i, pk := range a.Packages {
		if !packageRE.MatchString(pk) {
			fail(fmt.Sprintf("packages[%d]", i), "%q is not a Debian package name", pk)
		}
	}
	s.plan.Packages = slices.Clone(a.Packages)
	sort.Strings(s.plan.Packages)
	s.plan.Packages = slices.Compact(s.plan.Packages)

	if ac := a.Acme; ac != nil {
		spec := AcmeSpec{Domain: strings.ToLower(strings.TrimSpace(ac.Domain)), Email: strings.TrimSpace(ac.Email), Webroot: ac.Webroot}
		if known("acme.domain") && !validDomain(spec.Domain) {
			fail("acme.domain", "%q is not a DNS name Let's Encrypt can issue for over http-01 (e.g. \"mqtt.example.com\"; no wildcard, no IP address)", ac.Domain)
		}
		if known("acme.email") && !emailRE.MatchString(spec.Email) {
			fail("acme.email", "%q is not an e-mail address (e.g. \"ops@example.com\"; Let's Encrypt sends expiry notices there)", ac.Email)
		}
		if known("acme.webroot") && (!plainPath.MatchString(spec.Webroot) || path.Clean(spec.Webroot) != spec.Webroot || spec.Webroot == "/") {
			fail("acme.webroot", "%q must be an absolute, clean, plain directory path that nginx serves (e.g. \"/var/www/acme\")", ac.Webroot)
		}
		if ac.DeployHook != nil && *ac.DeployHook != "" {
			spec.DeployHook = *ac.DeployHook
			if known("acme.deployHook") && (!plainPath.MatchString(spec.DeployHook) || path.Clean(spec.DeployHook) != spec.DeployHook) {
				fail("acme.deployHook", "%q must be an absolute, clean, plain path", *ac.DeployHook)
			}
		}
		s.plan.Acme = &spec
	}
	return s, fails
}

var (
	emailRE    = regexp.MustCompile(`^[A-Za-z0-9._%+\-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$`)
	dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// validDomain: a fully qualified DNS name (at least two labels, the last not
// numeric, so no IP address) of at most 253 characters.
func validDomain(d string) bool {
	labels := strings.Split(d, ".")
	if len(d) > 253 || len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !dnsLabelRE.MatchString(l) {
			return false
		}
	}
	_, err := strconv.Atoi(labels[len(labels)-1])
	return err != nil
}

// Check validates every input at once.
func (h *HostConfig) Check(ctx context.Context, req infer.CheckRequest) (infer.CheckResponse[Args], error) {
	args, fails, err := infer.DefaultCheck[Args](ctx, req.NewInputs)
	if err != nil || len(fails) > 0 {
		return infer.CheckResponse[Args]{Inputs: args, Failures: fails}, err
	}
	_, more := resolve(args, func(prop string) bool { return isUnknown(req.NewInputs, prop) })
	return infer.CheckResponse[Args]{Inputs: args, Failures: more}, nil
}

// isUnknown says whether a dotted property (connection.host) is not known
// yet, or an entry of files/secretFiles holds unknown content.
func isUnknown(m property.Map, prop string) bool {
	v := property.New(m)
	for _, k := range strings.Split(prop, ".") {
		if v.IsComputed() {
			return true
		}
		if !v.IsMap() {
			return false
		}
		v = v.AsMap().Get(k)
	}
	return v.IsComputed()
}

// Diff names every changed file; only a new host replaces.
func (h *HostConfig) Diff(ctx context.Context, req infer.DiffRequest[Args, State]) (infer.DiffResponse, error) {
	s, _ := resolve(req.Inputs, nil)
	old := req.State
	d := map[string]p.PropertyDiff{}
	if s.ssh.Host != old.Host {
		d["connection.host"] = p.PropertyDiff{Kind: p.UpdateReplace, InputDiff: true}
	}
	if s.serverID != old.ServerID {
		d["serverId"] = p.PropertyDiff{Kind: p.UpdateReplace, InputDiff: true}
	}
	if s.ssh.Port != old.Port {
		d["connection.port"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	if s.ssh.User != old.User {
		d["connection.user"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	if s.ssh.HostKey != "" && !sameKey(s.ssh.HostKey, old.HostKey) {
		d["connection.hostKey"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	for _, f := range s.plan.Files {
		group := "files"
		if f.Secret {
			group = "secretFiles"
		}
		o, ok := old.Files[f.Path]
		key := fmt.Sprintf("%s[%q]", group, f.Path)
		switch {
		case !ok:
			d[key] = p.PropertyDiff{Kind: p.Add, InputDiff: true}
		case o.Seed != f.Seed || o.Secret != f.Secret || o.Missing:
			d[key] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
		case f.Seed:
			// present: whatever it holds now is its owner's (no drift)
		case o.Sha256 != f.Sum() || o.Mode != f.Mode || o.Owner != f.Owner:
			d[key] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
		}
	}
	want := map[string]bool{}
	for _, f := range s.plan.Files {
		want[f.Path] = true
	}
	for fp, o := range old.Files {
		if !want[fp] {
			group := "files"
			if o.Secret {
				group = "secretFiles"
			}
			d[fmt.Sprintf("%s[%q]", group, fp)] = p.PropertyDiff{Kind: p.Delete, InputDiff: true}
		}
	}
	for dp, v := range s.dirs {
		if old.Directories[dp] != v {
			d[fmt.Sprintf("directories[%q]", dp)] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
		}
	}
	if !slices.Equal(s.plan.Packages, old.Packages) {
		d["packages"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	if s.plan.MosquittoConfig != old.MosquittoConfig {
		d["mosquittoConfig"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	if s.plan.NginxConfig != old.NginxConfig {
		d["nginxConfig"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	// acme: a new request, or a certificate not issued yet (a failed or
	// interrupted certbot run is retried by the next up).
	switch {
	case s.plan.Acme == nil && old.Acme != nil:
		d["acme"] = p.PropertyDiff{Kind: p.Delete, InputDiff: true}
	case s.plan.Acme != nil && old.Acme == nil:
		d["acme"] = p.PropertyDiff{Kind: p.Add, InputDiff: true}
	case s.plan.Acme != nil && (*s.plan.Acme != acmeSpec(old.Acme) || old.AcmeStatus != AcmeIssued):
		d["acme"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	return infer.DiffResponse{HasChanges: len(d) > 0, DetailedDiff: d}, nil
}

func sameKey(a, b string) bool {
	ka, err1 := sshconn.ParseHostKey(a)
	kb, err2 := sshconn.ParseHostKey(b)
	return err1 == nil && err2 == nil && string(ka.Marshal()) == string(kb.Marshal())
}

// Create applies the configuration to a host for the first time.
func (h *HostConfig) Create(ctx context.Context, req infer.CreateRequest[Args]) (infer.CreateResponse[State], error) {
	s, fails := resolve(req.Inputs, nil)
	if len(fails) > 0 {
		return infer.CreateResponse[State]{}, failuresError(fails)
	}
	id := s.ssh.Host
	if s.serverID != "" {
		id = s.serverID + "@" + s.ssh.Host
	}
	if req.DryRun {
		return infer.CreateResponse[State]{ID: id, Output: planned(s, State{})}, nil
	}
	s.plan.AcmeInstall = true
	st, err := apply(ctx, s, "")
	return infer.CreateResponse[State]{ID: id, Output: st}, err
}

// Update applies changed inputs (or repairs drift) on the same host.
func (h *HostConfig) Update(ctx context.Context, req infer.UpdateRequest[Args, State]) (infer.UpdateResponse[State], error) {
	s, fails := resolve(req.Inputs, nil)
	if len(fails) > 0 {
		return infer.UpdateResponse[State]{Output: req.State}, failuresError(fails)
	}
	if req.DryRun {
		return infer.UpdateResponse[State]{Output: planned(s, req.State)}, nil
	}
	s.plan.AcmeInstall = req.State.AcmeStatus != AcmeIssued
	st, err := apply(ctx, s, req.State.HostKey)
	if err != nil {
		// Keep the last known state: a failed apply left the previous files.
		return infer.UpdateResponse[State]{Output: req.State}, err
	}
	return infer.UpdateResponse[State]{Output: st}, nil
}

// Read re-reads the managed files on the host (refresh): drift shows as
// changed hashes. A seed file reports only whether it exists; with acme,
// whether the live certificate exists.
func (h *HostConfig) Read(ctx context.Context, req infer.ReadRequest[Args, State]) (infer.ReadResponse[Args, State], error) {
	st := req.State
	cfg := sshconn.Config{Host: st.Host, Port: st.Port, User: st.User, PrivateKey: []byte(req.Inputs.Connection.PrivateKey), HostKey: st.HostKey, Budget: 30 * time.Second}
	if in := req.Inputs.Connection.HostKey; in != nil && *in != "" {
		cfg.HostKey = *in
	}
	c, err := sshconn.Dial(ctx, cfg)
	if err != nil {
		return infer.ReadResponse[Args, State]{ID: req.ID, Inputs: req.Inputs, State: st}, fmt.Errorf("refresh: %w", err)
	}
	defer c.Close()
	paths := make([]string, 0, len(st.Files))
	for fp := range st.Files {
		paths = append(paths, fp)
	}
	sort.Strings(paths)
	hst := &host{r: c, sudo: st.User != "root", log: func(string) {}}
	obs, err := hst.probe(ctx, paths)
	if err != nil {
		return infer.ReadResponse[Args, State]{ID: req.ID, Inputs: req.Inputs, State: st}, fmt.Errorf("refresh: %w", err)
	}
	files := map[string]FileOut{}
	for fp, o := range st.Files {
		files[fp] = fileOut(obs.Files[fp], o.Secret, o.Seed)
	}
	st.Files = files
	if st.Acme != nil {
		present, err := hst.acmePresent(ctx, st.Acme.Domain)
		switch {
		case err != nil:
			return infer.ReadResponse[Args, State](req), fmt.Errorf("refresh: %w", err)
		case present:
			st.AcmeStatus = AcmeIssued
		case st.AcmeStatus == AcmeIssued:
			st.AcmeStatus = AcmePending + ": " + acmeLive(st.Acme.Domain) + " is gone; the next up runs certbot again"
		}
	}
	st.ConfigHash = configHash(files)
	st.MosquittoVersion, st.NginxVersion = obs.MosquittoVersion, obs.NginxVersion
	st.HostKey, st.HostKeyFingerprint = c.HostKey(), c.Fingerprint()
	return infer.ReadResponse[Args, State]{ID: req.ID, Inputs: req.Inputs, State: st}, nil
}

// Delete leaves the host as it is (see the package doc) and forgets it.
func (h *HostConfig) Delete(ctx context.Context, req infer.DeleteRequest[State]) (infer.DeleteResponse, error) {
	p.GetLogger(ctx).Infof("%s: left as it is (files, packages and services stay; mqttstack only forgets the host)", req.State.Host)
	return infer.DeleteResponse{}, nil
}

// apply dials (pinning the input key, else the recorded one, else trusting
// on first use) and applies the plan.
func apply(ctx context.Context, s settings, recordedKey string) (State, error) {
	cfg := s.ssh
	if cfg.HostKey == "" {
		cfg.HostKey = recordedKey
	}
	log := p.GetLogger(ctx)
	c, err := sshconn.Dial(ctx, cfg)
	if err != nil {
		return State{}, err
	}
	defer c.Close()
	if cfg.HostKey == "" {
		log.Infof("%s: first contact, recorded host key %s", cfg.Addr(), c.Fingerprint())
	}
	obs, err := Apply(ctx, c, s.plan, func(msg string) { log.InfoStatus(msg) })
	if err != nil {
		return State{}, err
	}
	if obs.AcmeErr != nil {
		// The configuration stands; only the certificate is missing.
		log.Warningf("%s: Let's Encrypt certificate for %s not issued (the configuration is applied; nginx keeps its current certificate; the next up runs certbot again): %v",
			cfg.Addr(), s.plan.Acme.Domain, obs.AcmeErr)
	} else if obs.Acme == "issued" {
		log.Infof("%s: Let's Encrypt certificate for %s issued (certbot's deploy hook installed it)", cfg.Addr(), s.plan.Acme.Domain)
	} else if obs.Acme == "installed" {
		log.Infof("%s: the existing Let's Encrypt certificate for %s handed to the deploy hook", cfg.Addr(), s.plan.Acme.Domain)
	}
	if len(obs.Changed) > 0 {
		log.Infof("%s: wrote %s; then %s", cfg.Addr(), strings.Join(obs.Changed, ", "), strings.Join(obs.Actions, ", "))
	} else {
		log.Infof("%s: every file already as rendered; nothing written", cfg.Addr())
	}
	st := planned(s, State{})
	files := map[string]FileOut{}
	for _, f := range s.plan.Files {
		files[f.Path] = fileOut(obs.Files[f.Path], f.Secret, f.Seed)
	}
	st.Files = files
	st.ConfigHash = configHash(files)
	st.MosquittoVersion, st.NginxVersion = obs.MosquittoVersion, obs.NginxVersion
	st.HostKey, st.HostKeyFingerprint = c.HostKey(), c.Fingerprint()
	if s.plan.Acme != nil {
		st.AcmeStatus = AcmeIssued
		if obs.AcmeErr != nil {
			st.AcmeStatus = AcmeFailed + ": " + obs.AcmeErr.Error()
		}
	}
	return st, nil
}

// fileOut is the state of one managed path; a seed file records only
// whether it exists.
func fileOut(o FileState, secret, seed bool) FileOut {
	if seed {
		return FileOut{Missing: o.Missing, Secret: secret, Seed: true}
	}
	return FileOut{Sha256: o.Sha256, Mode: o.Mode, Owner: o.Owner, Missing: o.Missing, Secret: secret}
}

// acmeSpec is the applied acme input in the plan's terms.
func acmeSpec(a *Acme) AcmeSpec {
	if a == nil {
		return AcmeSpec{}
	}
	s := AcmeSpec{Domain: a.Domain, Email: a.Email, Webroot: a.Webroot}
	if a.DeployHook != nil {
		s.DeployHook = *a.DeployHook
	}
	return s
}

// planned is the state the plan will produce (previews), on top of prev for
// what a preview cannot know.
func planned(s settings, prev State) State {
	st := prev
	st.Host, st.Port, st.User, st.ServerID = s.ssh.Host, s.ssh.Port, s.ssh.User, s.serverID
	st.Directories = s.dirs
	st.Packages = s.plan.Packages
	if st.Packages == nil {
		st.Packages = []string{}
	}
	st.MosquittoConfig, st.NginxConfig = s.plan.MosquittoConfig, s.plan.NginxConfig
	files := map[string]FileOut{}
	for _, f := range s.plan.Files {
		files[f.Path] = fileOut(FileState{Sha256: f.Sum(), Mode: f.Mode, Owner: f.Owner}, f.Secret, f.Seed)
	}
	st.Files = files
	st.ConfigHash = configHash(files)
	st.Acme, st.AcmeStatus = nil, ""
	if a := s.plan.Acme; a != nil {
		st.Acme = &Acme{Domain: a.Domain, Email: a.Email, Webroot: a.Webroot}
		if a.DeployHook != "" {
			st.Acme.DeployHook = &a.DeployHook
		}
		st.AcmeStatus = prev.AcmeStatus
		if st.AcmeStatus != AcmeIssued {
			st.AcmeStatus = AcmePending
		}
	}
	if s.ssh.HostKey != "" {
		st.HostKey, st.HostKeyFingerprint = s.ssh.HostKey, sshconn.Fingerprint(s.ssh.HostKey)
	}
	return st
}

// configHash covers every managed path, mode, owner and content hash. It is
// derived from content hashes only, so it carries nothing of a secret.
func configHash(files map[string]FileOut) string {
	paths := make([]string, 0, len(files))
	for fp := range files {
		paths = append(paths, fp)
	}
	sort.Strings(paths)
	h := sha256.New()
	for _, fp := range paths {
		f := files[fp]
		if f.Seed {
			fmt.Fprintf(h, "%s seed %t\n", strconv.Quote(fp), f.Missing)
			continue
		}
		fmt.Fprintf(h, "%s %s %s %s %t\n", strconv.Quote(fp), f.Mode, f.Owner, f.Sha256, f.Missing)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func failuresError(fails []p.CheckFailure) error {
	var errs []error
	for _, f := range fails {
		errs = append(errs, fmt.Errorf("%s: %s", f.Property, f.Reason))
	}
	return errors.Join(errs...)
}
