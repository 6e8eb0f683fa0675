// Package broker is the Pulumi component that puts an mqttstack on a VPS:
// the server (Hetzner Cloud, DigitalOcean, or an existing host reached over
// SSH), the provider firewall, a DNS record in the cloud's DNS, and the
// provisioning that installs Mosquitto, nginx and certbot from Debian's
// packages and writes the files rendered by infra/hostconfig.
//
// Provisioning always runs over SSH (remote.Command), for the clouds too,
// and never through cloud-init user data, for two reasons:
//
//   - user data is visible to every local process on the VPS through the
//     provider's metadata service and is kept by the provider's API; the
//     script carries the server key, which must only travel as a Pulumi
//     secret over SSH;
//   - a change to user data replaces the server on both clouds, so a
//     one-line ACL change would cost a new machine and a new address. The
//     provisioning command is instead keyed on a hash of the rendered files:
//     a change re-runs the idempotent script, which rewrites what differs
//     and reloads only the affected daemon. The server is left alone.
//
// One consequence: the machine running `pulumi up` must reach port 22 of the
// server, i.e. lie inside mqttstack:adminCidr.
package broker

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/mqttstack/mqttstack/infra/hostconfig"
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
	// HostKey pins the host's SSH public key; empty accepts any (the clouds'
	// fresh servers have unknown keys).
	HostKey string
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
	// ConfigHash identifies the rendered non-secret files; it changes
	// exactly when provisioning re-runs for a configuration change.
	ConfigHash pulumi.StringOutput `pulumi:"configHash"`
}

// New creates a broker. Every child is parented to it and named
// "<name>-<role>", so several brokers live side by side in one stack.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Broker, error) {
	if err := args.validate(name); err != nil {
		return nil, fmt.Errorf("broker %s: %w", name, err)
	}
	p, err := renderProvisioning(args)
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
	var serverID pulumi.StringInput = pulumi.String(args.Connection.Host)
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

	if _, err := newProvisioning(ctx, name, args, p, host, serverID, child, pulumi.DependsOn(deps)); err != nil {
		return nil, err
	}

	s := args.Stack
	b.Host = host
	b.ServerName = pulumi.String(s.ServerName).ToStringOutput()
	b.MQTTSPort = pulumi.Int(s.MQTTSPort).ToIntOutput()
	b.WSSURL = pulumi.Sprintf("wss://%s%s/mqtt", s.ServerName, portSuffix(s.HTTPSPort))
	b.HTTPSURL = pulumi.Sprintf("https://%s%s/", s.ServerName, portSuffix(s.HTTPSPort))
	b.CACertPEM = pulumi.String(string(args.PKI.CACert)).ToStringOutput()
	b.ConfigHash = pulumi.String(p.configHash).ToStringOutput()
	if err := ctx.RegisterResourceOutputs(b, pulumi.Map{
		"host":       b.Host,
		"serverName": b.ServerName,
		"mqttsPort":  b.MQTTSPort,
		"wssUrl":     b.WSSURL,
		"httpsUrl":   b.HTTPSURL,
		"caCertPem":  b.CACertPEM,
		"configHash": b.ConfigHash,
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

// Provisioning returns exactly what a host receives from New: the command
// run over SSH and the script fed to its stdin. The script carries the
// server key: store it like the key. The VPS rehearsal runs these bytes.
func Provisioning(a Args) (command string, script []byte, err error) {
	p, err := renderProvisioning(a)
	if err != nil {
		return "", nil, err
	}
	return remoteCommand, p.script, nil
}

// provisioning is the rendered input of the provisioning command.
type provisioning struct {
	script []byte // carries the server key: only ever handed over as a secret
	// configHash covers every file without secrets (paths, modes, owners,
	// bytes): shown in the clear, so a preview tells which change is coming.
	// scriptHash covers the whole script (keys, password file, and the
	// steps around the files), so that any change re-runs provisioning; it
	// is derived from the server key and is therefore kept secret.
	configHash string
	scriptHash string
}

// renderProvisioning renders the host files and the provisioning script.
func renderProvisioning(args Args) (provisioning, error) {
	s := args.Stack
	files, err := hostconfig.Render(s)
	if err != nil {
		return provisioning{}, err
	}
	public := slices.Clone(files)
	passwd, err := passwordFile(args.PKI)
	if err != nil {
		return provisioning{}, err
	}
	passwords, err := hostconfig.PasswordFiles(s, passwd)
	if err != nil {
		return provisioning{}, err
	}
	pki := hostconfig.PKIFiles(s, args.PKI.CACert, args.PKI.CRL, args.PKI.ServerCert, args.PKI.ServerKey)
	for _, f := range pki {
		if f.Path != s.Paths.ServerKey && f.Path != s.Paths.NginxKey {
			public = append(public, f)
		}
	}
	files = append(files, pki...)
	files = append(files, passwords...)

	script, err := hostconfig.ProvisionScript(s, files)
	if err != nil {
		return provisioning{}, err
	}
	sum := sha256.Sum256(script)
	return provisioning{script: script, configHash: hashFiles(public), scriptHash: hex.EncodeToString(sum[:])}, nil
}

// hashFiles is a SHA-256 over every file's path, mode, owner and bytes, in
// order. Lengths are written so that no two file lists collide.
func hashFiles(files []hostconfig.File) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%d:%s %o %s %d\n", len(f.Path), f.Path, f.Mode.Perm(), f.Owner, len(f.Content))
		h.Write(f.Content)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// remoteCommand runs the script as root: directly when the SSH user is
// root, through sudo otherwise. On a fresh cloud server it first waits for
// cloud-init (which installs the SSH key and may hold the apt lock).
const remoteCommand = `if command -v cloud-init >/dev/null 2>&1; then cloud-init status --wait >/dev/null 2>&1 || true; fi
if [ "$(id -u)" = 0 ]; then exec bash -s; else exec sudo -n bash -s; fi`

// newProvisioning creates the remote.Command that pipes the provisioning
// script into bash on the host. The script arrives on stdin (a secret), so
// it never lands in a command line or the process list.
func newProvisioning(ctx *pulumi.Context, name string, args Args, p provisioning, host pulumi.StringOutput, serverID pulumi.StringInput, opts ...pulumi.ResourceOption) (*remote.Command, error) {
	c := args.Connection
	conn := remote.ConnectionArgs{
		Host:       host,
		User:       pulumi.String(c.User),
		Port:       pulumi.Float64(float64(c.Port)),
		PrivateKey: pulumi.ToSecret(c.PrivateKey).(pulumi.StringOutput),
		// A fresh cloud server needs a minute before sshd answers.
		DialErrorLimit: pulumi.Int(40),
		PerDialTimeout: pulumi.Int(15),
	}
	if c.HostKey != "" {
		conn.HostKey = pulumi.String(c.HostKey)
	}
	return remote.NewCommand(ctx, name+"-provision", &remote.CommandArgs{
		Connection: conn,
		Create:     pulumi.String(remoteCommand),
		Stdin:      pulumi.ToSecret(pulumi.String(string(p.script))).(pulumi.StringOutput),
		// Replacing this command (not the server) is what re-provisions:
		// the hashes change with the files; the server id re-runs the script
		// on a replacement server.
		Triggers: pulumi.Array{
			pulumi.String(p.configHash),
			pulumi.ToSecret(pulumi.String(p.scriptHash)),
			serverID,
		},
		AddPreviousOutputInEnv: pulumi.Bool(false),
	}, opts...)
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
