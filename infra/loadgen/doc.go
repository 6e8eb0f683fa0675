// Package loadgen runs one mqttstack scenario as shards on Kubernetes: the
// Pulumi component mqttstack:infra:LoadGenerators and the program of the
// small deploy/loadgen project that uses it.
//
// One process holds at most about 20,000 sockets, so a larger fleet is cut
// into shards. Shard i of n owns the contiguous block of device numbers
// given by ShardRange, runs as the pod with completion index i of an
// Indexed Job (`mqttstack run … --shard <JOB_COMPLETION_INDEX+1>/n`: the
// CLI counts shards from 1) and writes its own result file;
// `mqttstack report merge` combines the files exactly.
//
// What the component deploys, and why:
//
//   - a Namespace (optional);
//   - the scenario YAML as a ConfigMap;
//   - the target as a Secret (target.json rewritten for the pod's mount
//     points, and the CA certificate);
//   - one Secret per shard with exactly that shard's device identities and
//     the shard's own observer and backend identities, read from the
//     operator's PKI directory at deploy time and marked as Pulumi
//     secrets, so they are encrypted in the stack's state;
//   - a PersistentVolumeClaim for results and a "collector" pod that
//     mounts it, so the operator fetches every shard with one `kubectl cp`;
//   - the Indexed Job itself.
//
// A static pod template cannot name a different Secret per completion
// index, and the kubelet mounts every volume of a pod whatever the
// container uses, so no per-index selection would keep other shards' keys
// off a node. The pod therefore mounts all shard Secrets through one
// projected volume. Device ids are disjoint between shards, so the keys
// never collide and the projection is exactly the `<pki>/clients/`
// directory of the operator's PKI (minus the CA and server keys, which
// never leave the operator's machine); `--shard` then picks the slice,
// by the same ShardRange rule the Secrets were cut with. No shell wrapper,
// no per-pod API access.
//
// Reading identities is the only I/O here, through an fs.FS; the package
// never touches the process.
package loadgen
