// Package broker is the Pulumi component that puts an mqttstack on a VPS:
// the server (Hetzner Cloud, DigitalOcean, or an existing host reached over
// SSH), the provider firewall, a DNS record in the cloud's DNS, and the
// host configuration: one mqttstack:index:HostConfig (package hostres,
// served by our own plugin pulumi-resource-mqttstack) that installs
// Mosquitto, nginx, certbot and nftables from Debian's packages and writes
// the files rendered by infra/hostconfig, for every provider alike.
//
// The host configuration always travels over SSH, for the clouds too, and
// never through cloud-init user data, for two reasons:
//
//   - user data is visible to every local process on the VPS through the
//     provider's metadata service and is kept by the provider's API; the
//     server key must only travel as a Pulumi secret over SSH;
//   - a change to user data replaces the server on both clouds, so a
//     one-line ACL change would cost a new machine and a new address.
//     HostConfig's inputs are keyed by file path instead: a change updates
//     the host in place, writes only the files that differ, validates the
//     new configuration before any reload and reloads only the daemons
//     whose files changed (see package hostres). Only a new server (its id)
//     replaces the HostConfig.
//
// One consequence: the machine running `pulumi up` must reach port 22 of the
// server, i.e. lie inside mqttstack:adminCidr.
package broker

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/infra/hostres"
)

// TypeToken is the component's Pulumi type.
const TypeToken = "mqttstack:infra:Broker"

// Provider names where the broker runs (config key mqttstack:provider).
type Provider string

// The supported providers.
const (
	Hetzner      Provider = "hcloud"
	DigitalOcean Provider = "digitalocean"
	SSH          Provider = "ssh"
)

// Providers lists the valid values of Provider, for error messages.
var Providers = []Provider{Hetzner, DigitalOcean, SSH}

// Args describe one broker.
type Args struct {
	Provider Provider
	// Stack is the host description (hostconfig.VPSStack plus the
	// operator's choices: PublicDomain, ACMEEmail, AdminCIDR, limits).
	Stack hostconfig.Stack
	PKI   PKI

	// Cloud applies to Hetzner and DigitalOcean.
	Cloud Cloud
	// Connection is how the provisioning reaches the host over SSH. For the
	// clouds, Host is left empty and the server's address is used.
	Connection Connection
}

// Cloud sizes and places a cloud server.
type Cloud struct {
	Region string // hcloud location ("fsn1") or DigitalOcean region ("fra1")
	Size   string // hcloud server type ("cx22") or droplet size ("s-1vcpu-1gb")
	Image  string // empty: Debian 12 ("debian-12" / "debian-12-x64")
	// SSHPublicKey is installed for root on the new server (OpenSSH
	// authorized_keys format). Ignored when SSHKeyID is set.
	SSHPublicKey string
	// SSHKeyID, if set, is an existing provider SSH key (hcloud id or name,
	// DigitalOcean id or fingerprint). Both clouds refuse the same public
	// key twice in one account, so several brokers sharing an operator key
	// create it once and pass it here.
	SSHKeyID pulumi.StringInput
	// DNSZone is a DNS zone managed by the same cloud (a Hetzner DNS zone or
	// a DigitalOcean domain, e.g. "example.com") in which an A record for
	// Stack.ServerName is pointed at the server, before provisioning runs
	// (certbot needs it). Empty: no DNS record.
	DNSZone string
}

// Connection is the SSH side of provisioning.
type Connection struct {
	Host string // ssh provider only: the existing host's address
	User string // default "root"; a non-root user needs passwordless sudo
	Port int    // default 22
	// PrivateKey is the PEM key that logs in; pass a secret
	// (config.TrySecret), it is wrapped in pulumi.ToSecret regardless.
	PrivateKey pulumi.StringInput
	// HostKey pins the host's SSH public key (an authorized_keys line).
	// Required for provider ssh. Empty for a fresh cloud server: the key
	// seen on first contact is recorded in the state and every later
	// connection must present it.
	HostKey string
	// RetryBudget bounds waiting for SSH (a booting cloud server, a host
	// that refuses for a moment). Zero: DefaultRetryBudget(Provider).
	RetryBudget time.Duration
}

