package broker_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi-digitalocean/sdk/v4/go/digitalocean"
	"github.com/pulumi/pulumi-hcloud/sdk/go/hcloud"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/mqttstack/mqttstack/infra/broker"
	"github.com/mqttstack/mqttstack/infra/broker/brokertest"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/infra/hostres"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	adminCIDR  = "198.51.100.7/32"
	serverName = "mqtt.example.com"
	sshHost    = "192.0.2.44"
	hostTyp    = brokertest.HostConfigToken
	sshHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	// serverKeyMarker is inside the fake server key: it must never appear
	// in an input that is not marked secret.
	serverKeyMarker = "SERVER-KEY-MATERIAL-FOR-TESTS"
)

// fakePKI is fixed bytes, so the golden files are stable. The component
// does not parse certificates (LoadPKI does, and is tested on a real PKI).
func fakePKI() broker.PKI {
	return broker.PKI{
		CACert:     []byte("-----BEGIN CERTIFICATE-----\nCA-CERT-FOR-TESTS\n-----END CERTIFICATE-----\n"),
		CRL:        []byte("-----BEGIN X509 CRL-----\nCRL-FOR-TESTS\n-----END X509 CRL-----\n"),
		ServerCert: []byte("-----BEGIN CERTIFICATE-----\nSERVER-CERT-FOR-TESTS\n-----END CERTIFICATE-----\n"),
		ServerKey:  []byte("-----BEGIN PRIVATE KEY-----\n" + serverKeyMarker + "-0123456789abcdefghijklmnopqrstuvwxyz\n-----END PRIVATE KEY-----\n"),
		Passwords:  map[string]string{"observer": "pw-observer", "backend": "pw-backend", "dev-0001": "pw-dev-0001"},
	}
}

func args(p broker.Provider) broker.Args {
	s := hostconfig.VPSStack(serverName)
	s.AdminCIDR = adminCIDR
	a := broker.Args{
		Provider: p,
		Stack:    s,
		PKI:      fakePKI(),
		Connection: broker.Connection{
			PrivateKey: pulumi.ToSecret(pulumi.String("-----BEGIN OPENSSH PRIVATE KEY-----\nSSH-KEY-FOR-TESTS\n-----END OPENSSH PRIVATE KEY-----\n")).(pulumi.StringOutput),
		},
	}
	switch p {
	case broker.Hetzner:
		a.Cloud = broker.Cloud{Region: "fsn1", Size: "cx22", SSHPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKey ops@test", DNSZone: "example.com"}
	case broker.DigitalOcean:
		a.Cloud = broker.Cloud{Region: "fra1", Size: "s-1vcpu-1gb", SSHPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKey ops@test", DNSZone: "example.com"}
	case broker.SSH:
		a.Connection.Host = sshHost
		a.Connection.HostKey = sshHostKey
	}
	return a
}

// run runs body under the mocks (preview when dryRun) and fails the test on
// an error.
func run(t *testing.T, dryRun bool, body pulumi.RunFunc) *brokertest.Mocks {
	t.Helper()
	m := brokertest.New("mqttstack", "test")
	err := pulumi.RunErr(body, pulumi.WithMocks(m.Project, m.Stack, m), func(ri *pulumi.RunInfo) { ri.DryRun = dryRun })
	if err != nil {
		t.Fatalf("program: %v", err)
	}
	return m
}

func newBroker(name string, a broker.Args) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		_, err := broker.New(ctx, name, a)
		return err
	}
}

func one(t *testing.T, m *brokertest.Mocks, typ string) brokertest.Resource {
	t.Helper()
	rs := m.OfType(typ)
	if len(rs) != 1 {
		t.Fatalf("%d resources of type %s, want 1", len(rs), typ)
	}
	return rs[0]
}

// firewallRule is one inbound rule reduced to what matters.
type firewallRule struct {
	proto, port string
	sources     []string
}

