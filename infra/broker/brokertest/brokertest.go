// Package brokertest holds the Pulumi mocks that the infra tests run the
// program and the Broker component under. No cloud is reachable from a
// test: the mocks record every resource registration (type, name, parent,
// inputs with their secret marks) and answer with the few provider-computed
// outputs the component reads (server addresses, SSH key fingerprints,
// numeric ids, and what mqttstack:index:HostConfig reports), so the tests
// can assert on the resource graph.
package brokertest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// HostConfigToken is hostres.HostConfigToken (not imported: brokertest
// stays below every package it tests).
const HostConfigToken = "mqttstack:index:HostConfig"

// HostKey is the key a mocked fresh cloud server presents on first contact.
const HostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockFirstContactHostKeyForTests000000000"

// Addresses the mocked clouds assign (TEST-NET-3, never routed).
const (
	HetznerIPv4      = "203.0.113.10"
	DigitalOceanIPv4 = "203.0.113.20"
)

// Resource is one recorded registration.
type Resource struct {
	Type   string
	Name   string
	Parent string // parent URN; "" under the stack
	URN    string
	Custom bool
	Inputs resource.PropertyMap
	// Dependencies are the URNs the registration waits for (DependsOn and
	// inputs taken from other resources).
	Dependencies []string
	// Version is the provider plugin version the registration asks the
	// engine for ("" for components).
	Version string
}

// Mocks implements pulumi.MockResourceMonitor. The engine calls it from
// several goroutines at once; mu guards everything below it.
type Mocks struct {
	Project, Stack string

	mu        sync.Mutex
	resources []Resource
	ids       map[string]string // id -> URN, to keep ids unique
}

// New returns mocks for project/stack (use the same in pulumi.WithMocks).
func New(project, stack string) *Mocks { return &Mocks{Project: project, Stack: stack} }

// NewResource records the registration and returns an id and the state:
// the inputs plus what the real provider would compute.
func (m *Mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	parent, version := "", ""
	var deps []string
	if args.RegisterRPC != nil {
		parent = args.RegisterRPC.GetParent()
		deps = args.RegisterRPC.GetDependencies()
		version = args.RegisterRPC.GetVersion()
	}
	m.mu.Lock()
	id := m.id(parent, args.TypeToken, args.Name)
	m.resources = append(m.resources, Resource{
		Type:   args.TypeToken,
		Name:   args.Name,
		Parent: parent,
		URN:    m.urn(parent, args.TypeToken, args.Name),
		Custom: args.Custom,
		Inputs: args.Inputs.Copy(),

		Dependencies: deps,
		Version:      version,
	})
	m.mu.Unlock()

	if !args.Custom {
		return "", args.Inputs, nil
	}
	state := args.Inputs.Copy()
	switch args.TypeToken {
	case "hcloud:index/server:Server":
		state["ipv4Address"] = resource.NewProperty(HetznerIPv4)
	case "digitalocean:index/droplet:Droplet":
		state["ipv4Address"] = resource.NewProperty(DigitalOceanIPv4)
	case "digitalocean:index/sshKey:SshKey":
		state["fingerprint"] = resource.NewProperty("3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa")
	case HostConfigToken:
		// What the provider reports after an apply: the applied hash (of
		// the inputs here), the host key (the pinned one, or a fixed
		// first-contact key) and the daemons' versions on Debian 12.
		h := sha256.Sum256([]byte(fmt.Sprint(args.Inputs)))
		hostKey := HostKey
		if c, ok := args.Inputs["connection"]; ok && c.IsObject() {
			if k, ok := c.ObjectValue()["hostKey"]; ok && k.IsString() {
				hostKey = k.StringValue()
			}
		}
		state["configHash"] = resource.NewProperty(hex.EncodeToString(h[:]))
		state["hostKey"] = resource.NewProperty(hostKey)
		state["hostKeyFingerprint"] = resource.NewProperty("SHA256:mock-fingerprint")
		state["mosquittoVersion"] = resource.NewProperty("2.0.11")
		state["nginxVersion"] = resource.NewProperty("1.22.1")
	}
	return id, state, nil
}