// DefaultRetryBudget is how long the provider waits for SSH: a fresh cloud
// server needs a minute or two before sshd answers; an existing host
// should answer at once, so its budget only covers a short blip.
func DefaultRetryBudget(p Provider) time.Duration {
	if p == SSH {
		return 30 * time.Second
	}
	return 5 * time.Minute
}

// Broker is the component. Its outputs form the target file.
type Broker struct {
	pulumi.ResourceState

	// Host is the address devices dial (the server's public IPv4).
	Host pulumi.StringOutput `pulumi:"host"`
	// ServerName is the TLS name devices verify.
	ServerName pulumi.StringOutput `pulumi:"serverName"`
	MQTTSPort  pulumi.IntOutput    `pulumi:"mqttsPort"`
	WSSURL     pulumi.StringOutput `pulumi:"wssUrl"`
	HTTPSURL   pulumi.StringOutput `pulumi:"httpsUrl"`
	// CACertPEM is the device CA certificate (public).
	CACertPEM pulumi.StringOutput `pulumi:"caCertPem"`
	// ConfigHash is the hash of the configuration as applied on the host
	// (every managed file's path, mode, owner and content hash).
	ConfigHash pulumi.StringOutput `pulumi:"configHash"`
	// SSHUser and SSHPort are how the host configuration logged in.
	SSHUser pulumi.StringOutput `pulumi:"sshUser"`
	SSHPort pulumi.IntOutput    `pulumi:"sshPort"`
	// HostKey is the host's pinned SSH key (authorized_keys line) and
	// HostKeyFingerprint its SHA256 fingerprint.
	HostKey            pulumi.StringOutput `pulumi:"hostKey"`
	HostKeyFingerprint pulumi.StringOutput `pulumi:"hostKeyFingerprint"`
	// MosquittoVersion and NginxVersion are what runs on the host.
	MosquittoVersion pulumi.StringOutput `pulumi:"mosquittoVersion"`
	NginxVersion     pulumi.StringOutput `pulumi:"nginxVersion"`
	// AcmeStatus is "" without Stack.PublicDomain, else the Let's Encrypt
	// certificate's state on the host: "issued", or "failed: <certbot's
	// message>" (DNS not pointing here yet, a rate limit): the
	// configuration is applied all the same, nginx keeps the private-CA
	// certificate, and the next up runs certbot again.
	AcmeStatus pulumi.StringOutput `pulumi:"acmeStatus"`
}