func inboundRules(t *testing.T, fw brokertest.Resource, list, port, sources string, direction bool) []firewallRule {
	t.Helper()
	v, ok := fw.Inputs[resource.PropertyKey(list)]
	if !ok || !v.IsArray() {
		t.Fatalf("firewall %s has no %s array: %v", fw.Name, list, fw.Inputs)
	}
	var out []firewallRule
	for _, r := range v.ArrayValue() {
		o := r.ObjectValue()
		if direction && o["direction"].StringValue() != "in" {
			continue
		}
		fr := firewallRule{proto: o["protocol"].StringValue()}
		if p, ok := o[resource.PropertyKey(port)]; ok && p.IsString() {
			fr.port = p.StringValue()
		}
		for _, s := range o[resource.PropertyKey(sources)].ArrayValue() {
			fr.sources = append(fr.sources, s.StringValue())
		}
		out = append(out, fr)
	}
	return out
}

func TestFirewallOpensOnlyThePublicPortsAndSSHFromAdmin(t *testing.T) {
	world := []string{"0.0.0.0/0", "::/0"}
	want := map[string][]string{"8883": world, "443": world, "80": world, "22": {adminCIDR}}
	for _, tc := range []struct {
		provider                 broker.Provider
		typ, list, port, sources string
		direction                bool
	}{
		{broker.Hetzner, "hcloud:index/firewall:Firewall", "rules", "port", "sourceIps", true},
		{broker.DigitalOcean, "digitalocean:index/firewall:Firewall", "inboundRules", "portRange", "sourceAddresses", false},
	} {
		t.Run(string(tc.provider), func(t *testing.T) {
			m := run(t, false, newBroker("mqtt", args(tc.provider)))
			rules := inboundRules(t, one(t, m, tc.typ), tc.list, tc.port, tc.sources, tc.direction)
			got := map[string][]string{}
			for _, r := range rules {
				if r.proto != "tcp" {
					t.Errorf("inbound rule for protocol %q (port %q): only tcp is opened", r.proto, r.port)
				}
				if _, dup := got[r.port]; dup {
					t.Errorf("port %s opened by two rules", r.port)
				}
				got[r.port] = r.sources
				if r.port == "22" && (slices.Contains(r.sources, "0.0.0.0/0") || slices.Contains(r.sources, "::/0")) {
					t.Errorf("SSH is open to the world: %v", r.sources)
				}
				if strings.Contains(r.port, "-") || r.port == "" || r.port == "all" {
					t.Errorf("inbound port range %q: only single ports are opened", r.port)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("inbound rules = %v, want exactly %v", got, want)
			}
		})
	}
}

func TestHetznerServerUsesFirewallAndKey(t *testing.T) {
	m := run(t, false, newBroker("mqtt", args(broker.Hetzner)))
	srv := one(t, m, "hcloud:index/server:Server")
	if img, _, _ := srv.Str("image"); img != "debian-12" {
		t.Errorf("image = %q, want debian-12", img)
	}
	if ids := srv.Inputs["firewallIds"]; !ids.IsArray() || len(ids.ArrayValue()) != 1 {
		t.Errorf("firewallIds = %v, want the broker's firewall", ids)
	}
	if keys := srv.Inputs["sshKeys"]; !keys.IsArray() || len(keys.ArrayValue()) != 1 {
		t.Errorf("sshKeys = %v, want the broker's key", keys)
	}
	if _, ok := srv.Inputs["userData"]; ok {
		t.Errorf("server has user data: provisioning must travel over SSH only (secrets, no replacement on change)")
	}
}

func TestDNSRecordPointsAtTheServer(t *testing.T) {
	for _, tc := range []struct {
		p              broker.Provider
		typ, zone, val string
		ip             string
	}{
		{broker.Hetzner, "hcloud:index/zoneRrset:ZoneRrset", "zone", "records[0].value", brokertest.HetznerIPv4},
		{broker.DigitalOcean, "digitalocean:index/dnsRecord:DnsRecord", "domain", "value", brokertest.DigitalOceanIPv4},
	} {
		t.Run(string(tc.p), func(t *testing.T) {
			m := run(t, false, newBroker("mqtt", args(tc.p)))
			rec := one(t, m, tc.typ)
			for k, want := range map[string]string{tc.zone: "example.com", "type": "A", "name": "mqtt", tc.val: tc.ip} {
				if got, _, _ := rec.Str(k); got != want {
					t.Errorf("dns record %s = %q, want %q", k, got, want)
				}
			}
			// The host configuration (certbot for a public name) waits for the record.
			cmd := one(t, m, hostTyp)
			if !slices.Contains(cmd.Dependencies, rec.URN) {
				t.Errorf("provisioning does not depend on the DNS record: %v", cmd.Dependencies)
			}
			if host, _, _ := cmd.Str("connection.host"); host != tc.ip {
				t.Errorf("provisioning connects to %q, want the server %s", host, tc.ip)
			}
		})
	}
}

func TestDNSZoneMustContainServerName(t *testing.T) {
	a := args(broker.DigitalOcean)
	a.Cloud.DNSZone = "example.org"
	m := brokertest.New("mqttstack", "test")
	err := pulumi.RunErr(newBroker("mqtt", a), pulumi.WithMocks(m.Project, m.Stack, m))
	if err == nil || !strings.Contains(err.Error(), "Cloud.DNSZone") || !strings.Contains(err.Error(), "example.org") {
		t.Fatalf("err = %v, want a Cloud.DNSZone error naming the zone", err)
	}
}

// decodeScriptFiles pulls the base64 file bodies back out of a provisioning
// script (a line "... put_file PATH ... <<'MQTTSTACK_EOF'", base64, the
// delimiter).
// hostFile is one file of a HostConfig's inputs.
type hostFile struct {
	content, mode, owner string
	secret               bool // the content is a Pulumi secret
	seed                 bool // create only (written when absent)
	daemons              []string
}

// hostFiles reads files and secretFiles of a HostConfig registration.
func hostFiles(t *testing.T, r brokertest.Resource) map[string]hostFile {
	t.Helper()
	out := map[string]hostFile{}
	for _, list := range []resource.PropertyKey{"files", "secretFiles"} {
		v, ok := r.Inputs[list]
		if !ok {
			continue
		}
		if !v.IsObject() {
			t.Fatalf("%s is not an object: %v", list, v)
		}
		for path, fv := range v.ObjectValue() {
			if _, dup := out[string(path)]; dup {
				t.Errorf("%s is in files and secretFiles", path)
			}
			o := fv.ObjectValue()
			var f hostFile
			c := o["content"]
			if c.IsSecret() {
				f.secret, c = true, c.SecretValue().Element
			}
			f.content = c.StringValue()
			if m, ok := o["mode"]; ok {
				f.mode = m.StringValue()
			}
			if m, ok := o["owner"]; ok {
				f.owner = m.StringValue()
			}
			if d, ok := o["daemons"]; ok {
				for _, e := range d.ArrayValue() {
					f.daemons = append(f.daemons, e.StringValue())
				}
			}
			if sd, ok := o["seed"]; ok {
				f.seed = sd.BoolValue()
			}
			out[string(path)] = f
		}
	}
	return out
}

func TestServerKeyReachesTheHostOnlyAsASecret(t *testing.T) {
	key := string(fakePKI().ServerKey)
	for _, p := range broker.Providers {
		t.Run(string(p), func(t *testing.T) {
			m := run(t, false, newBroker("mqtt", args(p)))
			for _, r := range m.Resources() {
				for path, v := range r.PlainStrings() {
					if strings.Contains(v, serverKeyMarker) {
						t.Errorf("%s %s: input %s carries the server key in the clear", r.Type, r.Name, path)
					}
					if strings.Contains(v, "SSH-KEY-FOR-TESTS") {
						t.Errorf("%s %s: input %s carries the SSH private key in the clear", r.Type, r.Name, path)
					}
				}
			}
			hc := one(t, m, hostTyp)
			files := hostFiles(t, hc)
			vps := hostconfig.VPSPaths()
			if f := files[vps.ServerKey]; f.content != key || !f.secret || f.mode != "0600" {
				t.Errorf("server key %s: secret=%v mode=%s, equal=%v; want the key as a secret, 0600", vps.ServerKey, f.secret, f.mode, f.content == key)
			}
			if f := files[vps.CAFile]; f.content != string(fakePKI().CACert) || f.secret {
				t.Errorf("CA certificate %s: secret=%v equal=%v; want it in the clear (a preview shows its diff)", vps.CAFile, f.secret, f.content == string(fakePKI().CACert))
			}
			for path, f := range files {
				if strings.Contains(f.content, "CA PRIVATE KEY") || strings.HasSuffix(path, "ca.key") {
					t.Errorf("%s: the CA key must never leave the operator's machine", path)
				}
				if strings.Contains(f.content, "$7$") && !f.secret {
					t.Errorf("%s: a password file is not a secret", path)
				}
			}
			if _, secret, _ := hc.Str("connection.privateKey"); !secret {
				t.Errorf("the SSH private key is not a secret in the connection")
			}
		})
	}
}

func TestTwoBrokersInOneStackDoNotCollide(t *testing.T) {
	for _, p := range broker.Providers {
		t.Run(string(p), func(t *testing.T) {
			a, b := args(p), args(p)
			b.Stack = hostconfig.VPSStack("mqtt2.example.com")
			b.Stack.AdminCIDR = adminCIDR
			if p == broker.SSH {
				b.Connection.Host = "192.0.2.45"
			}
			m := run(t, false, func(ctx *pulumi.Context) error {
				// Both clouds refuse one public key twice per account: the
				// operator key is created once and shared (Cloud.SSHKeyID).
				switch p {
				case broker.Hetzner:
					k, err := hcloud.NewSshKey(ctx, "shared-sshkey", &hcloud.SshKeyArgs{PublicKey: pulumi.String(a.Cloud.SSHPublicKey)})
					if err != nil {
						return err
					}
					a.Cloud.SSHKeyID, b.Cloud.SSHKeyID = k.ID().ToStringOutput(), k.ID().ToStringOutput()
				case broker.DigitalOcean:
					k, err := digitalocean.NewSshKey(ctx, "shared-sshkey", &digitalocean.SshKeyArgs{PublicKey: pulumi.String(a.Cloud.SSHPublicKey)})
					if err != nil {
						return err
					}
					a.Cloud.SSHKeyID, b.Cloud.SSHKeyID = k.Fingerprint, k.Fingerprint
				}
				if _, err := broker.New(ctx, "alpha", a); err != nil {
					return err
				}
				_, err := broker.New(ctx, "beta", b)
				return err
			})
			urns := map[string]bool{}
			physical := map[string]string{}
			components := map[string]string{}
			for _, r := range m.Resources() {
				if r.Type == broker.TypeToken {
					components[r.URN] = r.Name
				}
			}
			if len(components) != 2 {
				t.Fatalf("components = %v, want alpha and beta", components)
			}
			for _, r := range m.Resources() {
				if urns[r.URN] {
					t.Errorf("URN %s registered twice", r.URN)
				}
				urns[r.URN] = true
				if r.Type == broker.TypeToken || r.Name == "shared-sshkey" {
					continue
				}
				if strings.HasSuffix(r.Type, "/sshKey:SshKey") {
					t.Errorf("%s: a broker created its own SSH key despite Cloud.SSHKeyID", r.Name)
				}
				owner, ok := components[r.Parent]
				if !ok {
					t.Errorf("%s %s: parent %q is not a broker", r.Type, r.Name, r.Parent)
					continue
				}
				if !strings.HasPrefix(r.Name, owner+"-") {
					t.Errorf("%s %s: name is not prefixed with its broker %q", r.Type, r.Name, owner)
				}
				if n, _, ok := r.Str("name"); ok && r.Type != "digitalocean:index/dnsRecord:DnsRecord" {
					key := r.Type + "/" + n
					if other, dup := physical[key]; dup {
						t.Errorf("%s: provider-side name %q used by %s and %s", r.Type, n, other, r.Name)
					}
					physical[key] = r.Name
				}
			}
		})
	}
}

// serverInputs renders the server's inputs for comparison.
func serverInputs(m *brokertest.Mocks) string {
	var b strings.Builder
	for _, r := range m.Resources() {
		if r.Type == "hcloud:index/server:Server" || r.Type == "digitalocean:index/droplet:Droplet" {
			fmt.Fprintf(&b, "%s %v\n", r.Name, r.Inputs)
		}
	}
	return b.String()
}

// A changed rendered file updates the HostConfig in place: its file input
// changes, its serverId and the server's inputs stay byte-identical (so
// neither the server nor the HostConfig is replaced), and two identical
// runs register identical inputs (no update for nothing).
func TestConfigChangeUpdatesFilesWithoutReplacingTheServer(t *testing.T) {
	for _, p := range broker.Providers {
		t.Run(string(p), func(t *testing.T) {
			before := run(t, false, newBroker("mqtt", args(p)))
			changed := args(p)
			changed.Stack.Limits.MaxQueuedMessages++
			after := run(t, false, newBroker("mqtt", changed))
			same := run(t, false, newBroker("mqtt", args(p)))

			if serverInputs(before) != serverInputs(after) {
				t.Errorf("server inputs changed with a config change:\n%s\n%s", serverInputs(before), serverInputs(after))
			}
			hb, ha, hs := one(t, before, hostTyp), one(t, after, hostTyp), one(t, same, hostTyp)
			fb, fa := hostFiles(t, hb), hostFiles(t, ha)
			conf := hostconfig.VPSPaths().MosquittoConf
			var differ []string
			for path := range fb {
				if fb[path].content != fa[path].content {
					differ = append(differ, path)
				}
			}
			if !slices.Equal(differ, []string{conf}) {
				t.Errorf("files that differ: %v, want only %s", differ, conf)
			}
			if fmt.Sprint(hb.Inputs["serverId"]) != fmt.Sprint(ha.Inputs["serverId"]) || fmt.Sprint(hb.Inputs["connection"]) != fmt.Sprint(ha.Inputs["connection"]) {
				t.Errorf("serverId or connection changed: the host configuration would be replaced")
			}
			if fmt.Sprint(hb.Inputs) != fmt.Sprint(hs.Inputs) {
				t.Errorf("inputs differ between two identical runs (an update for nothing: password salts?)")
			}
		})
	}
}

func TestChangedServerKeyUpdatesOnlyTheSecretFile(t *testing.T) {
	before := run(t, false, newBroker("mqtt", args(broker.SSH)))
	a := args(broker.SSH)
	a.PKI.ServerKey = []byte("-----BEGIN PRIVATE KEY-----\nROTATED\n-----END PRIVATE KEY-----\n")
	after := run(t, false, newBroker("mqtt", a))
	fb, fa := hostFiles(t, one(t, before, hostTyp)), hostFiles(t, one(t, after, hostTyp))
	// The password files' salts derive from the server key (pki.go), so
	// they change too; both are secrets. No public file may change: their
	// diff is shown in a preview.
	for path := range fb {
		changed := fb[path].content != fa[path].content
		if changed && !fa[path].secret {
			t.Errorf("%s: a public file changed with the server key", path)
		}
	}
	if k := hostconfig.VPSPaths().ServerKey; fb[k].content == fa[k].content {
		t.Errorf("%s did not change with the rotated key", k)
	}
}

// Clouds pass the server's id: a replaced server gets a fresh HostConfig
// (new host, new host key); provider ssh has no id and pins its key.
func TestServerIDAndHostKey(t *testing.T) {
	for _, p := range broker.Providers {
		t.Run(string(p), func(t *testing.T) {
			hc := one(t, run(t, false, newBroker("mqtt", args(p))), hostTyp)
			id, _, hasID := hc.Str("serverId")
			hk, _, hasKey := hc.Str("connection.hostKey")
			budget, _, _ := hc.Str("retryBudget")
			switch p {
			case broker.SSH:
				if hasID || !hasKey || hk != sshHostKey || budget != "30s" {
					t.Errorf("ssh: serverId %q (want none), hostKey %q (want pinned), retryBudget %q (want 30s)", id, hk, budget)
				}
			default:
				if !hasID || id == "" || hasKey || budget != "5m0s" {
					t.Errorf("%s: serverId %q (want the server's), hostKey %q (want none: first contact), retryBudget %q (want 5m0s)", p, id, hk, budget)
				}
			}
		})
	}
}

func TestPreviewBuildsTheSameGraph(t *testing.T) {
	for _, p := range broker.Providers {
		t.Run(string(p), func(t *testing.T) {
			preview := run(t, true, newBroker("mqtt", args(p)))
			up := run(t, false, newBroker("mqtt", args(p)))
			names := func(m *brokertest.Mocks) []string {
				var out []string
				for _, r := range m.Resources() {
					out = append(out, r.URN)
				}
				return out
			}
			if len(names(preview)) < 2 || !slices.Equal(names(preview), names(up)) {
				t.Errorf("preview graph %v, update graph %v", names(preview), names(up))
			}
		})
	}
}

func TestOutputs(t *testing.T) {
	for _, tc := range []struct {
		p    broker.Provider
		host string
	}{
		{broker.Hetzner, brokertest.HetznerIPv4},
		{broker.DigitalOcean, brokertest.DigitalOceanIPv4},
		{broker.SSH, sshHost},
	} {
		t.Run(string(tc.p), func(t *testing.T) {
			// Outputs built from plain values are not awaited by RunErr:
			// the apply reports on a channel instead.
			values := make(chan []any, 1)
			run(t, false, func(ctx *pulumi.Context) error {
				b, err := broker.New(ctx, "mqtt", args(tc.p))
				if err != nil {
					return err
				}
				pulumi.All(b.Host, b.ServerName, b.MQTTSPort, b.WSSURL, b.HTTPSURL, b.CACertPEM, b.ConfigHash, b.HostKey, b.SSHUser, b.SSHPort, b.MosquittoVersion).ApplyT(func(v []any) error {
					values <- v
					return nil
				})
				return nil
			})
			got := map[string]any{}
			select {
			case v := <-values:
				for i, k := range []string{"host", "serverName", "mqttsPort", "wssUrl", "httpsUrl", "caCertPem", "configHash", "hostKey", "sshUser", "sshPort", "mosquittoVersion"} {
					got[k] = v[i]
				}
			case <-time.After(10 * time.Second):
				t.Fatal("outputs never resolved")
			}
			want := map[string]any{
				"host": tc.host, "serverName": serverName, "mqttsPort": 8883,
				"wssUrl": "wss://mqtt.example.com/mqtt", "httpsUrl": "https://mqtt.example.com/",
				"caCertPem": string(fakePKI().CACert),
				"sshUser":   "root", "sshPort": 22, "mosquittoVersion": "2.0.11",
			}
			if tc.p == broker.SSH {
				want["hostKey"] = sshHostKey
			} else {
				want["hostKey"] = brokertest.HostKey
			}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s = %v, want %v", k, got[k], w)
				}
			}
			if h, _ := got["configHash"].(string); len(h) != 64 {
				t.Errorf("configHash = %q, want a SHA-256 hex", h)
			}
		})
	}
}

