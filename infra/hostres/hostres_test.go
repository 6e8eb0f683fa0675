package hostres_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/mqttstack/mqttstack/infra/hostres"
)

type mocks struct {
	mu     sync.Mutex
	token  string
	inputs resource.PropertyMap
}

func (m *mocks) NewResource(a pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.token, m.inputs = a.TypeToken, a.Inputs
	out := resource.PropertyMap{
		"configHash":         resource.NewProperty("abc"),
		"hostKeyFingerprint": resource.NewProperty("SHA256:x"),
	}
	return a.Name + "-id", out, nil
}

func (m *mocks) Call(pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return resource.PropertyMap{}, nil
}

func TestNewHostConfigRegistersPerPathSecretInputs(t *testing.T) {
	m := &mocks{}
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		_, err := hostres.NewHostConfig(ctx, "h", &hostres.HostConfigArgs{
			Connection: hostres.Connection{Host: pulumi.String("203.0.113.7"), PrivateKey: pulumi.String("KEY"), HostKey: pulumi.String("ssh-ed25519 AAAA")},
			Files: map[string]hostres.File{
				"/etc/mosquitto/acl": {Content: pulumi.String("topic read x\n"), Mode: "0640", Owner: "root:mosquitto", Daemons: []string{hostres.Mosquitto}},
			},
			SecretFiles: map[string]hostres.File{
				"/etc/mosquitto/certs/server.key": {Content: pulumi.String("SECRET"), Mode: "0600", Daemons: []string{hostres.Mosquitto}},
				"/etc/nginx/tls/server.key":       {Content: pulumi.String("SEED"), Mode: "0600", Daemons: []string{hostres.Nginx}, Seed: true},
			},
			Acme:        &hostres.Acme{Domain: "mqtt.example.com", Email: "ops@example.com", Webroot: "/var/www/acme", DeployHook: "/etc/letsencrypt/renewal-hooks/deploy/mqttstack"},
			Directories: map[string]hostres.Directory{"/var/lib/mosquitto": {Mode: "0750", Owner: "mosquitto:mosquitto"}},
			Packages:    []string{"nginx", "mosquitto"},
			RetryBudget: 2 * time.Minute,
		})
		return err
	}, pulumi.WithMocks("p", "s", m))
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.token != hostres.HostConfigToken {
		t.Errorf("token %q", m.token)
	}
	in := m.inputs
	acl := in["files"].ObjectValue()["/etc/mosquitto/acl"].ObjectValue()
	if acl["content"].IsSecret() || acl["content"].StringValue() != "topic read x\n" || acl["mode"].StringValue() != "0640" {
		t.Errorf("files[acl] = %v", acl)
	}
	key := in["secretFiles"].ObjectValue()["/etc/mosquitto/certs/server.key"].ObjectValue()
	if !key["content"].IsSecret() {
		t.Errorf("secretFiles[server.key].content is not a secret: %v", key["content"])
	}
	conn := in["connection"].ObjectValue()
	if !conn["privateKey"].IsSecret() {
		t.Errorf("connection.privateKey is not a secret")
	}
	if got := in["packages"].ArrayValue(); len(got) != 2 || got[0].StringValue() != "mosquitto" {
		t.Errorf("packages %v (want sorted)", got)
	}
	if _, ok := key["seed"]; ok {
		t.Errorf("secretFiles[server.key] is a seed without Seed: %v", key)
	}
	seed := in["secretFiles"].ObjectValue()["/etc/nginx/tls/server.key"].ObjectValue()
	if !seed["seed"].BoolValue() || !seed["content"].IsSecret() {
		t.Errorf("secretFiles[nginx key] = %v, want seed: true and secret content", seed)
	}
	acme := in["acme"].ObjectValue()
	if acme["domain"].StringValue() != "mqtt.example.com" || acme["email"].StringValue() != "ops@example.com" ||
		acme["webroot"].StringValue() != "/var/www/acme" || acme["deployHook"].StringValue() != "/etc/letsencrypt/renewal-hooks/deploy/mqttstack" {
		t.Errorf("acme = %v", acme)
	}
	if in["retryBudget"].StringValue() != "2m0s" {
		t.Errorf("retryBudget %v", in["retryBudget"])
	}
}

func TestNewHostConfigCollectsAllErrors(t *testing.T) {
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		_, err := hostres.NewHostConfig(ctx, "h", &hostres.HostConfigArgs{
			Files:       map[string]hostres.File{"/a": {}},
			SecretFiles: map[string]hostres.File{"/a": {Content: pulumi.String("x")}},
			RetryBudget: -time.Second,
			Acme:        &hostres.Acme{},
		})
		return err
	}, pulumi.WithMocks("p", "s", &mocks{}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"connection.host", "connection.privateKey", `files["/a"].content`, `secretFiles["/a"]: also in files`, "retryBudget", "acme.domain", "acme.email", "acme.webroot"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}
