package loadgen

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	batchv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/batch/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/mqttstack/mqttstack/scenarios"
	"github.com/mqttstack/mqttstack/target"
)

// TypeToken is the Pulumi type of the component.
const TypeToken = "mqttstack:infra:LoadGenerators"

// Paths inside the load generator pods. The pod's target.json points at
// them, so `mqttstack run` needs no Kubernetes-specific flags.
const (
	podScenarioDir = "/scenario"
	podTargetDir   = "/target"
	podPKIDir      = "/pki"
	podResultsDir  = "/results"
)

// podUID is the user the image runs as (deploy/Dockerfile); fsGroup makes
// the mounted Secrets and the results volume usable by it.
const podUID = 65532

// Access modes of the results claim.
const (
	ReadWriteMany = "ReadWriteMany"
	ReadWriteOnce = "ReadWriteOnce"
)

// Results configures the volume that collects the shards' result files.
type Results struct {
	// StorageClass of the claim; "" uses the cluster's default class.
	StorageClass string
	// Size of the claim, a Kubernetes quantity ("1Gi").
	Size string
	// AccessMode is ReadWriteMany (shards run on any node) or
	// ReadWriteOnce (every shard is scheduled onto the collector's node,
	// because only one node can mount the volume).
	AccessMode string
}

// Resources sizes each shard pod.
type Resources struct {
	// MemoryBase and MemoryPerDevice give the memory request and limit:
	// base + perDevice × devices of the largest shard.
	MemoryBase, MemoryPerDevice int64
	// CPU is the CPU request (a Kubernetes quantity). There is no CPU
	// limit on purpose: CFS throttling stalls TLS handshakes and
	// publishes, and the report would blame the broker for it.
	CPU string
}

// Args is what LoadGenerators deploys. Scenario, ScenarioYAML and
// ScenarioFile describe the same file; Target is the operator's target
// (paths resolved, as target.Load returns it).
type Args struct {
	Namespace       string
	CreateNamespace bool
	Image           string
	// ImagePullPolicy: "" leaves the Kubernetes default.
	ImagePullPolicy string
	Shards          int

	Scenario     *scenarios.Scenario
	ScenarioYAML []byte
	// ScenarioFile is the file's base name ("launch.yaml"); the pod reads
	// the scenario under the same name, so a scenario without a name:
	// field is reported under the same name as on the operator's machine.
	ScenarioFile string

	Target *target.Target
	CACert []byte
	// PKI is the operator's PKI directory; only clients/ is read.
	PKI fs.FS

	Resources Resources
	Results   Results

	// DeadlineMargin is added to the scenario's estimated duration for
	// the Job's activeDeadlineSeconds: image pulls, scheduling, a slow
	// ramp.
	DeadlineMargin time.Duration
	// TTL is ttlSecondsAfterFinished: how long the finished Job and its
	// pods (and their logs) stay. The results claim is not affected.
	TTL time.Duration
	// RetriesPerShard is backoffLimitPerIndex: how often one shard is
	// retried after a failure that may be transient.
	RetriesPerShard int
	// RunID is folded into the results directory name; change it to run
	// an unchanged deployment again.
	RunID string
	// Wait makes `pulumi up` wait until every shard has finished.
	Wait bool
}

// LoadGenerators is the deployed component. The string outputs are what
// an operator needs to fetch results (see FetchCommand).
type LoadGenerators struct {
	pulumi.ResourceState

	Namespace    pulumi.StringOutput `pulumi:"namespace"`
	JobName      pulumi.StringOutput `pulumi:"jobName"`
	CollectorPod pulumi.StringOutput `pulumi:"collectorPod"`
	ResultsClaim pulumi.StringOutput `pulumi:"resultsClaim"`
	// ResultsDir is the directory under the collector's /results that
	// holds shard-0 … shard-<n-1>; it changes whenever the run changes,
	// so two runs never mix in one merge.
	ResultsDir pulumi.StringOutput `pulumi:"resultsDir"`
	// FetchCommand copies every shard's results to ./<ResultsDir>.
	FetchCommand pulumi.StringOutput `pulumi:"fetchCommand"`
	// Shards and DevicesPerShard are for the operator's eyes.
	Shards          pulumi.IntOutput `pulumi:"shards"`
	DevicesPerShard pulumi.IntOutput `pulumi:"devicesPerShard"`
}

