package hostprovider

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/mqttstack/mqttstack/infra/hostres"
)

// TestEngine runs the real Pulumi engine (bin/pulumi from `make pulumi`,
// an inline Automation API program, a file backend) with this provider
// built and installed as a plugin, against a real sshd in a mount
// namespace: up, a second up with no changes, drift on refresh named per
// file in the preview, repair, and no secret in the state or the output.
func TestEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the provider and runs the Pulumi engine")
	}
	root, _ := filepath.Abs(repoRoot(t))
	cli := filepath.Join(root, "bin", "pulumi")
	if _, err := os.Stat(cli); err != nil {
		t.Skipf("no Pulumi CLI at %s: build it with `make pulumi` (this test needs the real engine)", cli)
	}
	// certbot on the host is a stand-in that fails like a rate-limited
	// one (fault injection: the real one would need Let's Encrypt)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	standIn := "#!/bin/sh\necho 'An unexpected error occurred:' >&2\necho 'Error creating new order :: too many certificates already issued for exact set of domains (stand-in certbot)' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "bin", "certbot"), []byte(standIn), 0o755); err != nil {
		t.Fatal(err)
	}
	h := startHost(t, "mount --bind "+filepath.Join(dir, "bin")+" /usr/local/bin")
	home, state := filepath.Join(dir, "home"), filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	plugin := filepath.Join(dir, "pulumi-resource-mqttstack")
	build := exec.CommandContext(ctx, "go", "build", "-o", plugin, "./cmd/pulumi-resource-mqttstack")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build provider: %v\n%s", err, out)
	}
	env := map[string]string{
		"PULUMI_CONFIG_PASSPHRASE":                    "test-passphrase",
		"PULUMI_SKIP_UPDATE_CHECK":                    "true",
		"PULUMI_IGNORE_AMBIENT_PLUGINS":               "true",
		"PULUMI_BACKEND_URL":                          "file://" + state,
		"PULUMI_HOME":                                 home,
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
	}
	install := exec.CommandContext(ctx, cli, "plugin", "install", "resource", hostres.PluginName, hostres.PluginVersion, "--file", plugin)
	install.Env = os.Environ()
	for k, v := range env {
		install.Env = append(install.Env, k+"="+v)
	}
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("plugin install: %v\n%s", err, out)
	}

	const secretLine = "dev1:$7$secret-marker"
	acl := "topic read a\n"
	var acme *hostres.Acme
	program := func(pctx *pulumi.Context) error {
		hc, err := hostres.NewHostConfig(pctx, "host", &hostres.HostConfigArgs{
			Connection: hostres.Connection{
				Host: pulumi.String(h.srv.Host), Port: h.srv.Port, User: h.srv.User,
				PrivateKey: pulumi.String(string(h.srv.ClientKey)), HostKey: pulumi.String(h.srv.HostKey),
			},
			Files: map[string]hostres.File{
				"/etc/mosquitto/mosquitto.conf": {Content: pulumi.String(mosquittoConf(h.mqPort)), Daemons: []string{hostres.Mosquitto}},
				"/etc/mosquitto/acl":            {Content: pulumi.String(acl), Mode: "0640", Owner: "root:mosquitto", Daemons: []string{hostres.Mosquitto}},
				"/etc/mosquitto/seeded.conf":    {Content: pulumi.String("# seeded\n"), Seed: true},
			},
			Acme: acme,
			SecretFiles: map[string]hostres.File{
				// not a valid hash: Mosquitto 2.0.11 skips such a line
				"/etc/mosquitto/passwd": {Content: pulumi.String(secretLine + "\n"), Mode: "0640", Owner: "root:mosquitto", Daemons: []string{hostres.Mosquitto}},
			},
			RetryBudget: 20 * time.Second,
		})
		if err != nil {
			return err
		}
		pctx.Export("configHash", hc.ConfigHash)
		pctx.Export("fingerprint", hc.HostKeyFingerprint)
		pctx.Export("mosquittoVersion", hc.MosquittoVersion)
		pctx.Export("acmeStatus", hc.AcmeStatus)
		return nil
	}
	cmd, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: root, SkipVersionCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	stack, err := auto.UpsertStackInlineSource(ctx, "test", "mqttstack-provider-test", program,
		auto.Pulumi(cmd), auto.WorkDir(dir), auto.PulumiHome(home), auto.EnvVars(env), auto.SecretsProvider("passphrase"),
		auto.Project(workspace.Project{Name: "mqttstack-provider-test", Runtime: workspace.NewProjectRuntimeInfo("go", nil),
			Backend: &workspace.ProjectBackend{URL: "file://" + state}}))
	if err != nil {
		t.Fatalf("stack: %v", err)
	}
	var out bytes.Buffer

	up, err := stack.Up(ctx, optup.ProgressStreams(&out))
	if err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	if v := up.Outputs["mosquittoVersion"].Value; v == "" || v == "none" {
		t.Errorf("mosquittoVersion output %v", v)
	}
	if fp, _ := up.Outputs["fingerprint"].Value.(string); !strings.HasPrefix(fp, "SHA256:") {
		t.Errorf("fingerprint output %v", up.Outputs["fingerprint"].Value)
	}
	pid := h.pid(t, "mosquitto")

	// no change: the engine calls Diff, nothing runs on the host
	up2, err := stack.Up(ctx, optup.ProgressStreams(&out))
	if err != nil {
		t.Fatalf("second up: %v", err)
	}
	if n := (*up2.Summary.ResourceChanges)["update"]; n != 0 {
		t.Errorf("second up updated %d resources, want none", n)
	}
	if h.pid(t, "mosquitto") != pid {
		t.Error("a no-change up restarted mosquitto")
	}

	// drift: refresh sees the hand edit; the preview names the file
	h.sh(t, "echo 'topic readwrite #' >> /etc/mosquitto/acl")
	h.sh(t, "echo '# the owner of a seed file changed it' >> /etc/mosquitto/seeded.conf")
	if _, err := stack.Refresh(ctx, optrefresh.ProgressStreams(&out)); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	var prev bytes.Buffer
	pr, err := stack.Preview(ctx, optpreview.Diff(), optpreview.ProgressStreams(&prev))
	if err != nil {
		t.Fatalf("preview: %v\n%s", err, prev.String())
	}
	if pr.ChangeSummary["update"] != 1 {
		t.Errorf("preview after drift: %v, want one update\n%s", pr.ChangeSummary, prev.String())
	}
	if !strings.Contains(prev.String(), `/etc/mosquitto/acl`) {
		t.Errorf("preview does not name the drifted file:\n%s", prev.String())
	}
	if strings.Contains(prev.String(), "seeded.conf") {
		t.Errorf("preview names a changed seed file (create only: no drift):\n%s", prev.String())
	}
	t.Logf("preview after drift:\n%s", prev.String())
	var repair bytes.Buffer
	if _, err := stack.Up(ctx, optup.ProgressStreams(&repair)); err != nil {
		t.Fatalf("repair up: %v\n%s", err, repair.String())
	}
	out.Write(repair.Bytes())
	// the engine shows what the provider did: only the ACL, only a SIGHUP
	if !strings.Contains(repair.String(), "wrote /etc/mosquitto/acl; then") || !strings.Contains(repair.String(), "reload-or-restart:mosquitto") {
		t.Errorf("repair up does not report an ACL write and a reload:\n%s", repair.String())
	}
	if got := h.sh(t, "cat /etc/mosquitto/acl"); got != strings.TrimSpace(acl) {
		t.Errorf("drift not repaired: %q", got)
	}
	if got := h.sh(t, "cat /etc/mosquitto/seeded.conf"); !strings.Contains(got, "owner of a seed file") {
		t.Errorf("the seed file was rewritten: %q", got)
	}

	// a changed ACL: the preview names exactly that file
	acl = "topic read b\n"
	prev.Reset()
	pr, err = stack.Preview(ctx, optpreview.Diff(), optpreview.ProgressStreams(&prev))
	if err != nil {
		t.Fatalf("preview: %v", err)
	}
	// the engine shows a per-path diff: ~ files: { ~ /etc/mosquitto/acl: { ~ content: ...
	if !strings.Contains(prev.String(), "~ /etc/mosquitto/acl:") || !strings.Contains(prev.String(), "+ topic read b") {
		t.Errorf("preview does not name the changed file:\n%s", prev.String())
	}
	if strings.Contains(prev.String(), "mosquitto.conf:") || strings.Contains(prev.String(), "passwd:") {
		t.Errorf("preview names an unchanged file:\n%s", prev.String())
	}
	t.Logf("preview of an ACL change:\n%s", prev.String())

	// acme with a failing certbot: the up succeeds, the engine shows
	// certbot's message as a warning, acmeStatus says failed, and the next
	// preview wants to try again
	acme = &hostres.Acme{Domain: "mqtt.example.com", Email: "ops@example.com", Webroot: "/var/www/acme"}
	var acmeUp bytes.Buffer
	up3, err := stack.Up(ctx, optup.ProgressStreams(&acmeUp))
	if err != nil {
		t.Fatalf("up with a failing certbot: %v (must not fail the apply)\n%s", err, acmeUp.String())
	}
	out.Write(acmeUp.Bytes())
	if !strings.Contains(acmeUp.String(), "warning:") || !strings.Contains(acmeUp.String(), "too many certificates already issued") {
		t.Errorf("the up does not warn with certbot's message:\n%s", acmeUp.String())
	}
	if st, _ := up3.Outputs["acmeStatus"].Value.(string); !strings.HasPrefix(st, "failed: ") || !strings.Contains(st, "too many certificates") {
		t.Errorf("acmeStatus output %q", st)
	}
	if got := h.sh(t, "cat /etc/mosquitto/acl"); got != strings.TrimSpace(acl) {
		t.Errorf("the configuration was not applied alongside a failing certbot: acl %q", got)
	}
	prev.Reset()
	pr, err = stack.Preview(ctx, optpreview.Diff(), optpreview.ProgressStreams(&prev))
	if err != nil {
		t.Fatalf("preview: %v", err)
	}
	if pr.ChangeSummary["update"] != 1 || !strings.Contains(prev.String(), "acme") {
		t.Errorf("preview after a failed certbot: %v, want the acme retry\n%s", pr.ChangeSummary, prev.String())
	}
	t.Logf("up with a failing certbot:\n%s", acmeUp.String())

	// no secret in the output or in any file of the backend (state,
	// history, backups): secrets there are ciphertext
	texts := map[string]string{"output": out.String() + prev.String()}
	checked := 0
	err = filepath.WalkDir(state, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if strings.HasSuffix(p, ".json") {
			checked++
		}
		texts[p] = string(b)
		return err
	})
	if err != nil || checked == 0 {
		t.Fatalf("read the backend's files: %v (%d state files)", err, checked)
	}
	for name, text := range texts {
		if strings.Contains(text, "secret-marker") {
			t.Errorf("the secret file's content appears in plaintext in %s", name)
		}
		if strings.Contains(text, "PRIVATE KEY") {
			t.Errorf("the private key appears in plaintext in %s", name)
		}
	}
	if _, err := stack.Destroy(ctx); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	if got := h.sh(t, "cat /etc/mosquitto/acl"); got != strings.TrimSpace(acl) {
		t.Errorf("destroy changed the host: %q", got)
	}
}
