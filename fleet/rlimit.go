package fleet

import (
	"fmt"
	"syscall"
)

// FDMargin is what a run needs besides one descriptor per connection:
// stdio, the epoll instance, result and log files, certificate files being
// read while the fleet loads, and some slack.
const FDMargin = 128

// RaiseFileLimit raises the soft RLIMIT_NOFILE of the process to its hard
// limit (every connection is a descriptor) and returns both.
func RaiseFileLimit() (soft, hard uint64, err error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, 0, fmt.Errorf("getrlimit nofile: %w", err)
	}
	if l.Cur < l.Max {
		want := l
		want.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return l.Cur, l.Max, fmt.Errorf("setrlimit nofile %d: %w", l.Max, err)
		}
		l = want
	}
	return l.Cur, l.Max, nil
}

// CheckCapacity refuses, with the numbers, a run whose connections cannot
// fit under the descriptor limit: devices + other clients (observer,
// backend) + FDMargin.
func CheckCapacity(devices, others int, limit uint64) error {
	need := uint64(devices) + uint64(others) + FDMargin
	if need > limit {
		return fmt.Errorf("%d devices + %d other clients + %d spare descriptors = %d open files, but the limit is %d (ulimit -n; raise the hard limit, or split the fleet with --shard i/n over several processes)",
			devices, others, FDMargin, need, limit)
	}
	return nil
}
