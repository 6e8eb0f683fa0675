package program

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"gopkg.in/yaml.v3"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/infra/broker"
	"github.com/mqttstack/mqttstack/infra/broker/brokertest"
	"github.com/mqttstack/mqttstack/infra/hostres"
)

const testHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"

const testSSHKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ==\n-----END OPENSSH PRIVATE KEY-----\n"

// pkiOnce is one real PKI (CA, server certificate for mqtt.example.com,
// an observer and a backend) shared by the tests, which only read it.
var (
	pkiOnce sync.Once
	pkiDir  string
	pkiErr  error
)

func testPKI(t *testing.T) string {
	t.Helper()
	pkiOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mqttstack-infra-pki-")
		if err != nil {
			pkiErr = err
			return
		}
		pkiDir = filepath.Join(dir, "pki")
		_, pkiErr = certs.Init(certs.InitOptions{
			Dir: pkiDir, ServerName: "mqtt.example.com",
			Observers: []string{"observer"}, Backends: []string{"backend"},
		})
	})
	if pkiErr != nil {
		t.Fatalf("test PKI: %v", pkiErr)
	}
	return pkiDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pkiDir != "" {
		os.RemoveAll(filepath.Dir(pkiDir))
	}
	os.Exit(code)
}

// validConfig is a complete configuration for provider p.
func validConfig(t *testing.T, p string) map[string]string {
	c := map[string]string{
		"mqttstack:provider":       p,
		"mqttstack:serverName":     "mqtt.example.com",
		"mqttstack:adminCidr":      "198.51.100.7/32",
		"mqttstack:pkiDir":         testPKI(t),
		"mqttstack:ssh.privateKey": testSSHKey,
	}
	switch p {
	case "hcloud", "digitalocean":
		c["mqttstack:sshPublicKey"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKey ops@test"
	case "ssh":
		c["mqttstack:ssh.host"] = "192.0.2.44"
		c["mqttstack:ssh.hostKey"] = testHostKey
	}
	return c
}

// runProgram runs the real program under the mocks with cfg as the stack
// configuration (secretKeys marked secret, as `pulumi config set --secret`).
func runProgram(t *testing.T, cfg map[string]string, secretKeys []string, dryRun bool) (*brokertest.Mocks, error) {
	t.Helper()
	m := brokertest.New("mqttstack", "test")
	err := pulumi.RunErr(Run, pulumi.WithMocks(m.Project, m.Stack, m), func(ri *pulumi.RunInfo) {
		ri.Config = cfg
		ri.ConfigSecretKeys = secretKeys
		ri.DryRun = dryRun
	})
	return m, err
}

var secretKeys = []string{"mqttstack:ssh.privateKey"}

func TestProgramEveryProvider(t *testing.T) {
	for _, p := range []string{"hcloud", "digitalocean", "ssh"} {
		for _, dry := range []bool{false, true} {
			name := p
			if dry {
				name += "/preview"
			}
			t.Run(name, func(t *testing.T) {
				m, err := runProgram(t, validConfig(t, p), secretKeys, dry)
				if err != nil {
					t.Fatalf("program: %v", err)
				}
				if n := len(m.OfType(broker.TypeToken)); n != 1 {
					t.Errorf("%d brokers, want 1", n)
				}
				cmd := m.OfType(hostres.HostConfigToken)
				if len(cmd) != 1 {
					t.Fatalf("%d host configurations, want 1", len(cmd))
				}
				if _, secret, _ := cmd[0].Str("connection.privateKey"); !secret {
					t.Errorf("SSH key is not a secret")
				}
			})
		}
	}
}

// The real path: the Pulumi CLI hands config to the program in
// PULUMI_CONFIG (JSON) and PULUMI_CONFIG_SECRET_KEYS.
func TestProgramReadsConfigFromEnvironment(t *testing.T) {
	cfg, _ := json.Marshal(validConfig(t, "ssh"))
	keys, _ := json.Marshal(secretKeys)
	t.Setenv("PULUMI_CONFIG", string(cfg))
	t.Setenv("PULUMI_CONFIG_SECRET_KEYS", string(keys))
	t.Setenv("PULUMI_DRY_RUN", "true")
	m := brokertest.New("mqttstack", "test")
	if err := pulumi.RunErr(Run, pulumi.WithMocks(m.Project, m.Stack, m)); err != nil {
		t.Fatalf("program: %v", err)
	}
	cmd := m.OfType(hostres.HostConfigToken)
	if len(cmd) != 1 {
		t.Fatalf("%d host configurations, want 1", len(cmd))
	}
	if hk, _, _ := cmd[0].Str("connection.hostKey"); hk != testHostKey {
		t.Errorf("connection.hostKey = %q, want mqttstack:ssh.hostKey", hk)
	}
	if host, _, _ := cmd[0].Str("connection.host"); host != "192.0.2.44" {
		t.Errorf("connection.host = %q, want mqttstack:ssh.host", host)
	}
}

func TestConfigErrorsAreReportedTogether(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(c map[string]string)
		secrets []string
		want    []string // each must appear in the error
	}{
		{
			name: "empty",
			edit: func(c map[string]string) { clear(c) },
			want: []string{
				"mqttstack:provider: required", "e.g. `pulumi config set mqttstack:provider hcloud`",
				"mqttstack:serverName: required", "mqtt.example.com",
				"mqttstack:adminCidr: required", "203.0.113.7/32",
				"mqttstack:ssh.privateKey: required",
				"mqttstack:pkiDir: required", ".mqttstack/pki",
			},
		},
		{
			name: "bad values",
			edit: func(c map[string]string) {
				c["mqttstack:provider"] = "aws"
				c["mqttstack:adminCidr"] = "0.0.0.0/0"
				c["mqttstack:ipv6"] = "maybe"
				c["mqttstack:ssh.port"] = "99999"
				c["mqttstack:statusAllow"] = `["10.0.0.0/33"]`
				c["mqttstack:serverName"] = "mqtt_broker"
				c["mqttstack:ssh.user"] = "Root User"
			},
			want: []string{
				`mqttstack:provider: "aws" is not one of [hcloud digitalocean ssh]`,
				"mqttstack:adminCidr: \"0.0.0.0/0\" would open SSH to the whole internet",
				`mqttstack:ipv6: "maybe" is not a boolean`,
				`mqttstack:ssh.port: "99999" is not a TCP port`,
				`mqttstack:statusAllow: [0] "10.0.0.0/33" is not a CIDR`,
				`mqttstack:serverName: "mqtt_broker" is not a DNS name`,
				`mqttstack:ssh.user: "Root User" is not a user name`,
			},
		},
		{
			name:    "plain-text private key",
			edit:    func(c map[string]string) {},
			secrets: []string{},
			want:    []string{"mqttstack:ssh.privateKey: is stored in plain text; set it with --secret"},
		},
		{
			name: "domain needs an e-mail and must match serverName",
			edit: func(c map[string]string) {
				c["mqttstack:domain"] = "broker.example.com"
			},
			want: []string{
				`mqttstack:serverName: "mqtt.example.com" differs from mqttstack:domain "broker.example.com"`,
			},
		},
		{
			name: "domain without acmeEmail",
			edit: func(c map[string]string) {
				delete(c, "mqttstack:serverName")
				c["mqttstack:domain"] = "mqtt.example.com"
			},
			want: []string{"mqttstack:acmeEmail: required with mqttstack:domain", "ops@example.com"},
		},
		{
			name: "cloud keys on provider ssh",
			edit: func(c map[string]string) {
				c["mqttstack:region"] = "fsn1"
				delete(c, "mqttstack:ssh.host")
				delete(c, "mqttstack:ssh.hostKey")
			},
			want: []string{
				"mqttstack:region: has no meaning for provider ssh",
				"mqttstack:ssh.host: required for provider ssh", "198.51.100.20",
				"mqttstack:ssh.hostKey: required for provider ssh", "ssh-keyscan -t ed25519",
			},
		},
		{
			name: "bad host key and retry budget",
			edit: func(c map[string]string) {
				c["mqttstack:ssh.hostKey"] = "AAAAC3NzaC1lZDI1NTE5"
				c["mqttstack:ssh.retryBudget"] = "forever"
			},
			want: []string{
				`mqttstack:ssh.hostKey: "AAAAC3NzaC1lZDI1NTE5" is not an authorized_keys line`,
				`mqttstack:ssh.retryBudget: "forever" is not a duration`,
			},
		},
		{
			name: "bad ssh host",
			edit: func(c map[string]string) { c["mqttstack:ssh.host"] = "host name" },
			want: []string{`mqttstack:ssh.host: "host name" is neither an IP address nor a host name`},
		},
		{
			name: "server certificate does not name serverName",
			edit: func(c map[string]string) { c["mqttstack:serverName"] = "other.example.com" },
			want: []string{"mqttstack:pkiDir:", `does not name "other.example.com"`},
		},
		{
			name: "missing PKI",
			edit: func(c map[string]string) { c["mqttstack:pkiDir"] = "/nonexistent/pki" },
			want: []string{"mqttstack:pkiDir:", "/nonexistent/pki/ca.crt", "/nonexistent/pki/server.key", "mqttstack certs init"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig(t, "ssh")
			tc.edit(cfg)
			sk := secretKeys
			if tc.secrets != nil {
				sk = tc.secrets
			}
			m, err := runProgram(t, cfg, sk, false)
			if err == nil {
				t.Fatal("program accepted the configuration")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			if n := len(m.Resources()); n != 0 {
				t.Errorf("%d resources registered despite bad configuration", n)
			}
		})
	}
}

func TestCloudConfigErrors(t *testing.T) {
	cfg := validConfig(t, "hcloud")
	delete(cfg, "mqttstack:sshPublicKey")
	cfg["mqttstack:ssh.host"] = "192.0.2.1"
	cfg["mqttstack:digitaloceanDomain"] = "example.com"
	cfg["mqttstack:hcloudZone"] = "example.org"
	_, err := runProgram(t, cfg, secretKeys, false)
	if err == nil {
		t.Fatal("program accepted the configuration")
	}
	for _, w := range []string{
		"mqttstack:sshPublicKey: required for hcloud", "ssh-ed25519",
		"mqttstack:ssh.host: only for provider ssh",
		"mqttstack:digitaloceanDomain: only for provider digitalocean",
		`mqttstack:hcloudZone: "example.org" does not contain the server name "mqtt.example.com"`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
}

func TestDigitalOceanDomainCreatesRecordAndShipsTheCertbotHook(t *testing.T) {
	cfg := validConfig(t, "digitalocean")
	delete(cfg, "mqttstack:serverName")
	cfg["mqttstack:domain"] = "mqtt.example.com"
	cfg["mqttstack:acmeEmail"] = "ops@example.com"
	cfg["mqttstack:digitaloceanDomain"] = "example.com"
	m, err := runProgram(t, cfg, secretKeys, false)
	if err != nil {
		t.Fatalf("program: %v", err)
	}
	rec := m.OfType("digitalocean:index/dnsRecord:DnsRecord")
	if len(rec) != 1 {
		t.Fatalf("%d DNS records, want 1", len(rec))
	}
	if v, _, _ := rec[0].Str("value"); v != brokertest.DigitalOceanIPv4 {
		t.Errorf("record value %q, want the droplet's %s", v, brokertest.DigitalOceanIPv4)
	}
	// The host gets the webroot and the deploy hook that installs each
	// certificate, and the HostConfig asks for the first one (acme).
	hc := m.OfType(hostres.HostConfigToken)[0]
	hook, _, ok := hc.Str(`files./etc/letsencrypt/renewal-hooks/deploy/mqttstack.content`)
	if !ok || !strings.Contains(hook, "/etc/letsencrypt/live/mqtt.example.com") {
		t.Errorf("a public domain does not ship certbot's deploy hook (got %q)", hook)
	}
	if d, _, _ := hc.Str("acme.domain"); d != "mqtt.example.com" {
		t.Errorf("acme.domain %q, want the public domain", d)
	}
	if e, _, _ := hc.Str("acme.email"); e != "ops@example.com" {
		t.Errorf("acme.email %q", e)
	}
}

func TestDefaultsPerCloud(t *testing.T) {
	for p, want := range map[string][2]string{"hcloud": {"fsn1", "cx22"}, "digitalocean": {"fra1", "s-1vcpu-1gb"}} {
		m, err := runProgram(t, validConfig(t, p), secretKeys, true)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		typ, regionKey := "hcloud:index/server:Server", "location"
		if p == "digitalocean" {
			typ, regionKey = "digitalocean:index/droplet:Droplet", "region"
		}
		srv := m.OfType(typ)
		if len(srv) != 1 {
			t.Fatalf("%s: %d servers", p, len(srv))
		}
		sizeKey := "serverType"
		if p == "digitalocean" {
			sizeKey = "size"
		}
		r, _, _ := srv[0].Str(regionKey)
		s, _, _ := srv[0].Str(sizeKey)
		if r != want[0] || s != want[1] {
			t.Errorf("%s: region/size = %s/%s, want %s/%s", p, r, s, want[0], want[1])
		}
	}
}

// Pulumi.example.yaml must document every key the program reads, and its
// uncommented keys must form a working configuration.
func TestExampleConfig(t *testing.T) {
	example, err := os.ReadFile(filepath.Join("..", "..", "Pulumi.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatal(err)
	}
	keyRE := regexp.MustCompile(`(?:get|bad)\("([A-Za-z.]+)"|namespace\+":([A-Za-z.]+)"|"(region|size|image|sshPublicKey|digitaloceanDomain|hcloudZone)"`)
	seen := map[string]bool{}
	for _, m := range keyRE.FindAllStringSubmatch(string(src), -1) {
		k := m[1] + m[2] + m[3]
		if seen[k] {
			continue
		}
		seen[k] = true
		if !strings.Contains(string(example), "mqttstack:"+k+":") {
			t.Errorf("Pulumi.example.yaml does not document mqttstack:%s", k)
		}
	}
	if len(seen) < 15 {
		t.Errorf("found only %d keys in config.go: %v", len(seen), seen)
	}

	var doc struct {
		Config map[string]string `yaml:"config"`
	}
	if err := yaml.Unmarshal(example, &doc); err != nil {
		t.Fatalf("Pulumi.example.yaml: %v", err)
	}
	cfg := doc.Config
	// The example's PKI does not exist here, and the private key is set
	// with --secret, never in the file.
	cfg["mqttstack:pkiDir"] = testPKI(t)
	cfg["mqttstack:ssh.privateKey"] = testSSHKey
	if _, err := runProgram(t, cfg, secretKeys, true); err != nil {
		t.Errorf("the example configuration does not run: %v", err)
	}
}