func TestInvalidArgsAreReportedTogether(t *testing.T) {
	a := args(broker.Hetzner)
	a.Cloud = broker.Cloud{}
	a.Stack.AdminCIDR = ""
	a.Connection.PrivateKey = nil
	a.PKI = broker.PKI{}
	m := brokertest.New("mqttstack", "test")
	err := pulumi.RunErr(newBroker("Bad_Name", a), pulumi.WithMocks(m.Project, m.Stack, m))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"name \"Bad_Name\"", "Cloud.Region", "Cloud.SSHPublicKey", "Stack.AdminCIDR", "Connection.PrivateKey", "PKI:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	if n := len(m.Resources()); n != 0 {
		t.Errorf("%d resources registered despite invalid args", n)
	}
}

// The golden files hold exactly what a host receives: the HostConfig's
// connection, packages, directories and every file with its mode, owner and
// daemons; non-secret bodies in full, secret ones only as "(secret, N
// bytes)". Run `go test ./infra/broker -update` after a deliberate change
// to infra/hostconfig and review the diff.
func TestGoldenHostConfig(t *testing.T) {
	cases := map[string]broker.Args{
		"hcloud":       args(broker.Hetzner),
		"digitalocean": args(broker.DigitalOcean),
		"ssh":          args(broker.SSH),
	}
	public := args(broker.DigitalOcean)
	public.Stack.PublicDomain = true
	public.Stack.ACMEEmail = "ops@example.com"
	cases["digitalocean-public-domain"] = public
	for name, a := range cases {
		t.Run(name, func(t *testing.T) {
			m := run(t, false, newBroker("mqtt", a))
			got := []byte(readableHostConfig(t, one(t, m, hostTyp)))
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run `go test ./infra/broker -update` to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("host configuration for %s differs from %s (run with -update after reviewing):\n%s", name, path, firstDiff(string(want), string(got)))
			}
		})
	}
}

