// Package hostres is the program side of mqttstack's own Pulumi resource,
// mqttstack:index:HostConfig, served by the plugin pulumi-resource-mqttstack
// (cmd/pulumi-resource-mqttstack, implementation in infra/hostprovider).
//
// A HostConfig puts files, directories and packages on one Debian host over
// SSH with a pinned host key, validates the new Mosquitto and nginx
// configuration before any reload, reloads only the daemons whose files
// changed, and rolls back on failure. Its inputs are keyed by path, so a
// preview names each file that changes (files["/etc/mosquitto/acl"]); the
// content of secretFiles (keys, password files) is a Pulumi secret and never
// shows in a preview, a diff or the state in plaintext.
package hostres

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The plugin that serves HostConfig. The provider binary reports the same
// name and version, and a program pins it with pulumi.Version, so the engine
// loads exactly this build (pulumi plugin install resource mqttstack
// <PluginVersion> --file bin/pulumi-resource-mqttstack).
const (
	PluginName    = "mqttstack"
	PluginVersion = "0.1.0"
	// HostConfigToken is the resource's type token.
	HostConfigToken = "mqttstack:index:HostConfig"
)

// Daemons a file can belong to. The provider validates and reloads by them:
//   - mosquitto: candidate config started as a throwaway broker before any
//     change; SIGHUP if only the ACL or password files changed, else restart.
//   - nginx: nginx -t on the candidate; systemctl reload nginx.
//   - nftables: nft -c -f before, nft -f after.
//   - systemd: a unit drop-in (/etc/systemd/system/UNIT.service.d/*.conf):
//     daemon-reload and restart of UNIT.
const (
	Mosquitto = "mosquitto"
	Nginx     = "nginx"
	Nftables  = "nftables"
	Systemd   = "systemd"
)

// Connection says how the provider reaches the host.
type Connection struct {
	Host pulumi.StringInput // address or name (a cloud server's IPv4 output)
	Port int                // 0 means 22
	User string             // "" means root; a non-root user needs passwordless sudo
	// PrivateKey logs in (PEM/OpenSSH, unencrypted). Always sent as a secret.
	PrivateKey pulumi.StringInput
	// HostKey pins the host's key (authorized_keys line, e.g. from
	// ssh-keyscan -t ed25519). Required for an existing host; nil or "" for a
	// fresh cloud server: the key seen on first contact is recorded in the
	// state (output hostKey) and every later connection must match it.
	HostKey pulumi.StringInput
}

// File is one file on the host. Mode "" means 0644, Owner "" root:root.
type File struct {
	Content pulumi.StringInput
	Mode    string   // octal, e.g. "0640"
	Owner   string   // user:group
	Daemons []string // which daemons read it (Mosquitto, Nginx, Nftables, Systemd); empty: none (e.g. a web page)
	// Seed: create only. Written when absent on the host, never
	// overwritten, never reported as drift, never restored by a rollback:
	// after the first write the file is someone else's (e.g. nginx's
	// certificate, which certbot's deploy hook replaces).
	Seed bool
}

// Acme asks the provider for a Let's Encrypt certificate once the files are
// applied and nginx serves Webroot: while
// /etc/letsencrypt/live/<Domain>/fullchain.pem is absent it runs `certbot
// certonly --webroot -w Webroot -d Domain --email Email --agree-tos
// --non-interactive --deploy-hook DeployHook`. A certbot failure does not
// fail the apply: it is a warning with certbot's message, the output
// acmeStatus says "failed: ...", and the next up tries again.
type Acme struct {
	Domain     string
	Email      string
	Webroot    string
	DeployHook string // "" means none
}

// Directory is a directory that must exist (created with Mode and Owner if
// missing; an existing one is left as is).
type Directory struct {
	Mode  string // "" means 0755
	Owner string // "" means root:root
}

