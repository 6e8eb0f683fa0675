package broker

import (
	"strconv"

	"github.com/pulumi/pulumi-digitalocean/sdk/v4/go/digitalocean"
	"github.com/pulumi/pulumi-hcloud/sdk/go/hcloud"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The cloud provider plugins a user's Pulumi CLI needs, pinned by the SDK
// versions in go.mod (each SDK asks the engine for its own version):
// `pulumi plugin install resource hcloud v1.41.0` and `… digitalocean
// v4.45.0`, or the CLI downloads them on the first `up`. TestPluginVersions
// fails when an SDK upgrade changes them, so README and these move together.
const (
	HcloudPluginVersion       = "1.41.0"
	DigitalOceanPluginVersion = "4.45.0"
)

// server is what every cloud provider hands back to the component.
type server struct {
	host pulumi.StringOutput // public IPv4
	id   pulumi.StringOutput // changes when the server is replaced
	deps []pulumi.Resource   // must exist before provisioning (firewall, DNS)
}

// world is every address, v4 and v6.
var world = []string{"0.0.0.0/0", "::/0"}

// ingress is the whole inbound policy of a broker: the three public ports
// from anywhere, SSH from the admin network, nothing else. Both cloud
// firewalls are built from this one list, and the tests check it.
type ingressRule struct {
	port    int
	sources []string
	why     string
}

func ingress(a Args) []ingressRule {
	s := a.Stack
	return []ingressRule{
		{s.MQTTSPort, world, "MQTT over mTLS (devices)"},
		{s.HTTPSPort, world, "nginx: WSS /mqtt, status page, /ca.crt"},
		{s.HTTPPort, world, "nginx: ACME http-01 and redirect to https"},
		{22, []string{s.AdminCIDR}, "SSH from the admin network only"},
	}
}

func idToInt(id pulumi.IDOutput) pulumi.IntOutput {
	return id.ApplyT(func(id pulumi.ID) (int, error) { return strconv.Atoi(string(id)) }).(pulumi.IntOutput)
}

func newHetzner(ctx *pulumi.Context, name string, a Args, opts ...pulumi.ResourceOption) (server, error) {
	var rules hcloud.FirewallRuleArray
	for _, r := range ingress(a) {
		rules = append(rules, hcloud.FirewallRuleArgs{
			Direction:   pulumi.String("in"),
			Protocol:    pulumi.String("tcp"),
			Port:        pulumi.String(strconv.Itoa(r.port)),
			SourceIps:   pulumi.ToStringArray(r.sources),
			Description: pulumi.String(r.why),
		})
	}
	// No "out" rules: Hetzner then allows all outbound traffic (apt,
	// certbot, DNS, NTP).
	fw, err := hcloud.NewFirewall(ctx, name+"-firewall", &hcloud.FirewallArgs{
		Name:  pulumi.String(physicalName(ctx, name)),
		Rules: rules,
	}, opts...)
	if err != nil {
		return server{}, err
	}
	keyID := a.Cloud.SSHKeyID
	if keyID == nil {
		k, err := hcloud.NewSshKey(ctx, name+"-sshkey", &hcloud.SshKeyArgs{
			Name:      pulumi.String(physicalName(ctx, name)),
			PublicKey: pulumi.String(a.Cloud.SSHPublicKey),
		}, opts...)
		if err != nil {
			return server{}, err
		}
		keyID = k.ID().ToStringOutput()
	}
	image := a.Cloud.Image
	if image == "" {
		image = "debian-12"
	}
	srv, err := hcloud.NewServer(ctx, name+"-server", &hcloud.ServerArgs{
		Name:        pulumi.String(physicalName(ctx, name)),
		Image:       pulumi.String(image),
		ServerType:  pulumi.String(a.Cloud.Size),
		Location:    pulumi.String(a.Cloud.Region),
		SshKeys:     pulumi.StringArray{keyID},
		FirewallIds: pulumi.IntArray{idToInt(fw.ID())},
		PublicNets: hcloud.ServerPublicNetArray{hcloud.ServerPublicNetArgs{
			Ipv4Enabled: pulumi.Bool(true),
			Ipv6Enabled: pulumi.Bool(true),
		}},
		Labels: pulumi.StringMap{"mqttstack": pulumi.String(name)},
	}, opts...)
	if err != nil {
		return server{}, err
	}
	deps := []pulumi.Resource{fw, srv}
	if a.Cloud.DNSZone != "" {
		rec, _ := recordName(a.Stack.ServerName, a.Cloud.DNSZone) // validated in New
		r, err := hcloud.NewZoneRrset(ctx, name+"-dns", &hcloud.ZoneRrsetArgs{
			Zone: pulumi.String(a.Cloud.DNSZone),
			Name: pulumi.String(rec),
			Type: pulumi.String("A"),
			Records: hcloud.ZoneRrsetRecordArray{hcloud.ZoneRrsetRecordArgs{
				Value: srv.Ipv4Address,
			}},
			// Short, so a replaced server's new address is picked up fast.
			Ttl: pulumi.Int(300),
		}, opts...)
		if err != nil {
			return server{}, err
		}
		deps = append(deps, r)
	}
	return server{host: srv.Ipv4Address, id: srv.ID().ToStringOutput(), deps: deps}, nil
}

func newDigitalOcean(ctx *pulumi.Context, name string, a Args, opts ...pulumi.ResourceOption) (server, error) {
	keyID := a.Cloud.SSHKeyID
	if keyID == nil {
		k, err := digitalocean.NewSshKey(ctx, name+"-sshkey", &digitalocean.SshKeyArgs{
			Name:      pulumi.String(physicalName(ctx, name)),
			PublicKey: pulumi.String(a.Cloud.SSHPublicKey),
		}, opts...)
		if err != nil {
			return server{}, err
		}
		keyID = k.Fingerprint
	}
	image := a.Cloud.Image
	if image == "" {
		image = "debian-12-x64"
	}
	d, err := digitalocean.NewDroplet(ctx, name+"-server", &digitalocean.DropletArgs{
		Name:    pulumi.String(physicalName(ctx, name)),
		Image:   pulumi.String(image),
		Region:  pulumi.String(a.Cloud.Region),
		Size:    pulumi.String(a.Cloud.Size),
		SshKeys: pulumi.StringArray{keyID},
		Ipv6:    pulumi.Bool(true),
		Tags:    pulumi.StringArray{pulumi.String("mqttstack")},
	}, opts...)
	if err != nil {
		return server{}, err
	}
	var in digitalocean.FirewallInboundRuleArray
	for _, r := range ingress(a) {
		in = append(in, digitalocean.FirewallInboundRuleArgs{
			Protocol:        pulumi.String("tcp"),
			PortRange:       pulumi.String(strconv.Itoa(r.port)),
			SourceAddresses: pulumi.ToStringArray(r.sources),
		})
	}
	// A DigitalOcean firewall without outbound rules blocks all egress;
	// the host needs apt, certbot, DNS and NTP.
	var out digitalocean.FirewallOutboundRuleArray
	for _, proto := range []string{"tcp", "udp"} {
		out = append(out, digitalocean.FirewallOutboundRuleArgs{
			Protocol:             pulumi.String(proto),
			PortRange:            pulumi.String("all"),
			DestinationAddresses: pulumi.ToStringArray(world),
		})
	}
	out = append(out, digitalocean.FirewallOutboundRuleArgs{
		Protocol:             pulumi.String("icmp"),
		DestinationAddresses: pulumi.ToStringArray(world),
	})
	fw, err := digitalocean.NewFirewall(ctx, name+"-firewall", &digitalocean.FirewallArgs{
		Name:          pulumi.String(physicalName(ctx, name)),
		DropletIds:    pulumi.IntArray{idToInt(d.ID())},
		InboundRules:  in,
		OutboundRules: out,
	}, opts...)
	if err != nil {
		return server{}, err
	}
	deps := []pulumi.Resource{d, fw}
	if a.Cloud.DNSZone != "" {
		rec, _ := recordName(a.Stack.ServerName, a.Cloud.DNSZone) // validated in New
		r, err := digitalocean.NewDnsRecord(ctx, name+"-dns", &digitalocean.DnsRecordArgs{
			Domain: pulumi.String(a.Cloud.DNSZone),
			Type:   pulumi.String("A"),
			Name:   pulumi.String(rec),
			Value:  d.Ipv4Address,
			// Short, so a replaced droplet's new address is picked up fast.
			Ttl: pulumi.Int(300),
		}, opts...)
		if err != nil {
			return server{}, err
		}
		deps = append(deps, r)
	}
	return server{host: d.Ipv4Address, id: d.ID().ToStringOutput(), deps: deps}, nil
}