// readableHostConfig renders a HostConfig registration for review.
func readableHostConfig(t *testing.T, hc brokertest.Resource) string {
	t.Helper()
	var b strings.Builder
	str := func(k string) string { v, _, _ := hc.Str(k); return v }
	port := hc.Inputs["connection"].ObjectValue()["port"]
	fmt.Fprintf(&b, "# %s: ssh %s@%s port %v, host key %q, serverId %q, retry budget %s\n",
		hc.Type, str("connection.user"), str("connection.host"), port.NumberValue(), str("connection.hostKey"), str("serverId"), str("retryBudget"))
	var pk []string
	for _, v := range hc.Inputs["packages"].ArrayValue() {
		pk = append(pk, v.StringValue())
	}
	fmt.Fprintf(&b, "# packages: %s\n# validated: %s, %s\n", strings.Join(pk, " "), str("mosquittoConfig"), str("nginxConfig"))
	dirs := hc.Inputs["directories"].ObjectValue()
	for _, k := range dirs.StableKeys() {
		d := dirs[k].ObjectValue()
		fmt.Fprintf(&b, "# directory %s %s %s\n", k, d["mode"].StringValue(), d["owner"].StringValue())
	}
	if _, ok := hc.Inputs["acme"]; ok {
		fmt.Fprintf(&b, "# acme: certbot --webroot -w %s -d %s --email %s --deploy-hook %s\n", str("acme.webroot"), str("acme.domain"), str("acme.email"), str("acme.deployHook"))
	}
	files := hostFiles(t, hc)
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		f := files[p]
		seed := ""
		if f.seed {
			seed = " seed (create only)"
		}
		fmt.Fprintf(&b, "#>>> %s %s %s daemons=%s%s\n", p, f.mode, f.owner, strings.Join(f.daemons, ","), seed)
		if f.secret {
			fmt.Fprintf(&b, "(secret, %d bytes)\n", len(f.content))
		} else {
			b.WriteString(f.content)
			if !strings.HasSuffix(f.content, "\n") {
				b.WriteString("\n")
			}
		}
	}
	return b.String()
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n want %q\n got  %q", i+1, wl, gl)
		}
	}
	return ""
}