// HostConfigArgs are the resource's inputs.
type HostConfigArgs struct {
	Connection Connection
	// ServerID, if set, identifies the machine (a cloud server's id): a new
	// id replaces the resource (a new server, a new host key), like a new
	// Connection.Host. Any other change updates the host in place.
	ServerID pulumi.StringInput
	// Files keyed by absolute path; their content is shown in previews. A
	// path dropped from Files/SecretFiles is no longer managed and is left
	// on the host as it is.
	Files map[string]File
	// SecretFiles keyed by absolute path (server key, password files): the
	// content is wrapped in pulumi.ToSecret.
	SecretFiles map[string]File
	Directories map[string]Directory
	// Packages are Debian packages installed with apt-get if missing.
	Packages []string
	// MosquittoConfig and NginxConfig are the daemons' main files (what the
	// provider validates); "" means Debian's /etc/mosquitto/mosquitto.conf
	// and /etc/nginx/nginx.conf.
	MosquittoConfig string
	NginxConfig     string
	// RetryBudget bounds waiting for SSH on a booting server; 0 means the
	// provider's default (5m).
	RetryBudget time.Duration
	// Acme, if set, obtains a Let's Encrypt certificate (see Acme).
	Acme *Acme
}

// HostConfig is the resource. Outputs are what the host has after the last
// apply or refresh.
type HostConfig struct {
	pulumi.CustomResourceState

	// ConfigHash covers every managed file's path, mode, owner and content
	// hash as applied (it changes with any applied file change).
	ConfigHash pulumi.StringOutput `pulumi:"configHash"`
	// Files maps each managed path (files and secretFiles) to what the host
	// holds: {"sha256": hex, "mode": "0640", "owner": "root:mosquitto"}, or
	// {"missing": true}. A refresh re-reads them: a hand edit shows as drift.
	Files pulumi.MapOutput `pulumi:"files"`
	// MosquittoVersion and NginxVersion are the installed daemons' versions.
	MosquittoVersion pulumi.StringOutput `pulumi:"mosquittoVersion"`
	NginxVersion     pulumi.StringOutput `pulumi:"nginxVersion"`
	// HostKey is the pinned (or first-contact) host key; store it in the
	// target file's ssh.host_key.
	HostKey            pulumi.StringOutput `pulumi:"hostKey"`
	HostKeyFingerprint pulumi.StringOutput `pulumi:"hostKeyFingerprint"`
	// AcmeStatus is "" without Acme, else "issued", "pending" or
	// "failed: <certbot's message>" (the next up runs certbot again).
	AcmeStatus pulumi.StringOutput `pulumi:"acmeStatus"`
}

// NewHostConfig registers a HostConfig. It validates the plain parts of
// args here (collect-all); the provider's Check validates the rest.
func NewHostConfig(ctx *pulumi.Context, name string, args *HostConfigArgs, opts ...pulumi.ResourceOption) (*HostConfig, error) {
	if args == nil {
		return nil, errors.New("hostres: HostConfigArgs: required")
	}
	props, err := args.props()
	if err != nil {
		return nil, fmt.Errorf("host config %s: %w", name, err)
	}
	var res HostConfig
	opts = append([]pulumi.ResourceOption{pulumi.Version(PluginVersion)}, opts...)
	if err := ctx.RegisterResource(HostConfigToken, name, props, &res, opts...); err != nil {
		return nil, err
	}
	return &res, nil
}

