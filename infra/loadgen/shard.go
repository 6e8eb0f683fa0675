package loadgen

import "github.com/mqttstack/mqttstack/internal/shard"

// ShardRange is shard.Range, the one rule for which devices shard i of n
// owns ([i*total/n, (i+1)*total/n), 0-based fleet indices). The rule lives
// in the Pulumi-free package shard so that the load engine can share it.
func ShardRange(total, i, n int) (from, to int) { return shard.Range(total, i, n) }

// ShardIdentity is shard.Identity: the observer or backend name of shard k
// of n ("<base>-<k+1>", or the base name for a single shard).
func ShardIdentity(base string, k, n int) string { return shard.Identity(base, k, n) }

// MaxSecretBytes is the Kubernetes limit on the data of one Secret (1 MiB,
// enforced by the API server on the sum of the values).
const MaxSecretBytes = 1 << 20

// secretBudget is what we let one shard Secret use. We count key names as
// well as values and keep 8 KiB for metadata, so that a Secret that passes
// here is not rejected by the API server or by etcd's request limit.
const secretBudget = MaxSecretBytes - 8<<10