// Every file the rendered daemon configs point at must be shipped by the
// provisioning (or be created by the daemons / certbot themselves): a
// missing one stops the broker at start on the host, which no mock sees.
func TestProvisioningShipsEveryReferencedFile(t *testing.T) {
	m := run(t, false, newBroker("mqtt", args(broker.SSH)))
	files := map[string]string{}
	for p, f := range hostFiles(t, one(t, m, hostTyp)) {
		files[p] = f.content
	}
	vps := hostconfig.VPSPaths()
	refs := map[string]bool{}
	directives := map[string][]string{
		vps.MosquittoConf: {"password_file", "acl_file", "cafile", "crlfile", "certfile", "keyfile"},
		vps.NginxConf:     {"ssl_certificate", "ssl_certificate_key", "ssl_client_certificate", "ssl_crl"},
	}
	for conf, keys := range directives {
		body, ok := files[conf]
		if !ok {
			t.Fatalf("%s is not shipped", conf)
		}
		for _, line := range strings.Split(body, "\n") {
			f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(line), ";"))
			if len(f) == 2 && slices.Contains(keys, f[0]) {
				refs[f[1]] = true
			}
		}
	}
	if len(refs) < 6 {
		t.Fatalf("found only %d referenced files: %v", len(refs), refs)
	}
	for ref := range refs {
		if _, ok := files[ref]; !ok {
			t.Errorf("a config references %s, which provisioning does not write", ref)
		}
	}
}