// New creates a broker. Every child is parented to it and named
// "<name>-<role>", so several brokers live side by side in one stack.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Broker, error) {
	if err := args.validate(name); err != nil {
		return nil, fmt.Errorf("broker %s: %w", name, err)
	}
	plan, err := Plan(args)
	if err != nil {
		return nil, fmt.Errorf("broker %s: %w", name, err)
	}

	b := &Broker{}
	if err := ctx.RegisterComponentResource(TypeToken, name, b, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(b)

	var host pulumi.StringOutput
	var deps []pulumi.Resource
	var serverID pulumi.StringInput
	switch args.Provider {
	case Hetzner:
		s, err := newHetzner(ctx, name, args, child)
		if err != nil {
			return nil, err
		}
		host, deps, serverID = s.host, s.deps, s.id
	case DigitalOcean:
		s, err := newDigitalOcean(ctx, name, args, child)
		if err != nil {
			return nil, err
		}
		host, deps, serverID = s.host, s.deps, s.id
	case SSH:
		host = pulumi.String(args.Connection.Host).ToStringOutput()
	}

	hc, err := newHostConfig(ctx, name, args, plan, host, serverID, child, pulumi.DependsOn(deps))
	if err != nil {
		return nil, err
	}

	s := args.Stack
	b.Host = host
	b.ServerName = pulumi.String(s.ServerName).ToStringOutput()
	b.MQTTSPort = pulumi.Int(s.MQTTSPort).ToIntOutput()
	b.WSSURL = pulumi.Sprintf("wss://%s%s/mqtt", s.ServerName, portSuffix(s.HTTPSPort))
	b.HTTPSURL = pulumi.Sprintf("https://%s%s/", s.ServerName, portSuffix(s.HTTPSPort))
	b.CACertPEM = pulumi.String(string(args.PKI.CACert)).ToStringOutput()
	b.ConfigHash = hc.ConfigHash
	b.SSHUser = pulumi.String(args.Connection.User).ToStringOutput()
	b.SSHPort = pulumi.Int(args.Connection.Port).ToIntOutput()
	b.HostKey = hc.HostKey
	b.HostKeyFingerprint = hc.HostKeyFingerprint
	b.MosquittoVersion = hc.MosquittoVersion
	b.NginxVersion = hc.NginxVersion
	b.AcmeStatus = hc.AcmeStatus
	if err := ctx.RegisterResourceOutputs(b, pulumi.Map{
		"host":               b.Host,
		"serverName":         b.ServerName,
		"mqttsPort":          b.MQTTSPort,
		"wssUrl":             b.WSSURL,
		"httpsUrl":           b.HTTPSURL,
		"caCertPem":          b.CACertPEM,
		"configHash":         b.ConfigHash,
		"sshUser":            b.SSHUser,
		"sshPort":            b.SSHPort,
		"hostKey":            b.HostKey,
		"hostKeyFingerprint": b.HostKeyFingerprint,
		"mosquittoVersion":   b.MosquittoVersion,
		"nginxVersion":       b.NginxVersion,
		"acmeStatus":         b.AcmeStatus,
	}); err != nil {
		return nil, err
	}
	return b, nil
}

func portSuffix(p int) string {
	if p == 443 {
		return ""
	}
	return fmt.Sprintf(":%d", p)
}

// HostPlan is exactly what a host receives from New, as HostConfig inputs:
// files by path (Secret ones carry keys and password hashes: only ever
// handed to Pulumi as secrets), the directories and packages that must
// exist, the daemons' main files that the provider validates, and with
// Stack.PublicDomain the Let's Encrypt request.
type HostPlan struct {
	Files           []PlannedFile
	Directories     map[string]hostres.Directory
	Packages        []string
	MosquittoConfig string
	NginxConfig     string
	Acme            *hostres.Acme
}

// PlannedFile is one file with the daemons that read it. Seed files are
// written only when absent (see hostres.File.Seed).
type PlannedFile struct {
	hostconfig.File
	Secret  bool
	Seed    bool
	Daemons []string
}

// Plan renders the host files of a broker (infra/hostconfig) and says, for
// each, whether it is secret and which daemons it belongs to.
func Plan(args Args) (HostPlan, error) {
	s := args.Stack
	files, err := hostconfig.Render(s)
	if err != nil {
		return HostPlan{}, err
	}
	passwd, err := passwordFile(args.PKI)
	if err != nil {
		return HostPlan{}, err
	}
	passwords, err := hostconfig.PasswordFiles(s, passwd)
	if err != nil {
		return HostPlan{}, err
	}
	pki := hostconfig.PKIFiles(s, args.PKI.CACert, args.PKI.CRL, args.PKI.ServerCert, args.PKI.ServerKey)
	p := s.Paths
	var plan HostPlan
	// With a public domain nginx's certificate and key are certbot's after
	// the first issuance (its deploy hook installs each renewal): the
	// private-CA pair only seeds them, so nginx can start and serve the
	// ACME webroot before the first certificate exists.
	seed := func(path string) bool { return s.PublicDomain && (path == p.NginxCert || path == p.NginxKey) }
	add := func(f hostconfig.File, secret bool) {
		plan.Files = append(plan.Files, PlannedFile{File: f, Secret: secret, Seed: seed(f.Path), Daemons: daemonsOf(s, f.Path)})
	}
	for _, f := range files {
		add(f, false)
	}
	for _, f := range pki {
		add(f, f.Path == p.ServerKey || f.Path == p.NginxKey)
	}
	for _, f := range passwords {
		add(f, true)
	}
	seen := map[string]bool{}
	for _, f := range plan.Files {
		if seen[f.Path] {
			return HostPlan{}, fmt.Errorf("host files: %s rendered twice", f.Path)
		}
		seen[f.Path] = true
	}
	plan.Directories = map[string]hostres.Directory{
		p.WebRoot:  {Mode: "0755", Owner: "root:root"},
		p.ACMERoot: {Mode: "0755", Owner: "root:root"},
		strings.TrimSuffix(p.PersistenceDir, "/"): {Mode: "0750", Owner: "mosquitto:mosquitto"},
		path.Dir(p.MosquittoLog):                  {Mode: "0750", Owner: "mosquitto:mosquitto"},
	}
	plan.Packages = []string{"certbot", "mosquitto", "nftables", "nginx"}
	plan.MosquittoConfig = p.MosquittoConf
	plan.NginxConfig = p.NginxConf
	if s.PublicDomain {
		plan.Acme = &hostres.Acme{Domain: s.ServerName, Email: s.ACMEEmail, Webroot: p.ACMERoot, DeployHook: p.DeployHook}
	}
	return plan, nil
}

