package loadgen

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/mqttstack/mqttstack/scenarios"
	"github.com/mqttstack/mqttstack/target"
)

// Project is the name of the deploy/loadgen Pulumi project; its config
// keys are "mqttstack-loadgen:<key>".
const Project = "mqttstack-loadgen"

// Defaults of the optional config keys (deploy/loadgen/Pulumi.example.yaml
// documents them).
const (
	DefaultNamespace       = "mqttstack-loadgen"
	DefaultCPU             = "1"
	DefaultMemoryBase      = "128Mi"
	DefaultMemoryPerDevice = "64Ki"
	DefaultResultsSize     = "1Gi"
	DefaultDeadlineMargin  = 10 * time.Minute
	DefaultTTL             = 24 * time.Hour
	DefaultRetriesPerShard = 1
)

// Program is the deploy/loadgen Pulumi program: read and validate the
// stack config, deploy LoadGenerators, export what the operator needs.
func Program(ctx *pulumi.Context) error {
	cfg := config.New(ctx, "")
	args, err := ArgsFromConfig(cfg.Get)
	if err != nil {
		return err
	}
	lg, err := NewLoadGenerators(ctx, "loadgen", args)
	if err != nil {
		return err
	}
	ctx.Export("namespace", lg.Namespace)
	ctx.Export("jobName", lg.JobName)
	ctx.Export("collectorPod", lg.CollectorPod)
	ctx.Export("resultsDir", lg.ResultsDir)
	merge := lg.ResultsDir.ApplyT(func(dir string) string {
		return MergeCommand(dir, scenarioRef(cfg.Get("scenario")))
	}).(pulumi.StringOutput)
	ctx.Export("fetchCommand", lg.FetchCommand)
	ctx.Export("mergeCommand", merge)
	// Both commands are known before anything is created; say them now,
	// so they are on screen even when a shard fails and `pulumi up` ends
	// in an error.
	pulumi.All(lg.FetchCommand, merge).ApplyT(func(v []any) error {
		return ctx.Log.Info(fmt.Sprintf("when the shards are done, fetch and merge the results:\n  %s\n  %s", v[0], v[1]), &pulumi.LogArgs{Resource: lg})
	})
	ctx.Export("shards", lg.Shards)
	ctx.Export("devicesPerShard", lg.DevicesPerShard)
	return nil
}

// MergeCommand is the command that merges the fetched shard results of
// dir (as FetchCommand copies them) and evaluates the scenario's
// thresholds on the whole fleet: a shard's own verdict does not add up to
// the fleet's.
func MergeCommand(dir, scenario string) string {
	return fmt.Sprintf("mqttstack report merge -o %s/merged.json -scenario %s %s/shard-*/*.json", dir, scenario, dir)
}

// scenarioRef is how the operator's shell names the scenario: a built-in
// by name, a file by absolute path (Pulumi runs the program in the
// project directory, the operator's shell is usually elsewhere).
func scenarioRef(arg string) string {
	if file, _, err := scenarioSource(arg); err == nil && file != arg+".yaml" {
		if abs, err := filepath.Abs(file); err == nil {
			return abs
		}
	}
	return arg
}

