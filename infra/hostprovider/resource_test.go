package hostprovider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/blang/semver"
	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi-go-provider/integration"
	presource "github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/property"

	"github.com/mqttstack/mqttstack/infra/hostres"
	"github.com/mqttstack/mqttstack/internal/sshconn"
	"github.com/mqttstack/mqttstack/internal/sshconn/sshdtest"
)

const testURN = presource.URN("urn:pulumi:test::mqttstack::mqttstack:index:HostConfig::h")

func server(t *testing.T) integration.Server {
	t.Helper()
	prov, err := Provider()
	if err != nil {
		t.Fatal(err)
	}
	s, err := integration.NewServer(context.Background(), hostres.PluginName, semver.MustParse(hostres.PluginVersion), integration.WithProvider(prov))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func str(s string) property.Value { return property.New(s) }

func obj(kv ...any) property.Value {
	m := map[string]property.Value{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(property.Value)
	}
	return property.New(m)
}

func strs(ss ...string) property.Value {
	var a []property.Value
	for _, s := range ss {
		a = append(a, str(s))
	}
	return property.New(a)
}

// inputs is a valid HostConfig input map for key (PEM) and hostKey.
func inputs(host string, port int, key []byte, hostKey string, acl string) property.Map {
	conn := obj("host", str(host), "port", property.New(float64(port)), "privateKey", str(string(key)).WithSecret(true))
	if hostKey != "" {
		conn = obj("host", str(host), "port", property.New(float64(port)), "privateKey", str(string(key)).WithSecret(true), "hostKey", str(hostKey))
	}
	return property.NewMap(map[string]property.Value{
		"connection": conn,
		"files": obj(
			"/etc/mosquitto/acl", obj("content", str(acl), "mode", str("0640"), "owner", str("root:mosquitto"), "daemons", strs("mosquitto")),
		),
		// not wrapped as a secret by the caller: the schema makes it one
		"secretFiles": obj(
			"/etc/mosquitto/passwd", obj("content", str("dev1:$7$x\n"), "mode", str("0640"), "owner", str("root:mosquitto"), "daemons", strs("mosquitto")),
		),
		"packages": strs("mosquitto"),
	})
}

func TestCheckReportsEveryProblem(t *testing.T) {
	s := server(t)
	in := property.NewMap(map[string]property.Value{
		"connection": obj("host", str("bad host"), "port", property.New(float64(70000)), "user", str("Root!"), "privateKey", str("not a key"), "hostKey", str("nonsense")),
		"files": obj(
			"relative/path", obj("content", str("x")),
			"/etc/mosquitto/acl", obj("content", str("x"), "mode", str("999"), "owner", str("root"), "daemons", strs("apache")),
			"/etc/x.conf", obj("content", str("x"), "daemons", strs("systemd")),
		),
		"secretFiles":     obj("/etc/mosquitto/acl", obj("content", str("y"))),
		"packages":        strs("Bad Package"),
		"retryBudget":     str("soon"),
		"directories":     obj("/var/lib/../x", obj("mode", str("0755"))),
		"mosquittoConfig": str("mosquitto.conf"),
		"acme":            obj("domain", str("*.example.com"), "email", str("ops at example.com"), "webroot", str("var/www/acme"), "deployHook", str("/etc/../hook")),
	})
	resp, err := s.Check(p.CheckRequest{Urn: testURN, Inputs: in})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range resp.Failures {
		got[f.Property] = f.Reason
	}
	for _, want := range []string{
		"connection.host", "connection.port", "connection.user", "connection.privateKey", "connection.hostKey",
		`files["relative/path"]`, `files["/etc/mosquitto/acl"].mode`, `files["/etc/mosquitto/acl"].owner`,
		`files["/etc/mosquitto/acl"].daemons[0]`, `files["/etc/x.conf"].daemons[0]`, `secretFiles["/etc/mosquitto/acl"]`,
		"packages[0]", "retryBudget", `directories["/var/lib/../x"]`, "mosquittoConfig",
		"acme.domain", "acme.email", "acme.webroot", "acme.deployHook",
	} {
		if _, ok := got[want]; !ok {
			t.Errorf("no failure for %s (got %v)", want, got)
		}
	}
	for prop, reason := range got {
		if strings.Contains(reason, "not a key") {
			t.Errorf("%s: the failure repeats the private key: %q", prop, reason)
		}
	}
}

func TestCheckMakesSecretContentSecret(t *testing.T) {
	s := server(t)
	key := sshdtest.NewClientKey(t)
	resp, err := s.Check(p.CheckRequest{Urn: testURN, Inputs: inputs("203.0.113.7", 22, key, "", "topic read x\n")})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Failures) > 0 {
		t.Fatalf("failures for valid inputs: %v", resp.Failures)
	}
	pw := resp.Inputs.Get("secretFiles").AsMap().Get("/etc/mosquitto/passwd").AsMap().Get("content")
	if !pw.Secret() {
		t.Errorf("secretFiles content is not a secret after Check: %v", pw)
	}
	acl := resp.Inputs.Get("files").AsMap().Get("/etc/mosquitto/acl").AsMap().Get("content")
	if acl.Secret() {
		t.Errorf("a plain file's content became a secret (previews could not show it)")
	}
	if !resp.Inputs.Get("connection").AsMap().Get("privateKey").Secret() {
		t.Errorf("privateKey is not a secret after Check")
	}
}