// daemonsOf names the daemons that read a file: they are validated and
// reloaded (or restarted) when it changes.
func daemonsOf(s hostconfig.Stack, file string) []string {
	p := s.Paths
	switch {
	case strings.HasPrefix(file, p.SystemdDropins+"/"):
		return []string{hostres.Systemd}
	case file == p.NftablesConf:
		return []string{hostres.Nftables}
	case file == p.NginxConf || file == p.NginxCert || file == p.NginxKey:
		return []string{hostres.Nginx}
	case file == p.CAFile || file == p.CRLFile:
		return []string{hostres.Mosquitto, hostres.Nginx}
	case strings.HasPrefix(file, p.WebRoot+"/"), file == p.DeployHook:
		return nil // read per request / by certbot: no reload
	default:
		return []string{hostres.Mosquitto}
	}
}

// hostConfigArgs turns a plan into HostConfig inputs.
func hostConfigArgs(args Args, plan HostPlan, host pulumi.StringInput, serverID pulumi.StringInput) *hostres.HostConfigArgs {
	c := args.Connection
	budget := c.RetryBudget
	if budget == 0 {
		budget = DefaultRetryBudget(args.Provider)
	}
	h := &hostres.HostConfigArgs{
		Connection: hostres.Connection{
			Host:       host,
			Port:       c.Port,
			User:       c.User,
			PrivateKey: pulumi.ToSecret(c.PrivateKey).(pulumi.StringOutput),
		},
		ServerID:        serverID,
		Files:           map[string]hostres.File{},
		SecretFiles:     map[string]hostres.File{},
		Directories:     plan.Directories,
		Packages:        plan.Packages,
		MosquittoConfig: plan.MosquittoConfig,
		NginxConfig:     plan.NginxConfig,
		RetryBudget:     budget,
		Acme:            plan.Acme,
	}
	if c.HostKey != "" {
		h.Connection.HostKey = pulumi.String(c.HostKey)
	}
	for _, f := range plan.Files {
		owner := f.Owner
		if owner == "" {
			owner = "root:root"
		}
		hf := hostres.File{Content: pulumi.String(string(f.Content)), Mode: fmt.Sprintf("%04o", f.Mode.Perm()), Owner: owner, Daemons: f.Daemons, Seed: f.Seed}
		if f.Secret {
			h.SecretFiles[f.Path] = hf
		} else {
			h.Files[f.Path] = hf
		}
	}
	return h
}

// newHostConfig creates the HostConfig that configures the host over SSH.
// A cloud server's id is its ServerID: a replaced server gets a fresh
// HostConfig; any other change updates the host in place.
func newHostConfig(ctx *pulumi.Context, name string, args Args, plan HostPlan, host pulumi.StringOutput, serverID pulumi.StringInput, opts ...pulumi.ResourceOption) (*hostres.HostConfig, error) {
	return hostres.NewHostConfig(ctx, name+"-host", hostConfigArgs(args, plan, host, serverID), opts...)
}

