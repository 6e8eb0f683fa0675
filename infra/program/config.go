package program

import (
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/mqttstack/mqttstack/infra/broker"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
)

// namespace is the config namespace (the project name in Pulumi.yaml).
const namespace = "mqttstack"

// stackConfig is the validated stack configuration. Pulumi.example.yaml
// documents every key.
type stackConfig struct {
	provider   broker.Provider
	serverName string
	public     bool // mqttstack:domain set: public DNS, certbot for nginx
	acmeEmail  string
	adminCIDR  string
	ipv6       bool

	region, size, image string
	sshPublicKey        string
	dnsZone             string // mqttstack:hcloudZone or mqttstack:digitaloceanDomain

	sshHost, sshUser, sshHostKey string
	sshPort                      int
	sshRetryBudget               time.Duration
	sshPrivateKey                pulumi.StringOutput

	statusAllow []string
	pkiDir      string
	pki         broker.PKI
}

// defaults per cloud: small, cheap, Debian 12.
var cloudDefaults = map[broker.Provider]struct{ region, size string }{
	broker.Hetzner:      {"fsn1", "cx22"},
	broker.DigitalOcean: {"fra1", "s-1vcpu-1gb"},
}

var (
	dnsNameRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
	userRE    = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
)

// loadConfig reads every key with Try*/Get* (never Require*, which panics
// on the first missing key) and returns all problems at once, each naming
// its key and an example value.
func loadConfig(ctx *pulumi.Context) (stackConfig, error) {
	var c stackConfig
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s:%s: %s", namespace, key, fmt.Sprintf(format, a...)))
	}
	get := func(key string) string { return strings.TrimSpace(config.Get(ctx, namespace+":"+key)) }

	switch p := broker.Provider(get("provider")); p {
	case broker.Hetzner, broker.DigitalOcean, broker.SSH:
		c.provider = p
	case "":
		bad("provider", "required: one of %v (e.g. `pulumi config set mqttstack:provider hcloud`)", broker.Providers)
	default:
		bad("provider", "%q is not one of %v (e.g. hcloud)", p, broker.Providers)
	}

	domain := strings.ToLower(get("domain"))
	c.serverName = strings.ToLower(get("serverName"))
	switch {
	case domain != "" && !dnsNameRE.MatchString(domain):
		bad("domain", "%q is not a public DNS name (e.g. mqtt.example.com)", domain)
	case domain != "" && c.serverName != "" && c.serverName != domain:
		bad("serverName", "%q differs from mqttstack:domain %q: with a public domain the TLS name is the domain; drop serverName or make them equal", c.serverName, domain)
	case domain != "":
		c.serverName, c.public = domain, true
	case c.serverName == "":
		bad("serverName", "required unless mqttstack:domain is set: the TLS name devices verify, a SAN of <pkiDir>/server.crt (e.g. mqtt.example.com)")
	case !dnsNameRE.MatchString(c.serverName):
		bad("serverName", "%q is not a DNS name (e.g. mqtt.example.com)", c.serverName)
		c.serverName = "" // no certificate check against a name that cannot be one
	}
	c.acmeEmail = get("acmeEmail")
	if c.public && !strings.Contains(c.acmeEmail, "@") {
		bad("acmeEmail", "required with mqttstack:domain: Let's Encrypt sends expiry notices there (e.g. ops@example.com)")
	}
	if !c.public && c.acmeEmail != "" {
		bad("acmeEmail", "set without mqttstack:domain: certbot runs only for a public domain (set mqttstack:domain, e.g. mqtt.example.com, or remove acmeEmail)")
	}

	c.adminCIDR = get("adminCidr")
	if c.adminCIDR == "" {
		bad("adminCidr", "required: the only network that may reach SSH, and where `pulumi up` runs from (e.g. 203.0.113.7/32)")
	} else if pfx, err := netip.ParsePrefix(c.adminCIDR); err != nil {
		bad("adminCidr", "%q is not a CIDR (e.g. 203.0.113.7/32)", c.adminCIDR)
	} else if pfx.Bits() == 0 {
		bad("adminCidr", "%q would open SSH to the whole internet; give the operator's network (e.g. 203.0.113.7/32)", c.adminCIDR)
	} else {
		c.adminCIDR = pfx.Masked().String()
	}

	if v, err := config.TryBool(ctx, namespace+":ipv6"); err == nil {
		c.ipv6 = v
	} else if get("ipv6") != "" {
		bad("ipv6", "%q is not a boolean (e.g. true)", get("ipv6"))
	}
	if v := get("statusAllow"); v != "" {
		if err := config.TryObject(ctx, namespace+":statusAllow", &c.statusAllow); err != nil {
			bad("statusAllow", "not a list of CIDRs (e.g. [\"203.0.113.0/24\"]): %v", err)
		}
		for i, cidr := range c.statusAllow {
			if _, err := netip.ParsePrefix(cidr); err != nil {
				bad("statusAllow", "[%d] %q is not a CIDR (e.g. 203.0.113.0/24)", i, cidr)
			}
		}
	}

	c.region, c.size, c.image = get("region"), get("size"), get("image")
	c.sshPublicKey = get("sshPublicKey")
	// The zone key is named after the cloud whose DNS holds it, so that a
	// zone of the other cloud is not mistaken for one this stack manages.
	zoneKey := map[broker.Provider]string{broker.Hetzner: "hcloudZone", broker.DigitalOcean: "digitaloceanDomain"}[c.provider]
	for _, k := range []string{"hcloudZone", "digitaloceanDomain"} {
		if v := get(k); v != "" && k != zoneKey {
			bad(k, "only for provider %s", map[string]string{"hcloudZone": "hcloud", "digitaloceanDomain": "digitalocean"}[k])
		}
	}
	if zoneKey != "" {
		c.dnsZone = strings.TrimSuffix(strings.ToLower(get(zoneKey)), ".")
	}
	c.sshHost, c.sshUser, c.sshHostKey = get("ssh.host"), get("ssh.user"), get("ssh.hostKey")
	if c.sshUser == "" {
		c.sshUser = "root"
	} else if !userRE.MatchString(c.sshUser) {
		bad("ssh.user", "%q is not a user name (e.g. admin; a non-root user needs passwordless sudo)", c.sshUser)
	}
	c.sshPort = 22
	if v := get("ssh.port"); v != "" {
		n, err := config.TryInt(ctx, namespace+":ssh.port")
		if err != nil || n < 1 || n > 65535 {
			bad("ssh.port", "%q is not a TCP port (e.g. 22)", v)
		}
		c.sshPort = n
	}
	if c.sshHostKey != "" {
		if f := strings.Fields(c.sshHostKey); len(f) < 2 || !(strings.HasPrefix(f[0], "ssh-") || strings.HasPrefix(f[0], "ecdsa-")) {
			bad("ssh.hostKey", "%q is not an authorized_keys line (e.g. \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA…\", from `ssh-keyscan -t ed25519 HOST` without the host name)", c.sshHostKey)
		} else {
			c.sshHostKey = f[0] + " " + f[1]
		}
	}
	if v := get("ssh.retryBudget"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > time.Hour {
			bad("ssh.retryBudget", "%q is not a duration between 1s and 1h (e.g. 2m)", v)
		}
		c.sshRetryBudget = d
	}
	switch c.provider {
	case broker.Hetzner, broker.DigitalOcean:
		d := cloudDefaults[c.provider]
		if c.region == "" {
			c.region = d.region
		}
		if c.size == "" {
			c.size = d.size
		}
		if c.sshPublicKey == "" {
			bad("sshPublicKey", "required for %s: the OpenSSH public key installed for root (e.g. \"ssh-ed25519 AAAAC3Nza… ops@laptop\")", c.provider)
		} else if !strings.HasPrefix(c.sshPublicKey, "ssh-") && !strings.HasPrefix(c.sshPublicKey, "ecdsa-") {
			bad("sshPublicKey", "does not look like an OpenSSH public key (e.g. \"ssh-ed25519 AAAAC3Nza… ops@laptop\")")
		}
		if c.sshHost != "" {
			bad("ssh.host", "only for provider ssh: a %s server's address is its own", c.provider)
		}
		if c.dnsZone != "" && c.serverName != "" && c.serverName != c.dnsZone && !strings.HasSuffix(c.serverName, "."+c.dnsZone) {
			bad(zoneKey, "%q does not contain the server name %q (e.g. example.com for mqtt.example.com)", c.dnsZone, c.serverName)
		}
	case broker.SSH:
		if c.sshHost == "" {
			bad("ssh.host", "required for provider ssh: the existing host's address (e.g. 198.51.100.20)")
		} else if _, err := netip.ParseAddr(c.sshHost); err != nil && !dnsNameRE.MatchString(strings.ToLower(c.sshHost)) {
			bad("ssh.host", "%q is neither an IP address nor a host name (e.g. 198.51.100.20)", c.sshHost)
		}
		if c.sshHostKey == "" {
			bad("ssh.hostKey", "required for provider ssh: the host's key is pinned, never trusted blindly (e.g. the ed25519 line of `ssh-keyscan -t ed25519 %s`, without the host name)", orExample(c.sshHost))
		}
		for _, k := range []string{"region", "size", "image", "sshPublicKey"} {
			if get(k) != "" {
				bad(k, "has no meaning for provider ssh (the host exists already); remove it")
			}
		}
	}

	// The SSH private key: read as a secret, refused if stored in the clear.
	keyName := namespace + ":ssh.privateKey"
	if raw, ok := ctx.GetConfig(keyName); !ok || strings.TrimSpace(raw) == "" {
		bad("ssh.privateKey", "required: provisioning runs over SSH (`mqttstack deploy config set --secret mqttstack:ssh.privateKey < ~/.ssh/id_ed25519`, or `pulumi config set --secret …` with the same arguments)")
	} else if !ctx.IsConfigSecret(keyName) {
		bad("ssh.privateKey", "is stored in plain text; set it with --secret (`pulumi config set --secret mqttstack:ssh.privateKey < ~/.ssh/id_ed25519`)")
	} else if blk, _ := pem.Decode([]byte(raw)); blk == nil || !strings.Contains(blk.Type, "PRIVATE KEY") {
		bad("ssh.privateKey", "is not a PEM private key (e.g. the contents of ~/.ssh/id_ed25519)")
	} else if out, err := config.TrySecret(ctx, keyName); err == nil {
		c.sshPrivateKey = out
	}

	c.pkiDir = get("pkiDir")
	if c.pkiDir == "" {
		bad("pkiDir", "required: the PKI directory from `mqttstack certs init` (e.g. .mqttstack/pki, the default of `mqttstack certs init`); only ca.crt, ca.crl, server.* and clients/*.pass are read, never ca.key")
	} else if c.serverName != "" {
		dir := c.pkiDir
		if !filepath.IsAbs(dir) && ctx.RootDirectory() != "" {
			dir = filepath.Join(ctx.RootDirectory(), dir)
		}
		p, err := broker.LoadPKI(dir, c.serverName)
		if err != nil {
			bad("pkiDir", "%v", err)
		}
		c.pki = p
	}
	return c, errors.Join(errs...)
}

// brokerArgs turns the configuration into the component's arguments.
func (c stackConfig) brokerArgs() broker.Args {
	s := hostconfig.VPSStack(c.serverName)
	s.PublicDomain = c.public
	s.ACMEEmail = c.acmeEmail
	s.AdminCIDR = c.adminCIDR
	s.IPv6 = c.ipv6
	s.StatusAllow = slices.Clone(c.statusAllow)
	a := broker.Args{
		Provider: c.provider,
		Stack:    s,
		PKI:      c.pki,
		Connection: broker.Connection{
			User:        c.sshUser,
			Port:        c.sshPort,
			PrivateKey:  c.sshPrivateKey,
			HostKey:     c.sshHostKey,
			RetryBudget: c.sshRetryBudget,
		},
	}
	if c.provider == broker.SSH {
		a.Connection.Host = c.sshHost
	} else {
		a.Cloud = broker.Cloud{
			Region:       c.region,
			Size:         c.size,
			Image:        c.image,
			SSHPublicKey: c.sshPublicKey,
			DNSZone:      c.dnsZone,
		}
	}
	return a
}

func orExample(host string) string {
	if host == "" {
		return "198.51.100.20"
	}
	return host
}