func TestCheckSkipsUnknowns(t *testing.T) {
	s := server(t)
	in := inputs("x", 22, sshdtest.NewClientKey(t), "", "a")
	conn := in.Get("connection").AsMap().Set("host", property.New(property.Computed))
	in = in.Set("connection", property.New(conn))
	resp, err := s.Check(p.CheckRequest{Urn: testURN, Inputs: in})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range resp.Failures {
		t.Errorf("failure for an input not known yet: %v", f)
	}
}

func TestDiff(t *testing.T) {
	key := sshdtest.NewClientKey(t)
	base := func(acl string) Args {
		mode, owner := "0640", "root:mosquitto"
		return Args{
			Connection:  Connection{Host: "203.0.113.7", PrivateKey: string(key)},
			Files:       map[string]File{"/etc/mosquitto/acl": {Content: acl, Mode: &mode, Owner: &owner, Daemons: []string{"mosquitto"}}},
			SecretFiles: map[string]SecretFile{"/etc/mosquitto/certs/server.key": {Content: "KEY1", Mode: ptr("0600")}},
			Packages:    []string{"mosquitto"},
		}
	}
	applied := func(a Args) State {
		s, fails := resolve(a, nil)
		if len(fails) > 0 {
			t.Fatal(fails)
		}
		return planned(s, State{})
	}
	old := applied(base("topic read a\n"))
	withSeed := func(a Args) Args {
		a.SecretFiles["/etc/nginx/tls/server.key"] = SecretFile{Content: "SEED", Mode: ptr("0600"), Seed: ptr(true)}
		return a
	}
	withAcme := func(a Args) Args {
		a.Acme = &Acme{Domain: "mqtt.example.com", Email: "ops@example.com", Webroot: "/var/www/acme"}
		return a
	}
	seeded := applied(withSeed(base("topic read a\n")))
	// certbot replaced the seed: apply and refresh record only presence, so
	// the state holds no hash to compare with
	seededGone := applied(withSeed(base("topic read a\n")))
	seededGone.Files["/etc/nginx/tls/server.key"] = FileOut{Missing: true, Secret: true, Seed: true}
	issued := applied(withAcme(base("topic read a\n")))
	issued.AcmeStatus = AcmeIssued
	failed := issued
	failed.AcmeStatus = AcmeFailed + ": certbot: DNS problem"
	drifted := applied(base("topic read a\n"))
	f := drifted.Files["/etc/mosquitto/acl"]
	f.Sha256 = strings.Repeat("0", 64)
	drifted.Files["/etc/mosquitto/acl"] = f

	tests := []struct {
		name  string
		state State
		args  Args
		want  map[string]p.DiffKind
	}{
		{"no change", old, base("topic read a\n"), map[string]p.DiffKind{}},
		{"acl changes", old, base("topic read b\n"), map[string]p.DiffKind{`files["/etc/mosquitto/acl"]`: p.Update}},
		{"secret file changes", old, func() Args {
			a := base("topic read a\n")
			a.SecretFiles["/etc/mosquitto/certs/server.key"] = SecretFile{Content: "KEY2", Mode: ptr("0600")}
			return a
		}(), map[string]p.DiffKind{`secretFiles["/etc/mosquitto/certs/server.key"]`: p.Update}},
		{"mode changes", old, func() Args {
			a := base("topic read a\n")
			fl := a.Files["/etc/mosquitto/acl"]
			fl.Mode = ptr("0644")
			a.Files["/etc/mosquitto/acl"] = fl
			return a
		}(), map[string]p.DiffKind{`files["/etc/mosquitto/acl"]`: p.Update}},
		{"drift on the host", drifted, base("topic read a\n"), map[string]p.DiffKind{`files["/etc/mosquitto/acl"]`: p.Update}},
		{"new file", old, func() Args {
			a := base("topic read a\n")
			a.Files["/etc/mosquitto/passwd.d/x"] = File{Content: "x"}
			return a
		}(), map[string]p.DiffKind{`files["/etc/mosquitto/passwd.d/x"]`: p.Add}},
		{"file dropped", old, func() Args {
			a := base("topic read a\n")
			delete(a.SecretFiles, "/etc/mosquitto/certs/server.key")
			return a
		}(), map[string]p.DiffKind{`secretFiles["/etc/mosquitto/certs/server.key"]`: p.Delete}},
		{"new host replaces", old, func() Args {
			a := base("topic read a\n")
			a.Connection.Host = "203.0.113.8"
			return a
		}(), map[string]p.DiffKind{"connection.host": p.UpdateReplace}},
		{"new server id replaces", old, func() Args {
			a := base("topic read a\n")
			a.ServerID = ptr("4711")
			return a
		}(), map[string]p.DiffKind{"serverId": p.UpdateReplace}},
		{"seed present, content changed by its owner", seeded, withSeed(base("topic read a\n")), map[string]p.DiffKind{}},
		{"seed content input changes: not written over the host's", seeded, func() Args {
			a := withSeed(base("topic read a\n"))
			a.SecretFiles["/etc/nginx/tls/server.key"] = SecretFile{Content: "OTHER", Mode: ptr("0644"), Seed: ptr(true)}
			return a
		}(), map[string]p.DiffKind{}},
		{"seed gone from the host is written again", seededGone, withSeed(base("topic read a\n")), map[string]p.DiffKind{`secretFiles["/etc/nginx/tls/server.key"]`: p.Update}},
		{"managed file becomes a seed", applied(func() Args {
			a := withSeed(base("topic read a\n"))
			a.SecretFiles["/etc/nginx/tls/server.key"] = SecretFile{Content: "SEED", Mode: ptr("0600")}
			return a
		}()), withSeed(base("topic read a\n")), map[string]p.DiffKind{`secretFiles["/etc/nginx/tls/server.key"]`: p.Update}},
		{"acme added", old, withAcme(base("topic read a\n")), map[string]p.DiffKind{"acme": p.Add}},
		{"acme issued: no change", issued, withAcme(base("topic read a\n")), map[string]p.DiffKind{}},
		{"acme failed: the next up tries again", failed, withAcme(base("topic read a\n")), map[string]p.DiffKind{"acme": p.Update}},
		{"acme domain changes", issued, func() Args {
			a := withAcme(base("topic read a\n"))
			a.Acme.Domain = "broker.example.com"
			return a
		}(), map[string]p.DiffKind{"acme": p.Update}},
		{"acme dropped", issued, base("topic read a\n"), map[string]p.DiffKind{"acme": p.Delete}},
		{"package added", old, func() Args {
			a := base("topic read a\n")
			a.Packages = append(a.Packages, "nginx")
			return a
		}(), map[string]p.DiffKind{"packages": p.Update}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h HostConfig
			resp, err := h.Diff(context.Background(), inferDiff(tc.state, tc.args))
			if err != nil {
				t.Fatal(err)
			}
			if resp.HasChanges != (len(tc.want) > 0) {
				t.Errorf("HasChanges %v, want %v", resp.HasChanges, len(tc.want) > 0)
			}
			if len(resp.DetailedDiff) != len(tc.want) {
				t.Errorf("detailed diff %v, want %v", resp.DetailedDiff, tc.want)
			}
			for k, kind := range tc.want {
				if resp.DetailedDiff[k].Kind != kind {
					t.Errorf("%s: %v, want %s (all: %v)", k, resp.DetailedDiff[k], kind, resp.DetailedDiff)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestLifecycleOverSSHD drives the provider's Create, Read, Diff and Update
// (the engine's calls, through pulumi-go-provider's test server) against a
// real sshd in a mount namespace.
func TestLifecycleOverSSHD(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sshd and mosquitto in a mount namespace")
	}
	h := startHost(t)
	s := server(t)
	srv := h.srv
	conf := mosquittoConf(h.mqPort)
	in := func(hostKey, acl string) property.Map {
		m := inputs(srv.Host, srv.Port, srv.ClientKey, hostKey, acl)
		files := m.Get("files").AsMap().Set("/etc/mosquitto/mosquitto.conf", obj("content", str(conf), "daemons", strs("mosquitto")))
		return m.Set("files", property.New(files))
	}
	check := func(m property.Map) property.Map {
		resp, err := s.Check(p.CheckRequest{Urn: testURN, Inputs: m})
		if err != nil || len(resp.Failures) > 0 {
			t.Fatalf("check: %v %v", err, resp.Failures)
		}
		return resp.Inputs
	}

	// a wrong pinned key is refused before anything is written
	_, err := s.Create(p.CreateRequest{Urn: testURN, Properties: check(in(sshdtest.NewKeyLine(t), "topic read a\n"))})
	var mm *sshconn.HostKeyMismatchError
	if err == nil || !strings.Contains(err.Error(), "host key mismatch") {
		t.Fatalf("create with a wrong key: %v", err)
	}
	_ = errors.As(err, &mm)
	if got := h.sh(t, "ls -A /etc/mosquitto"); got != "" {
		t.Fatalf("files written despite a key mismatch: %s", got)
	}

	// first contact without a pinned key records the key (cloud servers)
	created, err := s.Create(p.CreateRequest{Urn: testURN, Properties: check(in("", "topic read a\n"))})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	st := created.Properties
	if k := st.Get("hostKey").AsString(); k != srv.HostKey && k != srv.OtherKey {
		t.Fatalf("recorded host key %q is not the server's", k)
	}
	if st.Get("mosquittoVersion").AsString() == "" || !strings.HasPrefix(st.Get("hostKeyFingerprint").AsString(), "SHA256:") {
		t.Errorf("outputs: %v", st)
	}
	if strings.Contains(fmt.Sprint(st.AsMap()), "dev1:$7$x") {
		t.Errorf("secret content in the state: %v", st)
	}

	// a hand edit: refresh sees it, Diff names the file, Update repairs it
	h.sh(t, "echo 'topic readwrite #' >> /etc/mosquitto/acl")
	read, err := s.Read(p.ReadRequest{ID: created.ID, Urn: testURN, Properties: st, Inputs: check(in("", "topic read a\n"))})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if read.Properties.Get("files").AsMap().Get("/etc/mosquitto/acl").AsMap().Get("sha256").AsString() ==
		st.Get("files").AsMap().Get("/etc/mosquitto/acl").AsMap().Get("sha256").AsString() {
		t.Fatal("refresh did not see the hand edit")
	}
	diff, err := s.Diff(p.DiffRequest{ID: created.ID, Urn: testURN, State: read.Properties, Inputs: check(in("", "topic read a\n"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := diff.DetailedDiff[`files["/etc/mosquitto/acl"]`]; !ok || len(diff.DetailedDiff) != 1 {
		t.Fatalf("diff after drift: %v, want only files[\"/etc/mosquitto/acl\"]", diff.DetailedDiff)
	}
	upd, err := s.Update(p.UpdateRequest{ID: created.ID, Urn: testURN, State: read.Properties, Inputs: check(in("", "topic read a\n"))})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if got := h.sh(t, "cat /etc/mosquitto/acl"); got != "topic read a" {
		t.Errorf("drift not repaired: %q", got)
	}
	diff, err = s.Diff(p.DiffRequest{ID: created.ID, Urn: testURN, State: upd.Properties, Inputs: check(in("", "topic read a\n"))})
	if err != nil || diff.HasChanges {
		t.Errorf("diff after repair: %v %v", diff.DetailedDiff, err)
	}

	// the recorded key is pinned: a different key in the state is refused
	other := upd.Properties.Set("hostKey", str(sshdtest.NewKeyLine(t)))
	_, err = s.Update(p.UpdateRequest{ID: created.ID, Urn: testURN, State: other, Inputs: check(in("", "topic read b\n"))})
	if err == nil || !strings.Contains(err.Error(), "host key mismatch") {
		t.Fatalf("update against a changed recorded key: %v", err)
	}
	if got := h.sh(t, "cat /etc/mosquitto/acl"); got != "topic read a" {
		t.Errorf("written despite a key mismatch: %q", got)
	}

	// delete leaves the host as it is
	if err := s.Delete(p.DeleteRequest{ID: created.ID, Urn: testURN, Properties: upd.Properties}); err != nil {
		t.Fatal(err)
	}
	if got := h.sh(t, "cat /etc/mosquitto/acl"); got != "topic read a" {
		t.Errorf("delete changed the host: %q", got)
	}
}

func inferDiff(s State, a Args) infer.DiffRequest[Args, State] {
	return infer.DiffRequest[Args, State]{ID: "h", State: s, Inputs: a}
}