// ArgsFromConfig builds Args from the stack config (get returns "" for an
// unset key; Program passes config.Get, never Require, so that a stack with
// five mistakes hears of all five at once). It reads the scenario, the
// target, its CA certificate and opens the PKI directory. Every problem is
// reported, each with its key and an example.
func ArgsFromConfig(get func(key string) string) (*Args, error) {
	p := &problems{}
	a := &Args{
		Namespace:       orDefault(get("namespace"), DefaultNamespace),
		CreateNamespace: p.boolean(get, "createNamespace", true),
		Image:           get("image"),
		ImagePullPolicy: get("imagePullPolicy"),
		Shards:          p.integer(get, "shards", 0, "4"),
		Resources: Resources{
			CPU:             orDefault(get("cpu"), DefaultCPU),
			MemoryBase:      p.bytes(get, "memoryBase", DefaultMemoryBase),
			MemoryPerDevice: p.bytes(get, "memoryPerDevice", DefaultMemoryPerDevice),
		},
		Results: Results{
			StorageClass: get("resultsStorageClass"),
			Size:         orDefault(get("resultsSize"), DefaultResultsSize),
			AccessMode:   orDefault(get("resultsAccessMode"), ReadWriteMany),
		},
		DeadlineMargin:  p.duration(get, "deadlineMargin", DefaultDeadlineMargin),
		TTL:             p.duration(get, "ttl", DefaultTTL),
		RetriesPerShard: p.integer(get, "retriesPerShard", DefaultRetriesPerShard, "1"),
		RunID:           get("runId"),
		Wait:            p.boolean(get, "wait", true),
	}
	if get("shards") == "" {
		p.add("shards", "shards: required: how many pods share the fleet (e.g. pulumi config set shards 4)")
	}

	if arg := get("scenario"); arg == "" {
		p.add("scenario", "scenario: required: a built-in name or a file (e.g. pulumi config set scenario launch)")
	} else if file, data, err := scenarioSource(arg); err != nil {
		p.add("scenario", fmt.Sprintf("scenario: %v", err))
	} else if s, err := scenarios.Parse(file, data); err != nil {
		p.add("scenario", fmt.Sprintf("scenario: %v", err))
	} else {
		a.Scenario, a.ScenarioYAML, a.ScenarioFile = s, data, filepath.Base(file)
	}

	pkiDir := get("pkiDir")
	if path := get("target"); path == "" {
		p.add("target", "target: required (the deployed stack's target JSON, e.g. pulumi config set target ../../.mqttstack/cloud/target.json)")
	} else if t, err := target.Load(path); err != nil {
		p.add("target", fmt.Sprintf("target: %v", err))
	} else {
		a.Target = t
		if ca, err := os.ReadFile(t.CACert); err != nil {
			p.add("target", fmt.Sprintf("target: ca_cert: %v", err))
		} else {
			a.CACert = ca
		}
		if pkiDir == "" {
			pkiDir = t.PKIDir
		}
	}
	if pkiDir != "" {
		if st, err := os.Stat(filepath.Join(pkiDir, "clients")); err != nil || !st.IsDir() {
			p.add("pkiDir", fmt.Sprintf("pkiDir: %s has no clients/ directory (set pkiDir to the PKI that issued the devices, e.g. pulumi config set pkiDir ../../pki)", pkiDir))
		} else {
			a.PKI = os.DirFS(pkiDir)
		}
	}

	// Validate knows the cross-field rules; skip what it says about a key
	// whose value already failed to parse, so each mistake is told once.
	if err := a.Validate(); err != nil {
		for _, e := range unjoin(err) {
			key, _, _ := strings.Cut(e.Error(), ":")
			if !p.keys[key] {
				p.errs = append(p.errs, e)
			}
		}
	}
	if len(p.errs) > 0 {
		return nil, fmt.Errorf("stack config (%s:<key>): %w", Project, errors.Join(p.errs...))
	}
	return a, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// scenarioSource reads what the scenario key names, with the rule of
// scenarios.Resolve (a path when it has a directory or a YAML extension,
// else a built-in, else a file of that name). The pod gets the bytes, not
// the name, so it runs exactly what was deployed even if its image's
// built-ins differ.
func scenarioSource(arg string) (file string, data []byte, err error) {
	ext := filepath.Ext(arg)
	isPath := strings.ContainsRune(arg, '/') || strings.ContainsRune(arg, filepath.Separator) || ext == ".yaml" || ext == ".yml"
	if !isPath && slices.Contains(scenarios.BuiltinNames(), arg) {
		data, err := scenarios.BuiltinSource(arg)
		return arg + ".yaml", data, err
	}
	data, err = os.ReadFile(arg)
	if err != nil && !isPath {
		return "", nil, fmt.Errorf("%q is neither a built-in scenario (%s) nor a file", arg, strings.Join(scenarios.BuiltinNames(), ", "))
	}
	return arg, data, err
}

// problems collects config problems; keys records which keys have one.
type problems struct {
	errs []error
	keys map[string]bool
}

func (p *problems) add(key, msg string) {
	if p.keys == nil {
		p.keys = map[string]bool{}
	}
	p.keys[key] = true
	p.errs = append(p.errs, errors.New(msg))
}

func (p *problems) boolean(get func(string) string, key string, def bool) bool {
	v := get(key)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.add(key, fmt.Sprintf("%s: %q is not a boolean (e.g. %t)", key, v, def))
		return def
	}
	return b
}

func (p *problems) integer(get func(string) string, key string, def int, example string) int {
	v := get(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.add(key, fmt.Sprintf("%s: %q is not a whole number (e.g. %s)", key, v, example))
		return def
	}
	return n
}

func (p *problems) duration(get func(string) string, key string, def time.Duration) time.Duration {
	v := get(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.add(key, fmt.Sprintf("%s: %q is not a duration (e.g. %s)", key, v, def))
		return def
	}
	return d
}

func (p *problems) bytes(get func(string) string, key, def string) int64 {
	v := orDefault(get(key), def)
	n, ok := parseBytes(v)
	if !ok {
		p.add(key, fmt.Sprintf("%s: %q is not a memory size (e.g. %s)", key, v, def))
		return 0
	}
	return n
}

// quantityRE is the subset of Kubernetes quantities we accept for CPU and
// storage: a decimal number with an optional SI or binary suffix.
var quantityRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$`)

func validQuantity(s string) bool {
	return quantityRE.MatchString(s) && strings.Trim(s, "0.mkMGTPEi") != ""
}

// parseBytes reads a whole number of bytes with an optional binary or SI
// suffix ("64Ki", "128Mi", "1G", "65536").
func parseBytes(s string) (int64, bool) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<50)/mult {
		return 0, false
	}
	return n * mult, true
}

// unjoin undoes errors.Join.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