// Validate reports every problem of args at once, naming the Pulumi
// config key an operator would change.
func (a *Args) Validate() error {
	var errs []error
	add := func(format string, v ...any) { errs = append(errs, fmt.Errorf(format, v...)) }
	if !validName(a.Namespace) {
		add("namespace: %q is not a Kubernetes namespace name (e.g. mqttstack-loadgen)", a.Namespace)
	}
	if a.Image == "" {
		add("image: required (e.g. ghcr.io/acme/mqttstack:v1.2.0, built from deploy/Dockerfile)")
	}
	switch a.ImagePullPolicy {
	case "", "Always", "IfNotPresent", "Never":
	default:
		add("imagePullPolicy: %q is not Always, IfNotPresent or Never", a.ImagePullPolicy)
	}
	if a.Scenario == nil || len(a.ScenarioYAML) == 0 {
		add("scenario: required (path of a scenario file, e.g. scenarios/launch.yaml)")
	} else if a.Shards > a.Scenario.Fleet.Count {
		add("shards: %d is more than the scenario's %d devices", a.Shards, a.Scenario.Fleet.Count)
	}
	if !validKey(a.ScenarioFile) {
		add("scenario: file name %q cannot be a ConfigMap key (use letters, digits, '-', '_', '.')", a.ScenarioFile)
	}
	if a.Shards < 1 {
		add("shards: %d must be at least 1 (e.g. 4)", a.Shards)
	}
	if a.Target == nil {
		add("target: required (the target JSON of the deployed stack, e.g. .mqttstack/cloud/target.json)")
	} else {
		if err := a.Target.Validate(); err != nil {
			add("target: %w", err)
		}
		if a.Target.Local != nil || isLoopback(a.Target.Host) {
			add("target: host %q is this machine's local stack, which pods cannot reach; use the target of a deployed stack (`mqttstack target from-stack`)", a.Target.Host)
		}
	}
	if len(a.CACert) == 0 {
		add("target: the CA certificate named by ca_cert is empty or missing")
	}
	if a.PKI == nil {
		add("pkiDir: required (the operator's PKI directory, e.g. pki)")
	}
	if a.Resources.MemoryBase <= 0 {
		add("memoryBase: must be > 0 (e.g. 128Mi)")
	}
	if a.Resources.MemoryPerDevice <= 0 {
		add("memoryPerDevice: must be > 0 (e.g. 64Ki)")
	}
	if !validQuantity(a.Resources.CPU) {
		add("cpu: %q is not a CPU quantity (e.g. 1 or 500m)", a.Resources.CPU)
	}
	if !validQuantity(a.Results.Size) {
		add("resultsSize: %q is not a storage quantity (e.g. 1Gi)", a.Results.Size)
	}
	if a.Results.AccessMode != ReadWriteMany && a.Results.AccessMode != ReadWriteOnce {
		add("resultsAccessMode: %q is not %s or %s", a.Results.AccessMode, ReadWriteMany, ReadWriteOnce)
	}
	if a.Results.StorageClass != "" && !validName(a.Results.StorageClass) {
		add("resultsStorageClass: %q is not a storage class name (e.g. efs-sc)", a.Results.StorageClass)
	}
	if a.DeadlineMargin < time.Minute {
		add("deadlineMargin: %s is less than 1m (e.g. 10m: image pulls and scheduling count against the deadline)", a.DeadlineMargin)
	}
	if a.TTL < 0 {
		add("ttl: %s must not be negative (e.g. 24h)", a.TTL)
	}
	if a.RetriesPerShard < 0 || a.RetriesPerShard > 10 {
		add("retriesPerShard: %d must be 0..10 (e.g. 1)", a.RetriesPerShard)
	}
	return errors.Join(errs...)
}