// On provider ssh there is no cloud firewall: the host's nftables ruleset
// (rendered by hostconfig, shipped by provisioning) is the only one, so the
// shipped file is checked here for every provider.
func TestHostFirewallShipsWithSSHOnlyFromAdmin(t *testing.T) {
	for _, p := range broker.Providers {
		t.Run(string(p), func(t *testing.T) {
			m := run(t, false, newBroker("mqtt", args(p)))
			f, ok := hostFiles(t, one(t, m, hostTyp))[hostconfig.VPSPaths().NftablesConf]
			nft := f.content
			if !ok {
				t.Fatalf("provisioning does not ship %s", hostconfig.VPSPaths().NftablesConf)
			}
			if !strings.Contains(nft, "policy drop") {
				t.Errorf("input policy is not drop:\n%s", nft)
			}
			for _, line := range strings.Split(nft, "\n") {
				line = strings.TrimSpace(line)
				if !strings.Contains(line, "dport") || !strings.HasSuffix(line, "accept") {
					continue
				}
				switch {
				case strings.Contains(line, "dport 22 "):
					if !strings.Contains(line, "saddr "+adminCIDR) {
						t.Errorf("SSH accepted without the admin source: %q", line)
					}
				case line != "tcp dport { 80, 443, 8883 } accept":
					t.Errorf("unexpected open port rule %q", line)
				}
			}
		})
	}
}

