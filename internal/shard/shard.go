// Package shard is the rule that cuts a fleet into shards, the one place it
// is written: the load engine runs a shard with it (loadtest), and the
// Kubernetes component ships each shard its identities by it
// (infra/loadgen). It imports only the standard library, so the load tester
// uses it without pulling in Pulumi.
package shard

import (
	"fmt"
	"strconv"
)

// Range is the slice of the fleet that shard i of n owns: fleet indices
// [from, to) with from = i*total/n and to = (i+1)*total/n (0-based; the
// device number is index+1, see certs.DeviceIDs). The blocks are
// contiguous, disjoint, cover the fleet and differ in size by at most one.
// It panics on i outside [0, n) or n < 1, which are programming errors:
// callers validate --shard first.
func Range(total, i, n int) (from, to int) {
	if n < 1 || i < 0 || i >= n {
		panic(fmt.Sprintf("shard.Range: shard %d of %d", i, n))
	}
	if total <= 0 {
		return 0, 0
	}
	// int64 so that total*n stays exact for every fleet size a cluster
	// could run (scenarios.MaxDevices × thousands of shards).
	t, ii, nn := int64(total), int64(i), int64(n)
	return int(ii * t / nn), int((ii + 1) * t / nn)
}

// Identity is the observer or backend identity that shard k of n uses: the
// base name for a single shard, "<base>-<k+1>" otherwise
// (docs/CONTRACTS.md: with use_username_as_clientid two connections of one
// identity kick each other, so every shard needs its own).
func Identity(base string, k, n int) string {
	if n <= 1 {
		return base
	}
	return base + "-" + strconv.Itoa(k+1)
}
