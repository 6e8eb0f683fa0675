package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/loadtest"
	"github.com/mqttstack/mqttstack/scenarios"
	"github.com/mqttstack/mqttstack/target"
)

// mocks records every registered resource and plays the Kubernetes
// provider's part that the code reads back: auto-naming.
type mocks struct {
	mu        sync.Mutex
	resources []pulumi.MockResourceArgs
}

func (m *mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resources = append(m.resources, args)
	state := args.Inputs.Copy()
	if md, ok := state["metadata"]; ok && md.IsObject() {
		obj := md.ObjectValue().Copy()
		if _, named := obj["name"]; !named {
			obj["name"] = resource.NewStringProperty(args.Name + "-1a2b3c")
		}
		state["metadata"] = resource.NewObjectProperty(obj)
	}
	return args.Name + "-id", state, nil
}

func (m *mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return args.Args, nil
}

// ofType returns the recorded resources of one type, sorted by name.
func (m *mocks) ofType(typ string) []pulumi.MockResourceArgs {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []pulumi.MockResourceArgs
	for _, r := range m.resources {
		if r.TypeToken == typ {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (m *mocks) byName(t testing.TB, name string) pulumi.MockResourceArgs {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.resources {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no resource %q registered", name)
	return pulumi.MockResourceArgs{}
}

// fixture is an operator's machine: a PKI with devices, a deployed
// stack's target and a scenario file.
type fixture struct {
	dir, pki, target, scenario string
	ids                        []string
}

const testScenario = `name: launch
fleet: {count: 10, prefix: dev-, transport: mqtts, qos: 1}
connect: {rate: 100/s}
stages:
  - {kind: ramp}
  - {kind: steady, duration: 2m, every: 5s}
commands: {rate: 5/s}
thresholds:
  loss: "== 0"
`

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{
		dir:      dir,
		pki:      filepath.Join(dir, "pki"),
		target:   filepath.Join(dir, "target.json"),
		scenario: filepath.Join(dir, "launch.yaml"),
		ids:      certs.DeviceIDs("dev-", 1, 10),
	}
	ca, err := certs.Init(certs.InitOptions{Dir: f.pki, ServerName: "mqtt.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueClients(context.Background(), f.ids); err != nil {
		t.Fatal(err)
	}
	tg := &target.Target{
		Name: "cloud", Host: "203.0.113.7", ServerName: "mqtt.example.com", MQTTSPort: 8883,
		CACert: "pki/ca.crt", PKIDir: "pki", Observer: "observer", Backend: "backend",
	}
	if err := tg.Save(f.target); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.scenario, []byte(testScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) config(extra map[string]string) map[string]string {
	c := map[string]string{
		"scenario": f.scenario,
		"target":   f.target,
		"shards":   "3",
		"image":    "registry.example.com/mqttstack:test",
	}
	for k, v := range extra {
		if v == "" {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// runProgram runs Program under mocks with the given stack config, the
// way `pulumi up` (or preview, when dryRun) would.
func runProgram(t *testing.T, cfg map[string]string, dryRun bool) (*mocks, error) {
	t.Helper()
	env := map[string]string{}
	for k, v := range cfg {
		env[Project+":"+k] = v
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PULUMI_CONFIG", string(b))
	t.Setenv("PULUMI_DRY_RUN", fmt.Sprint(dryRun))
	m := &mocks{}
	err = pulumi.RunErr(Program, pulumi.WithMocks(Project, "test", m))
	return m, err
}

// dig walks nested objects of a property map; secrets are looked through.
func dig(t testing.TB, v resource.PropertyValue, path ...string) resource.PropertyValue {
	t.Helper()
	for _, k := range path {
		if v.IsSecret() {
			v = v.SecretValue().Element
		}
		if !v.IsObject() {
			t.Fatalf("%s: not an object at %q: %v", strings.Join(path, "."), k, v)
		}
		v = v.ObjectValue()[resource.PropertyKey(k)]
	}
	if v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v
}

func strs(v resource.PropertyValue) []string {
	var out []string
	for _, e := range v.ArrayValue() {
		out = append(out, e.StringValue())
	}
	return out
}

const (
	jobType    = "kubernetes:batch/v1:Job"
	secretType = "kubernetes:core/v1:Secret"
)

func TestProgramDeploysIndexedJob(t *testing.T) {
	f := newFixture(t)
	m, err := runProgram(t, f.config(nil), false)
	if err != nil {
		t.Fatal(err)
	}

	jobs := m.ofType(jobType)
	if len(jobs) != 1 {
		t.Fatalf("%d Jobs registered, want 1", len(jobs))
	}
	job := resource.NewObjectProperty(jobs[0].Inputs)
	spec := dig(t, job, "spec")
	if got := dig(t, spec, "completionMode").StringValue(); got != "Indexed" {
		t.Errorf("completionMode %q, want Indexed", got)
	}
	if c, p := dig(t, spec, "completions").NumberValue(), dig(t, spec, "parallelism").NumberValue(); c != 3 || p != 3 {
		t.Errorf("completions %v, parallelism %v; want 3 and 3", c, p)
	}
	if got := dig(t, spec, "backoffLimitPerIndex").NumberValue(); got != 1 {
		t.Errorf("backoffLimitPerIndex %v, want 1", got)
	}
	if got := dig(t, spec, "ttlSecondsAfterFinished").NumberValue(); got != 86400 {
		t.Errorf("ttlSecondsAfterFinished %v, want 86400", got)
	}
	// 10 devices at 100/s ramp in 0.1s, then 2m steady, plus the 10m
	// default margin: 720.1s, rounded up.
	if got := dig(t, spec, "activeDeadlineSeconds").NumberValue(); got != 721 {
		t.Errorf("activeDeadlineSeconds %v, want 721", got)
	}
	// A negative verdict (exit 1) ends only that shard; bad input (exit 2)
	// ends the Job, since every shard would fail alike.
	actions := map[float64]string{}
	for _, r := range dig(t, spec, "podFailurePolicy", "rules").ArrayValue() {
		if codes, ok := dig(t, r).ObjectValue()["onExitCodes"]; ok {
			for _, c := range dig(t, codes, "values").ArrayValue() {
				actions[c.NumberValue()] = dig(t, r, "action").StringValue()
			}
		}
	}
	if actions[1] != "FailIndex" || actions[2] != "FailJob" {
		t.Errorf("exit code actions %v, want 1: FailIndex, 2: FailJob", actions)
	}
	// The old Job is deleted before its replacement starts, and `pulumi up`
	// waits for the whole run, not the provider's default 10 minutes.
	rpc := jobs[0].RegisterRPC
	if rpc == nil || !rpc.GetDeleteBeforeReplace() || rpc.GetCustomTimeouts().GetCreate() != "17m1s" {
		t.Errorf("job options: deleteBeforeReplace %v, create timeout %q", rpc.GetDeleteBeforeReplace(), rpc.GetCustomTimeouts().GetCreate())
	}
	pod := dig(t, spec, "template", "spec")
	if got := dig(t, pod, "restartPolicy").StringValue(); got != "Never" {
		t.Errorf("restartPolicy %q, want Never", got)
	}
	ctr := dig(t, pod, "containers").ArrayValue()[0]
	command := strs(dig(t, ctr, "command"))
	if len(command) != 3 || command[0] != "/bin/sh" || command[1] != "-c" {
		t.Fatalf("command %q: want /bin/sh -c SCRIPT", command)
	}
	script := command[2]
	for _, want := range []string{
		"exec mqttstack run /scenario/launch.yaml ",
		` --shard "$$((JOB_COMPLETION_INDEX + 1))/3" `,
		" --target /target/target.json ",
		` --out "/results/launch-`,
		" --allow-load",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("pod script %q lacks %q", script, want)
		}
	}
	var indexEnv string
	for _, e := range dig(t, ctr, "env").ArrayValue() {
		if dig(t, e, "name").StringValue() == "JOB_COMPLETION_INDEX" {
			indexEnv = dig(t, e, "valueFrom", "fieldRef", "fieldPath").StringValue()
		}
	}
	if indexEnv != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
		t.Errorf("JOB_COMPLETION_INDEX comes from %q", indexEnv)
	}
	// The largest shard has 4 devices: 128Mi + 4 × 64Ki, rounded up.
	if got := dig(t, ctr, "resources", "limits", "memory").StringValue(); got != "129Mi" {
		t.Errorf("memory limit %q, want 129Mi", got)
	}
	if _, ok := dig(t, ctr, "resources", "limits").ObjectValue()["cpu"]; ok {
		t.Error("a CPU limit is set; throttling would be measured as broker latency")
	}

	// The projected identities volume lists exactly the shard Secrets.
	var projected []string
	for _, v := range dig(t, pod, "volumes").ArrayValue() {
		if dig(t, v, "name").StringValue() == "identities" {
			for _, src := range dig(t, v, "projected", "sources").ArrayValue() {
				projected = append(projected, dig(t, src, "secret", "name").StringValue())
			}
		}
	}
	if want := []string{"loadgen-shard-0-1a2b3c", "loadgen-shard-1-1a2b3c", "loadgen-shard-2-1a2b3c"}; !slices.Equal(projected, want) {
		t.Errorf("projected secrets %q, want %q", projected, want)
	}

	// Every key of every Secret is a Pulumi secret.
	secrets := m.ofType(secretType)
	if len(secrets) != 4 {
		t.Fatalf("%d Secrets, want target + 3 shards", len(secrets))
	}
	for _, s := range secrets {
		data := s.Inputs["stringData"]
		if !data.IsSecret() {
			for k, v := range data.ObjectValue() {
				if !v.IsSecret() {
					t.Errorf("secret %s: key %s is not a Pulumi secret", s.Name, k)
				}
			}
		}
		if len(dig(t, data).ObjectValue()) == 0 {
			t.Errorf("secret %s is empty", s.Name)
		}
	}

	// Each shard Secret holds exactly its slice of devices, byte for byte,
	// plus its own observer and (commands are on) backend identity.
	seen := map[string]int{}
	for i := range 3 {
		data := dig(t, m.byName(t, fmt.Sprintf("loadgen-shard-%d", i)).Inputs["stringData"]).ObjectValue()
		from, to := ShardRange(10, i, 3)
		want := map[string]bool{}
		for _, id := range append(slices.Clone(f.ids[from:to]), fmt.Sprintf("observer-%d", i+1), fmt.Sprintf("backend-%d", i+1)) {
			for _, ext := range []string{".crt", ".key", ".pass"} {
				want[id+ext] = true
			}
		}
		for k, v := range data {
			key := string(k)
			if !want[key] {
				t.Errorf("shard %d holds %s, which is not its own", i, key)
				continue
			}
			delete(want, key)
			seen[key]++
			onDisk, err := os.ReadFile(filepath.Join(f.pki, "clients", key))
			if err != nil || string(onDisk) != v.StringValue() {
				t.Errorf("shard %d: %s differs from the PKI's file (%v)", i, key, err)
			}
		}
		if len(want) > 0 {
			t.Errorf("shard %d lacks %v", i, want)
		}
	}
	for _, id := range f.ids {
		if seen[id+".crt"] != 1 || seen[id+".key"] != 1 {
			t.Errorf("device %s is in %d shards", id, seen[id+".crt"])
		}
	}

	// The pod's target points at the mounts and keeps the stack's address.
	tdata := dig(t, m.byName(t, "loadgen-target").Inputs["stringData"]).ObjectValue()
	var pt target.Target
	if err := json.Unmarshal([]byte(tdata["target.json"].StringValue()), &pt); err != nil {
		t.Fatal(err)
	}
	if pt.CACert != "/target/ca.crt" || pt.PKIDir != "/pki" || pt.Host != "203.0.113.7" || pt.Local != nil {
		t.Errorf("pod target %+v", pt)
	}
	ca, _ := os.ReadFile(filepath.Join(f.pki, "ca.crt"))
	if tdata["ca.crt"].StringValue() != string(ca) {
		t.Error("target secret's ca.crt is not the PKI's CA certificate")
	}

	cm := m.ofType("kubernetes:core/v1:ConfigMap")
	if len(cm) != 1 || dig(t, resource.NewObjectProperty(cm[0].Inputs), "data", "launch.yaml").StringValue() != testScenario {
		t.Error("the scenario ConfigMap does not hold the scenario file as launch.yaml")
	}
	if ns := m.ofType("kubernetes:core/v1:Namespace"); len(ns) != 1 || dig(t, resource.NewObjectProperty(ns[0].Inputs), "metadata", "name").StringValue() != DefaultNamespace {
		t.Errorf("namespace: %v", ns)
	}
	if pvc := m.ofType("kubernetes:core/v1:PersistentVolumeClaim"); len(pvc) != 1 || strs(dig(t, resource.NewObjectProperty(pvc[0].Inputs), "spec", "accessModes"))[0] != ReadWriteMany {
		t.Errorf("results claim: %v", pvc)
	}
	if comps := m.ofType(TypeToken); len(comps) != 1 {
		t.Errorf("%d %s components", len(comps), TypeToken)
	}
}

// The fetch command names the namespace, the collector pod and the run's
// directory, which is also where the pods write.
func TestFetchCommand(t *testing.T) {
	f := newFixture(t)
	a, err := ArgsFromConfig(mapGetter(f.config(nil)))
	if err != nil {
		t.Fatal(err)
	}
	// RunErr does not wait for an apply that no resource depends on: the
	// callback hands its values over a channel, and the test waits for it.
	got := make(chan [2]string, 1)
	m := &mocks{}
	err = pulumi.RunErr(func(ctx *pulumi.Context) error {
		lg, err := NewLoadGenerators(ctx, "lg", a)
		if err != nil {
			return err
		}
		pulumi.All(lg.FetchCommand, lg.ResultsDir).ApplyT(func(v []any) error {
			got <- [2]string{v[0].(string), v[1].(string)}
			return nil
		})
		return nil
	}, pulumi.WithMocks(Project, "test", m))
	if err != nil {
		t.Fatal(err)
	}
	var fetch, dir string
	select {
	case v := <-got:
		fetch, dir = v[0], v[1]
	case <-time.After(30 * time.Second):
		t.Fatal("the fetch command output never resolved")
	}
	want := fmt.Sprintf("kubectl cp %s/lg-collector:/results/%s %s", DefaultNamespace, dir, dir)
	if fetch != want {
		t.Errorf("fetch command %q, want %q", fetch, want)
	}
}

// A preview registers the same graph without the provider's outputs.
func TestProgramPreview(t *testing.T) {
	f := newFixture(t)
	m, err := runProgram(t, f.config(map[string]string{"createNamespace": "false", "resultsAccessMode": ReadWriteOnce}), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.ofType("kubernetes:core/v1:Namespace")) != 0 {
		t.Error("createNamespace=false still created a namespace")
	}
	jobs := m.ofType(jobType)
	if len(jobs) != 1 {
		t.Fatalf("%d Jobs in preview", len(jobs))
	}
	// ReadWriteOnce: every shard must run on the collector's node.
	term := dig(t, resource.NewObjectProperty(jobs[0].Inputs), "spec", "template", "spec", "affinity", "podAffinity",
		"requiredDuringSchedulingIgnoredDuringExecution").ArrayValue()
	if len(term) != 1 || dig(t, term[0], "labelSelector", "matchLabels", "app.kubernetes.io/component").StringValue() != "collector" {
		t.Errorf("ReadWriteOnce affinity: %v", term)
	}
}

func mapGetter(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestBadConfigNamesEveryKey(t *testing.T) {
	f := newFixture(t)
	m, err := runProgram(t, f.config(map[string]string{
		"shards":            "three",
		"image":             "",
		"resultsAccessMode": "RWX",
		"deadlineMargin":    "soon",
		"memoryPerDevice":   "lots",
		"cpu":               "1 core",
		"namespace":         "Load_Gen",
	}), false)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, key := range []string{"shards:", "image:", "resultsAccessMode:", "deadlineMargin:", "memoryPerDevice:", "cpu:", "namespace:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s\n%v", key, err)
		}
	}
	// One line per problem: "shards" is reported once although it is
	// also below the minimum.
	if n := strings.Count(err.Error(), "shards:"); n != 1 {
		t.Errorf("shards reported %d times:\n%v", n, err)
	}
	if len(m.ofType(jobType)) != 0 {
		t.Error("a Job was registered despite bad config")
	}
}

func TestMissingRequiredConfig(t *testing.T) {
	m, err := runProgram(t, map[string]string{}, false)
	if err == nil {
		t.Fatal("empty config accepted")
	}
	for _, key := range []string{"scenario:", "target:", "shards:", "image:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s\n%v", key, err)
		}
	}
	if len(m.resources) != 0 {
		t.Errorf("%d resources registered despite missing config", len(m.resources))
	}
}

func TestLocalTargetRefused(t *testing.T) {
	f := newFixture(t)
	tg, err := target.Load(f.target)
	if err != nil {
		t.Fatal(err)
	}
	tg.Host = "127.0.0.1"
	tg.CACert, tg.PKIDir = filepath.Join(f.pki, "ca.crt"), f.pki
	if err := tg.Save(f.target); err != nil {
		t.Fatal(err)
	}
	_, err = ArgsFromConfig(mapGetter(f.config(nil)))
	if err == nil || !strings.Contains(err.Error(), "target: host \"127.0.0.1\"") {
		t.Fatalf("loopback target: %v", err)
	}
}

// With 9 shards, shard 8 needs observer-9, which certs.Init does not issue.
func TestMissingShardIdentity(t *testing.T) {
	f := newFixture(t)
	_, err := runProgram(t, f.config(map[string]string{"shards": "9"}), false)
	if err == nil || !strings.Contains(err.Error(), "clients/observer-9.crt") || !strings.Contains(err.Error(), "clients/backend-9.key") {
		t.Fatalf("missing observer-9/backend-9 not reported: %v", err)
	}
	if !strings.Contains(err.Error(), "mqttstack certs issue --id backend-9,observer-9") {
		t.Errorf("no command to issue the shard identities: %v", err)
	}
	if strings.Contains(err.Error(), "--count") {
		t.Errorf("devices are all there, yet the error says to issue some: %v", err)
	}
}

// bigFleet is a PKI as an fs.FS whose identities are devices × per bytes,
// plus an observer for each of up to 16 shards.
func bigFleet(devices, per int) fstest.MapFS {
	fsys := fstest.MapFS{}
	blob := strings.Repeat("x", per/2)
	ids := certs.DeviceIDs("dev-", 1, devices)
	for i := 0; i <= 16; i++ {
		ids = append(ids, ShardIdentity("observer", i, 17))
	}
	ids = append(ids, "observer")
	for _, id := range ids {
		fsys["clients/"+id+".crt"] = &fstest.MapFile{Data: []byte(blob)}
		fsys["clients/"+id+".key"] = &fstest.MapFile{Data: []byte(blob)}
	}
	return fsys
}

func TestShardTooLargeForSecret(t *testing.T) {
	// 3,000 devices of about 1 KiB each is ~3 MiB: two shards cannot fit.
	fsys := bigFleet(3000, 1000)
	s, err := scenarios.Parse("big.yaml", []byte(strings.Replace(testScenario, "count: 10", "count: 3000", 1)))
	if err != nil {
		t.Fatal(err)
	}
	s.Commands = nil
	a := &Args{
		Namespace: "lg", Image: "img", Shards: 2, Scenario: s, ScenarioYAML: []byte("x"), ScenarioFile: "big.yaml",
		Target: &target.Target{Host: "203.0.113.7", ServerName: "mqtt.example.com", MQTTSPort: 8883, CACert: "ca.crt", PKIDir: "pki", Observer: "observer"},
		CACert: []byte("ca"), PKI: fsys,
		Resources:      Resources{MemoryBase: 1 << 27, MemoryPerDevice: 1 << 16, CPU: "1"},
		Results:        Results{Size: "1Gi", AccessMode: ReadWriteMany},
		DeadlineMargin: DefaultDeadlineMargin,
	}
	m := &mocks{}
	err = pulumi.RunErr(func(ctx *pulumi.Context) error {
		_, err := NewLoadGenerators(ctx, "lg", a)
		return err
	}, pulumi.WithMocks(Project, "test", m))
	if err == nil {
		t.Fatal("a 1.5 MiB shard was accepted")
	}
	if !strings.Contains(err.Error(), "shard 0 (1500 devices)") || !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("error does not say which shard and the limit: %v", err)
	}
	if len(m.resources) != 0 {
		t.Errorf("%d resources registered for a deployment that cannot work", len(m.resources))
	}

	// The suggested count is the smallest that fits.
	var n int
	if _, err := fmt.Sscanf(err.Error()[strings.Index(err.Error(), "use at least "):], "use at least %d shards", &n); err != nil {
		t.Fatalf("no suggestion in %q", err)
	}
	in := planInput{pki: fsys, prefix: "dev-", devices: 3000, shards: n, observer: "observer"}
	if _, err := planShards(in); err != nil {
		t.Errorf("suggested %d shards do not fit: %v", n, err)
	}
	in.shards = n - 1
	if _, err := planShards(in); err == nil {
		t.Errorf("suggested %d shards, but %d fit too", n, n-1)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"64Ki": 65536, "128Mi": 128 << 20, "1G": 1e9, "4096": 4096} {
		if got, ok := parseBytes(in); !ok || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "lots", "-1Mi", "0", "1.5Gi", "9999999999Ti"} {
		if _, ok := parseBytes(in); ok {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}

// The capacity the docs promise ("about 1,100 ECDSA devices per shard"),
// measured on identities the certs package really issues.
func TestShardCapacityWithRealIdentities(t *testing.T) {
	f := newFixture(t)
	plans, err := planShards(planInput{pki: os.DirFS(f.pki), prefix: "dev-", devices: 10, shards: 1, observer: "observer"})
	if err != nil {
		t.Fatal(err)
	}
	observerBytes := 0
	for _, ext := range []string{".crt", ".key", ".pass"} {
		b, _ := os.ReadFile(filepath.Join(f.pki, "clients", "observer"+ext))
		observerBytes += len("observer"+ext) + len(b)
	}
	perDevice := (plans[0].bytes - observerBytes) / 10
	capacity := (secretBudget - observerBytes) / perDevice
	t.Logf("ECDSA identity: %d bytes per device, %d devices per shard Secret", perDevice, capacity)
	if capacity < 950 || capacity > 1300 {
		t.Errorf("%d devices fit one shard Secret; Pulumi.example.yaml says about 1,100", capacity)
	}
}

// Devices that connect over wss log in with their .pass file: a missing
// one is a deploy-time error, not a shard failing in the cluster.
func TestWSSNeedsPasswords(t *testing.T) {
	f := newFixture(t)
	if err := os.Remove(filepath.Join(f.pki, "clients", "dev-00004.pass")); err != nil {
		t.Fatal(err)
	}
	// Over mqtts the password is not needed and the deploy goes ahead.
	if _, err := runProgram(t, f.config(nil), true); err != nil {
		t.Fatalf("mqtts without dev-00004.pass: %v", err)
	}
	wss := strings.Replace(testScenario, "transport: mqtts", "transport: wss", 1)
	if err := os.WriteFile(f.scenario, []byte(wss), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := runProgram(t, f.config(nil), true)
	if err == nil || !strings.Contains(err.Error(), "clients/dev-00004.pass") {
		t.Fatalf("wss without dev-00004.pass: %v", err)
	}
}

// Each deployment writes to its own results directory, so a changed run
// never merges with an older one; runId forces a new one.
func TestResultsDirChangesWithRun(t *testing.T) {
	f := newFixture(t)
	dir := func(extra map[string]string) string {
		a, err := ArgsFromConfig(mapGetter(f.config(extra)))
		if err != nil {
			t.Fatal(err)
		}
		pt, err := podTargetJSON(a.Target)
		if err != nil {
			t.Fatal(err)
		}
		return resultsDirName(a.Scenario.Name, a, pt)
	}
	base := dir(nil)
	if !strings.HasPrefix(base, "launch-") {
		t.Errorf("results dir %q does not start with the scenario name", base)
	}
	if again := dir(nil); again != base {
		t.Errorf("same deployment, different dirs: %q, %q", base, again)
	}
	for _, change := range []map[string]string{{"shards": "2"}, {"runId": "2"}, {"image": "registry.example.com/mqttstack:other"}} {
		if d := dir(change); d == base {
			t.Errorf("%v: results dir unchanged (%q)", change, d)
		}
	}
}

// kubeExpand does what the kubelet does to a container's command before
// running it: "$$" becomes "$", "$(NAME)" becomes the variable's value
// when the container's environment has it, anything else stays.
func kubeExpand(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i:], ')')
			if end < 0 {
				b.WriteByte('$')
				continue
			}
			if v, ok := env[s[i+2:i+end]]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+end+1])
			}
			i += end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// Every pod of the Job runs the shard the CLI understands as its
// completion index: the script is expanded as Kubernetes would, run by a
// real /bin/sh with a stand-in mqttstack that prints its arguments, and
// the --shard it gets is parsed by the CLI's own parser.
func TestPodScriptRunsItsShard(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("no sh on PATH: %v", err)
	}
	bin := t.TempDir()
	fake := "#!" + sh + "\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n"
	if err := os.WriteFile(filepath.Join(bin, "mqttstack"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	const shards = 3
	command := shardCommand("launch.yaml", shards, "launch-0123456789")
	for i := range shards {
		index := strconv.Itoa(i)
		env := map[string]string{"JOB_COMPLETION_INDEX": index}
		cmd := exec.Command(sh, "-c", kubeExpand(command[2], env))
		cmd.Env = []string{"PATH=" + bin, "JOB_COMPLETION_INDEX=" + index}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("index %d: %v: %s", i, err, out)
		}
		argv := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		flag := func(name string) string {
			j := slices.Index(argv, name)
			if j < 0 || j+1 >= len(argv) {
				t.Fatalf("index %d: %s missing in %q", i, name, argv)
			}
			return argv[j+1]
		}
		if argv[0] != "run" || argv[1] != "/scenario/launch.yaml" {
			t.Errorf("index %d: argv %q", i, argv)
		}
		shard, err := loadtest.ParseShard(flag("--shard"))
		if err != nil || shard.Index != i || shard.Count != shards {
			t.Errorf("index %d: --shard %q parses as %+v, %v; want shard index %d of %d", i, flag("--shard"), shard, err, i, shards)
		}
		if got, want := flag("--out"), "/results/launch-0123456789/shard-"+index; got != want {
			t.Errorf("index %d: --out %q, want %q", i, got, want)
		}
		if !slices.Contains(argv, "--allow-load") || !slices.Contains(argv, "--quiet") {
			t.Errorf("index %d: argv %q lacks --allow-load or --quiet", i, argv)
		}
	}
}

// What a shard's Secret holds is exactly what the load engine loads for
// that shard: loadtest.Compile (without issuing, as in the pod) plans
// every shard against the same PKI, and its devices, observer and backend
// are the Secret's identities, no more and no fewer.
func TestEngineLoadsWhatTheShardSecretHolds(t *testing.T) {
	f := newFixture(t)
	m, err := runProgram(t, f.config(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scenarios.Load(f.scenario)
	if err != nil {
		t.Fatal(err)
	}
	// Compile only plans for loopback targets; the shard slices do not
	// depend on the address.
	tg := &target.Target{
		Name: "local", Host: "127.0.0.1", ServerName: "mqtt.example.com", MQTTSPort: 8883,
		CACert: filepath.Join(f.pki, "ca.crt"), PKIDir: f.pki, Observer: "observer", Backend: "backend",
	}
	for i := range 3 {
		plan, err := loadtest.Compile(context.Background(), sc, tg, loadtest.CompileOptions{Shard: loadtest.Shard{Index: i, Count: 3}})
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		if from, to := ShardRange(10, i, 3); plan.From != from || plan.To != to {
			t.Errorf("shard %d: engine runs [%d, %d), ShardRange says [%d, %d)", i, plan.From, plan.To, from, to)
		}
		data := dig(t, m.byName(t, fmt.Sprintf("loadgen-shard-%d", i)).Inputs["stringData"]).ObjectValue()
		var inSecret []string
		for k := range data {
			if id, ok := strings.CutSuffix(string(k), ".crt"); ok {
				inSecret = append(inSecret, id)
			}
		}
		needed := append(slices.Clone(plan.DeviceIDs), plan.Observer, plan.Backend)
		slices.Sort(inSecret)
		slices.Sort(needed)
		if !slices.Equal(inSecret, needed) {
			t.Errorf("shard %d: secret holds %q, engine loads %q", i, inSecret, needed)
		}
	}
}