// broker.Plan is what New registers: every planned file, with its mode,
// owner, daemons and secrecy, and nothing else.
func TestPlanIsWhatNewSends(t *testing.T) {
	for _, p := range broker.Providers {
		t.Run(string(p), func(t *testing.T) {
			a := args(p)
			files := hostFiles(t, one(t, run(t, false, newBroker("mqtt", a)), hostTyp))
			plan, err := broker.Plan(a)
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Files) != len(files) {
				t.Errorf("plan has %d files, New registered %d", len(plan.Files), len(files))
			}
			for _, f := range plan.Files {
				got, ok := files[f.Path]
				want := fmt.Sprintf("%04o", f.Mode.Perm())
				if !ok || got.content != string(f.Content) || got.secret != f.Secret || got.mode != want || !slices.Equal(got.daemons, f.Daemons) {
					t.Errorf("%s: registered %+v, planned mode %s secret %v daemons %v", f.Path, got, want, f.Secret, f.Daemons)
				}
			}
		})
	}
}

// Every resource asks the engine for exactly the plugin version users are
// told to install (README "Deploying"): hcloud and digitalocean at their
// SDK's version, HostConfig at ours.
func TestPluginVersions(t *testing.T) {
	want := map[string]string{"hcloud": broker.HcloudPluginVersion, "digitalocean": broker.DigitalOceanPluginVersion, "mqttstack": hostres.PluginVersion}
	for _, p := range broker.Providers {
		t.Run(string(p), func(t *testing.T) {
			m := run(t, false, newBroker("mqtt", args(p)))
			seen := map[string]bool{}
			for _, r := range m.Resources() {
				if !r.Custom {
					continue
				}
				pkg, _, _ := strings.Cut(r.Type, ":")
				seen[pkg] = true
				if r.Version != want[pkg] {
					t.Errorf("%s %s asks for plugin %s v%q, want v%q", r.Type, r.Name, pkg, r.Version, want[pkg])
				}
			}
			if cloud := string(p); !seen["mqttstack"] || (p != broker.SSH && !seen[cloud]) {
				t.Errorf("plugins asked for: %v", seen)
			}
		})
	}
}