// id is numeric (both clouds' ids are integers) and a function of the URN,
// not of the order of registration, which is concurrent: the same program
// gets the same ids on every run, so runs can be compared. Callers hold mu.
func (m *Mocks) id(parent, typ, name string) string {
	if m.ids == nil {
		m.ids = map[string]string{}
	}
	urn := m.urn(parent, typ, name)
	h := fnv.New32a()
	h.Write([]byte(urn))
	n := 100000 + h.Sum32()%900000
	for {
		id := fmt.Sprint(n)
		if owner, taken := m.ids[id]; !taken || owner == urn {
			m.ids[id] = urn
			return id
		}
		n++
	}
}

// Call answers provider functions; the component calls none.
func (m *Mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return nil, fmt.Errorf("unexpected provider function %s", args.Token)
}

// urn mirrors how the engine names resources: parent type chain, type, name.
func (m *Mocks) urn(parent, typ, name string) string {
	parentType := tokens.Type("")
	if p := resource.URN(parent); p != "" && p.QualifiedType() != resource.RootStackType {
		parentType = p.QualifiedType()
	}
	return string(resource.NewURN(tokens.QName(m.Stack), tokens.PackageName(m.Project), parentType, tokens.Type(typ), name))
}

// Resources returns the registrations so far, sorted by URN.
func (m *Mocks) Resources() []Resource {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := append([]Resource(nil), m.resources...)
	sort.Slice(out, func(i, j int) bool { return out[i].URN < out[j].URN })
	return out
}

// OfType returns the registrations of one type token.
func (m *Mocks) OfType(typ string) []Resource {
	var out []Resource
	for _, r := range m.Resources() {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// Str returns the string at a dotted path in the inputs ("connection.host",
// "records[0].value") and whether that value or anything on the way was
// marked secret.
func (r Resource) Str(path string) (v string, secret, ok bool) {
	cur := resource.NewProperty(r.Inputs)
	for _, k := range strings.Split(path, ".") {
		idx := -1
		if open := strings.IndexByte(k, '['); open > 0 && strings.HasSuffix(k, "]") {
			n, err := strconv.Atoi(k[open+1 : len(k)-1])
			if err != nil {
				return "", secret, false
			}
			k, idx = k[:open], n
		}
		if cur.IsSecret() {
			secret = true
			cur = cur.SecretValue().Element
		}
		if !cur.IsObject() {
			return "", secret, false
		}
		next, found := cur.ObjectValue()[resource.PropertyKey(k)]
		if !found {
			return "", secret, false
		}
		cur = next
		if idx >= 0 {
			if cur.IsSecret() {
				secret = true
				cur = cur.SecretValue().Element
			}
			if !cur.IsArray() || idx >= len(cur.ArrayValue()) {
				return "", secret, false
			}
			cur = cur.ArrayValue()[idx]
		}
	}
	if cur.IsSecret() {
		secret = true
		cur = cur.SecretValue().Element
	}
	if !cur.IsString() {
		return "", secret, false
	}
	return cur.StringValue(), secret, true
}

// PlainStrings returns every string anywhere in the inputs that is not
// under a secret, with its path. Tests use it to prove a secret value never
// travels in the clear.
func (r Resource) PlainStrings() map[string]string {
	out := map[string]string{}
	var walk func(path string, v resource.PropertyValue)
	walk = func(path string, v resource.PropertyValue) {
		switch {
		case v.IsSecret():
			// everything below is protected
		case v.IsString():
			out[path] = v.StringValue()
		case v.IsArray():
			for i, e := range v.ArrayValue() {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		case v.IsObject():
			for k, e := range v.ObjectValue() {
				walk(strings.TrimPrefix(path+"."+string(k), "."), e)
			}
		}
	}
	walk("", resource.NewProperty(r.Inputs))
	return out
}
