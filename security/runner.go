package security

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// Result is one check with its outcome.
type Result struct {
	Check   Check
	Outcome Outcome
}

// checkTimeout bounds one check; the slowest tier-1 check needs ~12 s.
const checkTimeout = 60 * time.Second

// Run executes checks on env with Options.Parallel workers and returns the
// results in catalog order. A check that panics is Inconclusive (a bug in
// the suite proves nothing about the broker). progress, when non-nil, is
// called after each check from the worker goroutines.
func Run(ctx context.Context, e *Env, checks []Check, progress func(Result)) []Result {
	results := make([]Result, len(checks))
	sem := make(chan struct{}, e.opts.Parallel)
	var wg sync.WaitGroup
	var pmu sync.Mutex
	for i, c := range checks {
		if c.Exclusive {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = Result{Check: c, Outcome: inconclusive("not run: %v", ctx.Err())}
				return
			}
			defer func() { <-sem }()
			results[i] = Result{Check: c, Outcome: runOne(ctx, e, c)}
			if progress != nil {
				pmu.Lock()
				progress(results[i])
				pmu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i, c := range checks {
		if !c.Exclusive {
			continue
		}
		if ctx.Err() != nil {
			results[i] = Result{Check: c, Outcome: inconclusive("not run: %v", ctx.Err())}
			continue
		}
		results[i] = Result{Check: c, Outcome: runOne(ctx, e, c)}
		if progress != nil {
			progress(results[i])
		}
	}
	return results
}

func runOne(ctx context.Context, e *Env, c Check) (out Outcome) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			out = inconclusive("check panicked: %v %s", r, firstFrames(debug.Stack()))
		}
		out.Duration = time.Since(start)
	}()
	if c.Run == nil {
		return skipped("catalogued (tier %d) but not implemented in this build", c.Tier)
	}
	if e.watch == nil && !c.Standalone {
		return inconclusive("%v", e.watchErr)
	}
	timeout := checkTimeout
	if c.Timeout > 0 {
		timeout = c.Timeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out = c.Run(cctx, e)
	if out.Status == Pass && cctx.Err() != nil {
		// A pass decided after the deadline could rest on waits that were
		// cut short.
		return inconclusive("deadline hit: %v (evidence so far: %s)", cctx.Err(), out.Evidence)
	}
	return out
}

func firstFrames(stack []byte) string {
	if len(stack) > 600 {
		stack = stack[:600]
	}
	return fmt.Sprintf("%q", stack)
}

// Failed reports whether any result fails the run (Fail or Inconclusive).
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Outcome.Status == Fail || r.Outcome.Status == Inconclusive {
			return true
		}
	}
	return false
}

// Counts tallies results by status.
func Counts(rs []Result) map[Status]int {
	m := map[Status]int{}
	for _, r := range rs {
		m[r.Outcome.Status]++
	}
	return m
}