// With a public domain nginx's certificate and key are create-only seeds
// (certbot's deploy hook owns them after the first issuance) and the
// HostConfig asks for the certificate; without one they stay managed and
// nothing asks Let's Encrypt.
func TestPublicDomainSeedsNginxTLSAndRequestsACertificate(t *testing.T) {
	vps := hostconfig.VPSPaths()
	public := args(broker.DigitalOcean)
	public.Stack.PublicDomain = true
	public.Stack.ACMEEmail = "ops@example.com"
	tests := []struct {
		name     string
		args     broker.Args
		wantAcme map[string]string
	}{
		{"private CA only", args(broker.SSH), nil},
		{"public domain", public, map[string]string{
			"acme.domain": public.Stack.ServerName, "acme.email": "ops@example.com",
			"acme.webroot": vps.ACMERoot, "acme.deployHook": vps.DeployHook,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hc := one(t, run(t, false, newBroker("mqtt", tc.args)), hostTyp)
			files := hostFiles(t, hc)
			for p, f := range files {
				wantSeed := tc.wantAcme != nil && (p == vps.NginxCert || p == vps.NginxKey)
				if f.seed != wantSeed {
					t.Errorf("%s: seed %v, want %v", p, f.seed, wantSeed)
				}
			}
			if _, ok := files[vps.NginxCert]; !ok {
				t.Errorf("nginx's certificate %s is not shipped (nginx could not start)", vps.NginxCert)
			}
			if !files[vps.NginxKey].secret {
				t.Errorf("nginx's key is not a secret")
			}
			_, hasAcme := hc.Inputs["acme"]
			if hasAcme != (tc.wantAcme != nil) {
				t.Fatalf("acme input present %v, want %v", hasAcme, tc.wantAcme != nil)
			}
			for k, want := range tc.wantAcme {
				if got, _, _ := hc.Str(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			var pk []string
			for _, v := range hc.Inputs["packages"].ArrayValue() {
				pk = append(pk, v.StringValue())
			}
			if tc.wantAcme != nil && !slices.Contains(pk, "certbot") {
				t.Errorf("packages %v lack certbot", pk)
			}
		})
	}
}