// props turns the args into the resource's property map (the provider's
// schema): nested inputs stay outputs, so dependencies and secrets survive.
func (a *HostConfigArgs) props() (pulumi.Map, error) {
	var errs []error
	c := a.Connection
	if c.Host == nil {
		errs = append(errs, errors.New("connection.host: required"))
	}
	if c.PrivateKey == nil {
		errs = append(errs, errors.New("connection.privateKey: required (pass the key as a secret)"))
	}
	if len(a.Files)+len(a.SecretFiles) == 0 {
		errs = append(errs, errors.New("files: at least one file (Files or SecretFiles)"))
	}
	for p, f := range a.Files {
		if f.Content == nil {
			errs = append(errs, fmt.Errorf("files[%q].content: required", p))
		}
	}
	for p, f := range a.SecretFiles {
		if f.Content == nil {
			errs = append(errs, fmt.Errorf("secretFiles[%q].content: required", p))
		}
		if _, dup := a.Files[p]; dup {
			errs = append(errs, fmt.Errorf("secretFiles[%q]: also in files; a path is either secret or not", p))
		}
	}
	if ac := a.Acme; ac != nil {
		if ac.Domain == "" {
			errs = append(errs, errors.New("acme.domain: required (the certificate's name)"))
		}
		if ac.Email == "" {
			errs = append(errs, errors.New("acme.email: required (Let's Encrypt's expiry notices)"))
		}
		if ac.Webroot == "" {
			errs = append(errs, errors.New("acme.webroot: required (the directory nginx serves for /.well-known/acme-challenge/)"))
		}
	}
	if a.RetryBudget < 0 {
		errs = append(errs, fmt.Errorf("retryBudget: %s is negative", a.RetryBudget))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	conn := pulumi.Map{
		"host":       c.Host,
		"privateKey": pulumi.ToSecret(c.PrivateKey),
	}
	if c.Port != 0 {
		conn["port"] = pulumi.Int(c.Port)
	}
	if c.User != "" {
		conn["user"] = pulumi.String(c.User)
	}
	if c.HostKey != nil {
		conn["hostKey"] = c.HostKey
	}
	m := pulumi.Map{
		"connection":  conn,
		"files":       fileMap(a.Files, false),
		"secretFiles": fileMap(a.SecretFiles, true),
	}
	if a.ServerID != nil {
		m["serverId"] = a.ServerID
	}
	if len(a.Directories) > 0 {
		dirs := pulumi.Map{}
		for p, d := range a.Directories {
			dm := pulumi.Map{}
			if d.Mode != "" {
				dm["mode"] = pulumi.String(d.Mode)
			}
			if d.Owner != "" {
				dm["owner"] = pulumi.String(d.Owner)
			}
			dirs[p] = dm
		}
		m["directories"] = dirs
	}
	if len(a.Packages) > 0 {
		pk := append([]string(nil), a.Packages...)
		sort.Strings(pk)
		m["packages"] = pulumi.ToStringArray(pk)
	}
	if a.MosquittoConfig != "" {
		m["mosquittoConfig"] = pulumi.String(a.MosquittoConfig)
	}
	if a.NginxConfig != "" {
		m["nginxConfig"] = pulumi.String(a.NginxConfig)
	}
	if a.RetryBudget > 0 {
		m["retryBudget"] = pulumi.String(a.RetryBudget.String())
	}
	if ac := a.Acme; ac != nil {
		am := pulumi.Map{"domain": pulumi.String(ac.Domain), "email": pulumi.String(ac.Email), "webroot": pulumi.String(ac.Webroot)}
		if ac.DeployHook != "" {
			am["deployHook"] = pulumi.String(ac.DeployHook)
		}
		m["acme"] = am
	}
	return m, nil
}

func fileMap(files map[string]File, secret bool) pulumi.Map {
	out := pulumi.Map{}
	for p, f := range files {
		var content pulumi.Input = f.Content
		if secret {
			content = pulumi.ToSecret(f.Content)
		}
		fm := pulumi.Map{"content": content}
		if f.Mode != "" {
			fm["mode"] = pulumi.String(f.Mode)
		}
		if f.Owner != "" {
			fm["owner"] = pulumi.String(f.Owner)
		}
		if len(f.Daemons) > 0 {
			fm["daemons"] = pulumi.ToStringArray(f.Daemons)
		}
		if f.Seed {
			fm["seed"] = pulumi.Bool(true)
		}
		out[p] = fm
	}
	return out
}