// NewLoadGenerators reads the shard identities from args.PKI, checks that
// each shard's Secret fits, and registers the component and its children.
// Nothing is registered when args or the identities are wrong.
func NewLoadGenerators(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*LoadGenerators, error) {
	if args == nil {
		return nil, errors.New("loadgen: nil Args")
	}
	if err := args.Validate(); err != nil {
		return nil, err
	}
	s := args.Scenario
	if s.Commands != nil && args.Target.Backend == "" {
		return nil, errors.New("target: backend is empty but the scenario sends commands, which needs the backend identity")
	}
	plans, err := planShards(planInput{
		pki:       args.PKI,
		prefix:    s.Fleet.Prefix,
		devices:   s.Fleet.Count,
		shards:    args.Shards,
		observer:  args.Target.Observer,
		backend:   args.Target.Backend,
		passwords: s.Fleet.Transport == scenarios.TransportWSS,
	})
	if err != nil {
		return nil, err
	}
	podTarget, err := podTargetJSON(args.Target)
	if err != nil {
		return nil, err
	}
	estimate := s.EstimatedDuration()
	// activeDeadlineSeconds is an int64 in Kubernetes but the SDK carries
	// an int; a year is beyond any load test and far from overflow.
	if estimate > 365*24*time.Hour {
		return nil, fmt.Errorf("scenario: estimated duration %s (ramp at the connect rate + stages) is more than a year; check connect.rate and the stage durations", estimate)
	}

	c := &LoadGenerators{}
	if err := ctx.RegisterComponentResource(TypeToken, name, c, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(c)
	labels := func(component string) pulumi.StringMap {
		return pulumi.StringMap{
			"app.kubernetes.io/name":      pulumi.String("mqttstack"),
			"app.kubernetes.io/instance":  pulumi.String(name),
			"app.kubernetes.io/component": pulumi.String(component),
		}
	}
	meta := func(ns pulumi.StringOutput, component string) *metav1.ObjectMetaArgs {
		return &metav1.ObjectMetaArgs{Namespace: ns, Labels: labels(component)}
	}

	// The namespace output (not the plain string) carries the dependency:
	// nothing is created in a namespace that does not exist yet.
	ns := pulumi.String(args.Namespace).ToStringOutput()
	if args.CreateNamespace {
		n, err := corev1.NewNamespace(ctx, name+"-ns", &corev1.NamespaceArgs{
			Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(args.Namespace), Labels: labels("loadgen")},
		}, parent)
		if err != nil {
			return nil, err
		}
		ns = n.Metadata.Name().Elem()
	}

	// Scenario, target and identities are immutable: a change gives them
	// new (auto-generated) names, which changes the Job's pod template, so
	// a changed input always means a new run rather than running pods
	// seeing files change under them. It also spares the kubelet a watch
	// per Secret per pod.
	scenarioCM, err := corev1.NewConfigMap(ctx, name+"-scenario", &corev1.ConfigMapArgs{
		Metadata:  meta(ns, "loadgen"),
		Immutable: pulumi.Bool(true),
		Data:      pulumi.StringMap{args.ScenarioFile: pulumi.String(string(args.ScenarioYAML))},
	}, parent)
	if err != nil {
		return nil, err
	}
	targetSecret, err := corev1.NewSecret(ctx, name+"-target", &corev1.SecretArgs{
		Metadata:  meta(ns, "loadgen"),
		Type:      pulumi.String("Opaque"),
		Immutable: pulumi.Bool(true),
		StringData: secretMap(map[string]string{
			"target.json": string(podTarget),
			"ca.crt":      string(args.CACert),
		}),
	}, parent)
	if err != nil {
		return nil, err
	}
	var projections corev1.VolumeProjectionArray
	for _, p := range plans {
		sec, err := corev1.NewSecret(ctx, fmt.Sprintf("%s-shard-%d", name, p.index), &corev1.SecretArgs{
			Metadata:   meta(ns, "loadgen"),
			Type:       pulumi.String("Opaque"),
			Immutable:  pulumi.Bool(true),
			StringData: secretMap(p.data),
		}, parent)
		if err != nil {
			return nil, err
		}
		projections = append(projections, corev1.VolumeProjectionArgs{
			Secret: &corev1.SecretProjectionArgs{Name: sec.Metadata.Name()},
		})
	}

	claimSpec := &corev1.PersistentVolumeClaimSpecArgs{
		AccessModes: pulumi.StringArray{pulumi.String(args.Results.AccessMode)},
		Resources: &corev1.VolumeResourceRequirementsArgs{
			Requests: pulumi.StringMap{"storage": pulumi.String(args.Results.Size)},
		},
	}
	if args.Results.StorageClass != "" {
		claimSpec.StorageClassName = pulumi.String(args.Results.StorageClass)
	}
	claim, err := corev1.NewPersistentVolumeClaim(ctx, name+"-results", &corev1.PersistentVolumeClaimArgs{
		Metadata: meta(ns, "results"),
		Spec:     claimSpec,
	}, parent)
	if err != nil {
		return nil, err
	}
	claimName := claim.Metadata.Name().Elem()

	// The collector only holds the claim open so that `kubectl cp` (which
	// needs a running container with tar) can read it, during the run and
	// after it. It is created first: with ReadWriteOnce it decides the
	// node, and with WaitForFirstConsumer storage it binds the volume.
	//
	// Its name is fixed, not generated, so that the fetch command is known
	// before anything is created: when a shard fails, `pulumi up` fails
	// and may not record new stack outputs, and the command printed at the
	// start of the update must still be right. (Hence one stack per
	// namespace, and delete-before-replace.)
	collectorName := name + "-collector"
	collectorMeta := meta(ns, "collector")
	collectorMeta.Name = pulumi.String(collectorName)
	collector, err := corev1.NewPod(ctx, collectorName, &corev1.PodArgs{
		Metadata: collectorMeta,
		Spec: &corev1.PodSpecArgs{
			SecurityContext:               podSecurity(),
			TerminationGracePeriodSeconds: pulumi.Int(1),
			Containers: corev1.ContainerArray{corev1.ContainerArgs{
				Name:            pulumi.String("collector"),
				Image:           pulumi.String(args.Image),
				ImagePullPolicy: optString(args.ImagePullPolicy),
				Command:         pulumi.StringArray{pulumi.String("sleep"), pulumi.String("infinity")},
				SecurityContext: containerSecurity(),
				Resources: &corev1.ResourceRequirementsArgs{
					Requests: pulumi.StringMap{"cpu": pulumi.String("10m"), "memory": pulumi.String("16Mi")},
					Limits:   pulumi.StringMap{"memory": pulumi.String("64Mi")},
				},
				VolumeMounts: corev1.VolumeMountArray{corev1.VolumeMountArgs{
					Name: pulumi.String("results"), MountPath: pulumi.String(podResultsDir), ReadOnly: pulumi.Bool(true),
				}},
			}},
			Volumes: corev1.VolumeArray{corev1.VolumeArgs{
				Name:                  pulumi.String("results"),
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSourceArgs{ClaimName: claimName, ReadOnly: pulumi.Bool(true)},
			}},
		},
	}, parent, pulumi.DeleteBeforeReplace(true))
	if err != nil {
		return nil, err
	}

	devicesPerShard := 0
	for _, p := range plans {
		devicesPerShard = max(devicesPerShard, p.to-p.from)
	}
	runDir := resultsDirName(s.Name, args, podTarget)
	memory := memoryFor(args.Resources, devicesPerShard)
	// Whole seconds, as activeDeadlineSeconds carries it.
	deadline := time.Duration(durationSeconds(estimate+args.DeadlineMargin)) * time.Second

	jobAnnotations := pulumi.StringMap{
		"mqttstack.io/scenario":           pulumi.String(s.Name),
		"mqttstack.io/estimated-duration": pulumi.String(estimate.Round(time.Second).String()),
	}
	if !args.Wait {
		jobAnnotations["pulumi.com/skipAwait"] = pulumi.String("true")
	}
	jobMeta := meta(ns, "loadgen")
	jobMeta.Annotations = jobAnnotations

	jobOpts := []pulumi.ResourceOption{
		parent,
		pulumi.DependsOn([]pulumi.Resource{collector}),
		// Two generations of load generators must never hit the broker
		// at once: the old Job goes before its replacement starts.
		pulumi.DeleteBeforeReplace(true),
	}
	if args.Wait {
		// The provider waits for the Job to complete; give it the whole
		// deadline instead of its default 10 minutes.
		wait := (deadline + 5*time.Minute).String()
		jobOpts = append(jobOpts, pulumi.Timeouts(&pulumi.CustomTimeouts{Create: wait, Update: wait}))
	}

	job, err := batchv1.NewJob(ctx, name+"-shards", &batchv1.JobArgs{
		Metadata: jobMeta,
		Spec: &batchv1.JobSpecArgs{
			CompletionMode: pulumi.String("Indexed"),
			Completions:    pulumi.Int(args.Shards),
			Parallelism:    pulumi.Int(args.Shards),
			// Per index rather than a global backoffLimit, so that one
			// flaky node does not use up the retries of every shard.
			BackoffLimitPerIndex:    pulumi.Int(args.RetriesPerShard),
			PodFailurePolicy:        podFailurePolicy(),
			ActiveDeadlineSeconds:   pulumi.Int(durationSeconds(deadline)),
			TtlSecondsAfterFinished: pulumi.Int(durationSeconds(args.TTL)),
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: labels("loadgen")},
				Spec: &corev1.PodSpecArgs{
					// Never: podFailurePolicy requires it, and a restarted
					// container would silently rerun half a shard.
					RestartPolicy:   pulumi.String("Never"),
					SecurityContext: podSecurity(),
					Affinity:        shardAffinity(name, args.Results.AccessMode),
					Containers: corev1.ContainerArray{corev1.ContainerArgs{
						Name:            pulumi.String("loadgen"),
						Image:           pulumi.String(args.Image),
						ImagePullPolicy: optString(args.ImagePullPolicy),
						Command:         pulumi.ToStringArray(shardCommand(args.ScenarioFile, args.Shards, runDir)),
						Env:             shardEnv(memory),
						SecurityContext: containerSecurity(),
						Resources: &corev1.ResourceRequirementsArgs{
							Requests: pulumi.StringMap{"cpu": pulumi.String(args.Resources.CPU), "memory": pulumi.String(mebibytes(memory))},
							Limits:   pulumi.StringMap{"memory": pulumi.String(mebibytes(memory))},
						},
						VolumeMounts: corev1.VolumeMountArray{
							corev1.VolumeMountArgs{Name: pulumi.String("scenario"), MountPath: pulumi.String(podScenarioDir), ReadOnly: pulumi.Bool(true)},
							corev1.VolumeMountArgs{Name: pulumi.String("target"), MountPath: pulumi.String(podTargetDir), ReadOnly: pulumi.Bool(true)},
							corev1.VolumeMountArgs{Name: pulumi.String("identities"), MountPath: pulumi.String(podPKIDir + "/clients"), ReadOnly: pulumi.Bool(true)},
							corev1.VolumeMountArgs{Name: pulumi.String("results"), MountPath: pulumi.String(podResultsDir)},
							// The root filesystem is read-only; anything that
							// wants a temporary file gets a small scratch dir.
							corev1.VolumeMountArgs{Name: pulumi.String("tmp"), MountPath: pulumi.String("/tmp")},
						},
					}},
					Volumes: corev1.VolumeArray{
						corev1.VolumeArgs{Name: pulumi.String("scenario"), ConfigMap: &corev1.ConfigMapVolumeSourceArgs{Name: scenarioCM.Metadata.Name()}},
						corev1.VolumeArgs{Name: pulumi.String("target"), Secret: &corev1.SecretVolumeSourceArgs{
							SecretName: targetSecret.Metadata.Name(), DefaultMode: pulumi.Int(0o440),
						}},
						corev1.VolumeArgs{Name: pulumi.String("identities"), Projected: &corev1.ProjectedVolumeSourceArgs{
							Sources: projections, DefaultMode: pulumi.Int(0o440),
						}},
						corev1.VolumeArgs{Name: pulumi.String("results"), PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSourceArgs{ClaimName: claimName}},
						corev1.VolumeArgs{Name: pulumi.String("tmp"), EmptyDir: &corev1.EmptyDirVolumeSourceArgs{SizeLimit: pulumi.String("64Mi")}},
					},
				},
			},
		},
	}, jobOpts...)
	if err != nil {
		return nil, err
	}

	c.Namespace = ns
	c.JobName = job.Metadata.Name().Elem()
	c.CollectorPod = collector.Metadata.Name().Elem()
	c.ResultsClaim = claimName
	c.ResultsDir = pulumi.String(runDir).ToStringOutput()
	c.FetchCommand = pulumi.String(FetchCommand(args.Namespace, collectorName, runDir)).ToStringOutput()
	c.Shards = pulumi.Int(args.Shards).ToIntOutput()
	c.DevicesPerShard = pulumi.Int(devicesPerShard).ToIntOutput()
	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{
		"namespace":       c.Namespace,
		"jobName":         c.JobName,
		"collectorPod":    c.CollectorPod,
		"resultsClaim":    c.ResultsClaim,
		"resultsDir":      c.ResultsDir,
		"fetchCommand":    c.FetchCommand,
		"shards":          c.Shards,
		"devicesPerShard": c.DevicesPerShard,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// FetchCommand copies a run's results from the collector pod to ./dir,
// shard-0 … shard-<n-1> with one result JSON and HTML report each.
func FetchCommand(namespace, collectorPod, dir string) string {
	return fmt.Sprintf("kubectl cp %s/%s:%s/%s %s", namespace, collectorPod, podResultsDir, dir, dir)
}

// shardCommand is the command of every shard pod: one static template,
// and each pod finds its shard in JOB_COMPLETION_INDEX (0-based, set per
// pod; see shardEnv).
//
// `mqttstack run --shard i/n` counts shards from 1 ("1/2 and 2/2", see
// loadtest.ParseShard), and Kubernetes can substitute a variable into the
// arguments but cannot add one to it; so a POSIX shell does the
// arithmetic and then execs the tool, which stays PID 1 and receives
// SIGTERM itself. "$$" is Kubernetes' escape for a literal "$": without
// it Kubernetes would try to expand "$((…)" as a variable reference. The
// file and directory names are ConfigMap keys and DNS labels (Validate),
// so nothing in the script needs quoting beyond what is written.
//
// --allow-load is the explicit consent `mqttstack run` asks for before it
// loads a stack that is not the local one: deploying this Job is that
// consent.
func shardCommand(scenarioFile string, shards int, runDir string) []string {
	script := strings.Join([]string{
		"exec mqttstack run", path.Join(podScenarioDir, scenarioFile),
		"--target", path.Join(podTargetDir, "target.json"),
		"--shard", `"$$((JOB_COMPLETION_INDEX + 1))/` + strconv.Itoa(shards) + `"`,
		"--out", `"` + path.Join(podResultsDir, runDir, "shard-${JOB_COMPLETION_INDEX}") + `"`,
		"--allow-load",
		"--quiet",
	}, " ")
	return []string{"/bin/sh", "-c", script}
}

// shardEnv declares JOB_COMPLETION_INDEX although the Job controller adds
// it too: declared here, the command visibly refers to something in the
// spec, and the controller leaves a declared variable alone. GOMEMLIMIT lets the Go runtime collect before the memory limit
// kills the pod.
func shardEnv(memory int64) corev1.EnvVarArray {
	return corev1.EnvVarArray{
		corev1.EnvVarArgs{
			Name: pulumi.String("JOB_COMPLETION_INDEX"),
			ValueFrom: &corev1.EnvVarSourceArgs{FieldRef: &corev1.ObjectFieldSelectorArgs{
				FieldPath: pulumi.String("metadata.annotations['batch.kubernetes.io/job-completion-index']"),
			}},
		},
		corev1.EnvVarArgs{Name: pulumi.String("GOMEMLIMIT"), Value: pulumi.String(strconv.FormatInt(memory*9/10, 10))},
	}
}

// podFailurePolicy maps mqttstack's exit codes (docs/CONTRACTS.md) to what
// the Job does:
//   - 1, a negative verdict: the shard ran and wrote its result; running it
//     again would load the broker twice and overwrite the result, so the
//     index fails without a retry and the others carry on;
//   - 2, bad input: every shard would fail alike, so the Job stops;
//   - a pod disrupted by the cluster (eviction, preemption, node drain)
//     is retried without counting against the shard's retries;
//   - anything else (3, could not run; OOM) counts against the retries.
func podFailurePolicy() batchv1.PodFailurePolicyPtrInput {
	onExit := func(action string, codes ...int) batchv1.PodFailurePolicyRuleArgs {
		return batchv1.PodFailurePolicyRuleArgs{
			Action: pulumi.String(action),
			OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirementArgs{
				ContainerName: pulumi.String("loadgen"),
				Operator:      pulumi.String("In"),
				Values:        pulumi.ToIntArray(codes),
			},
		}
	}
	return &batchv1.PodFailurePolicyArgs{Rules: batchv1.PodFailurePolicyRuleArray{
		onExit("FailIndex", 1),
		onExit("FailJob", 2),
		batchv1.PodFailurePolicyRuleArgs{
			Action: pulumi.String("Ignore"),
			OnPodConditions: batchv1.PodFailurePolicyOnPodConditionsPatternArray{
				batchv1.PodFailurePolicyOnPodConditionsPatternArgs{Type: pulumi.String("DisruptionTarget"), Status: pulumi.String("True")},
			},
		},
	}}
}

// shardAffinity: with a ReadWriteMany claim, shards prefer distinct nodes
// (two shards on one node share its NIC and conntrack table, which a
// broker test should not measure); with ReadWriteOnce they must run where
// the collector mounted the volume.
func shardAffinity(instance, accessMode string) *corev1.AffinityArgs {
	selector := func(component string) *metav1.LabelSelectorArgs {
		return &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{
			"app.kubernetes.io/instance":  pulumi.String(instance),
			"app.kubernetes.io/component": pulumi.String(component),
		}}
	}
	if accessMode == ReadWriteOnce {
		return &corev1.AffinityArgs{PodAffinity: &corev1.PodAffinityArgs{
			RequiredDuringSchedulingIgnoredDuringExecution: corev1.PodAffinityTermArray{corev1.PodAffinityTermArgs{
				LabelSelector: selector("collector"),
				TopologyKey:   pulumi.String("kubernetes.io/hostname"),
			}},
		}}
	}
	return &corev1.AffinityArgs{PodAntiAffinity: &corev1.PodAntiAffinityArgs{
		PreferredDuringSchedulingIgnoredDuringExecution: corev1.WeightedPodAffinityTermArray{corev1.WeightedPodAffinityTermArgs{
			Weight: pulumi.Int(100),
			PodAffinityTerm: corev1.PodAffinityTermArgs{
				LabelSelector: selector("loadgen"),
				TopologyKey:   pulumi.String("kubernetes.io/hostname"),
			},
		}},
	}}
}

