package loadgen

import (
	"fmt"
	"strconv"
)

// ShardRange is the slice rule every part of mqttstack shares: shard i of n
// owns the fleet indices [from, to) with from = i*total/n and
// to = (i+1)*total/n (0-based; device number = index+1, see
// certs.DeviceIDs). The blocks are contiguous, disjoint, cover the fleet
// and differ in size by at most one. It panics on i outside [0, n) or
// n < 1, which are programming errors: callers validate --shard first.
func ShardRange(total, i, n int) (from, to int) {
	if n < 1 || i < 0 || i >= n {
		panic(fmt.Sprintf("loadgen.ShardRange: shard %d of %d", i, n))
	}
	if total <= 0 {
		return 0, 0
	}
	// int64 so that total*n stays exact for every fleet size Kubernetes
	// could run (scenarios.MaxDevices × a few thousand shards).
	t, ii, nn := int64(total), int64(i), int64(n)
	return int(ii * t / nn), int((ii + 1) * t / nn)
}

// ShardIdentity is the observer or backend identity that shard k of n uses:
// the base name for a single shard, "<base>-<k+1>" otherwise
// (docs/CONTRACTS.md: with use_username_as_clientid two connections of one
// identity kick each other, so every shard needs its own).
func ShardIdentity(base string, k, n int) string {
	if n <= 1 {
		return base
	}
	return base + "-" + strconv.Itoa(k+1)
}

// MaxSecretBytes is the Kubernetes limit on the data of one Secret (1 MiB,
// enforced by the API server on the sum of the values).
const MaxSecretBytes = 1 << 20

// secretBudget is what we let one shard Secret use. We count key names as
// well as values and keep 8 KiB for metadata, so that a Secret that passes
// here is not rejected by the API server or by etcd's request limit.
const secretBudget = MaxSecretBytes - 8<<10