var (
	physicalNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	notNameRE      = regexp.MustCompile(`[^a-z0-9-]+`)
)

func (a *Args) validate(name string) error {
	var errs []error
	add := func(format string, v ...any) { errs = append(errs, fmt.Errorf(format, v...)) }
	if !physicalNameRE.MatchString(name) {
		add("name %q: must be a lower-case host name (letters, digits, '-'), e.g. \"mqtt\"", name)
	}
	if a.Connection.User == "" {
		a.Connection.User = "root"
	}
	if a.Connection.Port == 0 {
		a.Connection.Port = 22
	}
	if a.Connection.RetryBudget < 0 {
		add("Connection.RetryBudget: %s is negative", a.Connection.RetryBudget)
	}
	if a.Connection.PrivateKey == nil {
		add("Connection.PrivateKey: required (provisioning runs over SSH)")
	}
	switch a.Provider {
	case Hetzner, DigitalOcean:
		if a.Cloud.Region == "" || a.Cloud.Size == "" {
			add("Cloud.Region and Cloud.Size: required for %s", a.Provider)
		}
		if a.Cloud.SSHKeyID == nil && a.Cloud.SSHPublicKey == "" {
			add("Cloud.SSHPublicKey: required for %s (or an existing Cloud.SSHKeyID)", a.Provider)
		}
		if a.Connection.Host != "" {
			add("Connection.Host: only for provider ssh; a cloud server's address is its own")
		}
		if a.Cloud.DNSZone != "" {
			if _, err := recordName(a.Stack.ServerName, a.Cloud.DNSZone); err != nil {
				errs = append(errs, err)
			}
		}
	case SSH:
		if a.Connection.Host == "" {
			add("Connection.Host: required for provider ssh")
		}
		if a.Connection.HostKey == "" {
			add("Connection.HostKey: required for provider ssh: the existing host's key is pinned (e.g. `ssh-keyscan -t ed25519 HOST`)")
		}
	default:
		add("Provider: %q is not one of %v", a.Provider, Providers)
	}
	if a.Stack.AdminCIDR == "" {
		// hostconfig opens 22 to the world without it; the component never does.
		add("Stack.AdminCIDR: required: SSH is opened only to it (e.g. \"203.0.113.7/32\")")
	} else if pfx, err := netip.ParsePrefix(a.Stack.AdminCIDR); err == nil && pfx.Bits() == 0 {
		add("Stack.AdminCIDR: %s opens SSH to the whole internet; give the operator's network (e.g. \"203.0.113.7/32\")", a.Stack.AdminCIDR)
	}
	if len(a.PKI.CACert) == 0 || len(a.PKI.ServerCert) == 0 || len(a.PKI.ServerKey) == 0 || len(a.PKI.CRL) == 0 {
		add("PKI: CA certificate, CRL, server certificate and server key are required (see LoadPKI)")
	}
	return errors.Join(errs...)
}

// recordName is the DNS record name of serverName inside zone: "mqtt" for
// "mqtt.example.com" in "example.com", "@" for the apex.
func recordName(serverName, zone string) (string, error) {
	zone = strings.TrimSuffix(strings.ToLower(zone), ".")
	sn := strings.ToLower(serverName)
	if sn == zone {
		return "@", nil
	}
	if r, ok := strings.CutSuffix(sn, "."+zone); ok && r != "" {
		return r, nil
	}
	return "", fmt.Errorf("Cloud.DNSZone: server name %q is not inside the zone %q (e.g. server name \"mqtt.%s\")", serverName, zone, zone)
}

// physicalName is the provider-side name: unique per stack and broker, so
// two stacks in one cloud project do not fight over a name.
func physicalName(ctx *pulumi.Context, name string) string {
	n := strings.ToLower(name + "-" + ctx.Stack())
	n = notNameRE.ReplaceAllString(n, "-")
	n = strings.Trim(n, "-")
	if len(n) > 63 {
		n = strings.TrimRight(n[:63], "-")
	}
	return n
}