// podSecurity runs as the image's unprivileged user; fsGroup makes the
// 0440 Secret files and the results volume (on volume types that honour
// fsGroup) readable and writable by it.
func podSecurity() *corev1.PodSecurityContextArgs {
	return &corev1.PodSecurityContextArgs{
		RunAsNonRoot:        pulumi.Bool(true),
		RunAsUser:           pulumi.Int(podUID),
		RunAsGroup:          pulumi.Int(podUID),
		FsGroup:             pulumi.Int(podUID),
		FsGroupChangePolicy: pulumi.String("OnRootMismatch"),
		SeccompProfile:      &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
	}
}

// containerSecurity: the tool needs no capability. Raising the soft
// RLIMIT_NOFILE up to the hard limit (which `mqttstack run` does) needs
// none either; the container runtime's hard limit (commonly 524288 or
// 1048576) is far above what one shard opens.
func containerSecurity() *corev1.SecurityContextArgs {
	return &corev1.SecurityContextArgs{
		AllowPrivilegeEscalation: pulumi.Bool(false),
		ReadOnlyRootFilesystem:   pulumi.Bool(true),
		Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.StringArray{pulumi.String("ALL")}},
	}
}

// podTargetJSON is the operator's target with the paths of the pod's
// mounts; Local is dropped (Validate refused local stacks anyway).
func podTargetJSON(t *target.Target) ([]byte, error) {
	pt := *t
	pt.CACert = path.Join(podTargetDir, "ca.crt")
	pt.PKIDir = podPKIDir
	pt.Local = nil
	b, err := json.MarshalIndent(&pt, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	return append(b, '\n'), nil
}

// resultsDirName names a run's directory on the results volume after the
// scenario and a hash of everything that defines the run, so a changed
// deployment never writes into (and is never merged with) an older run's
// shards.
func resultsDirName(scenario string, a *Args, podTarget []byte) string {
	h := sha256.New()
	for _, part := range [][]byte{a.ScenarioYAML, podTarget, []byte(a.Image), []byte(strconv.Itoa(a.Shards)), []byte(a.RunID)} {
		// Length-prefixed, so that moving bytes between parts changes
		// the hash.
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	name := scenario
	if !validName(name) {
		name = "run"
	}
	return name + "-" + hex.EncodeToString(h.Sum(nil))[:10]
}

// secretMap marks the whole map as a Pulumi secret: every value is
// encrypted in the stack's state and masked in previews. The SDK's
// NewSecret does the same to data and stringData today; saying it here
// keeps private keys secret should that generated code ever change (the
// tests check the outcome, not who provides it). One secret output rather
// than one per key, because a fleet has tens of thousands of keys.
func secretMap(data map[string]string) pulumi.StringMapInput {
	m := make(pulumi.StringMap, len(data))
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m[k] = pulumi.String(data[k])
	}
	return pulumi.ToSecret(m).(pulumi.StringMapOutput)
}

// memoryFor is the memory request and limit of a shard pod in bytes,
// rounded up to whole MiB.
func memoryFor(r Resources, devices int) int64 {
	b := r.MemoryBase + r.MemoryPerDevice*int64(devices)
	const mib = 1 << 20
	return (b + mib - 1) / mib * mib
}

func mebibytes(b int64) string { return strconv.FormatInt(b>>20, 10) + "Mi" }

func durationSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

func optString(s string) pulumi.StringPtrInput {
	if s == "" {
		return nil
	}
	return pulumi.String(s)
}

// validName is a DNS-1123 label: what namespaces, storage classes and our
// directory names may be.
func validName(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validKey is what a ConfigMap or Secret key may be.
func validKey(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 253 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func isLoopback(host string) bool {
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}
