package fleet

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Rate is a constant pace: Freq hits per Per. It is a pure function of the
// elapsed time, so it is tested without a clock (as vegeta's pacer is).
type Rate struct {
	Freq int
	Per  time.Duration
}

// PerSecond is n hits per second.
func PerSecond(n int) Rate { return Rate{Freq: n, Per: time.Second} }

// Validate rejects a rate that would never fire or divides by zero.
func (r Rate) Validate() error {
	if r.Freq <= 0 || r.Per <= 0 {
		return fmt.Errorf("rate %d/%v: must be positive", r.Freq, r.Per)
	}
	return nil
}

// Due is how many hits are due after elapsed time (the first one at 0).
func (r Rate) Due(elapsed time.Duration) int64 {
	if elapsed < 0 || r.Freq <= 0 || r.Per <= 0 {
		return 0
	}
	// float64 keeps elapsed*Freq from overflowing for long runs at high rates.
	return int64(math.Floor(float64(elapsed)*float64(r.Freq)/float64(r.Per))) + 1
}

// Wait is how long to wait, at elapsed, before hit number done+1 is due
// (0 when it already is). done counts the hits made so far.
func (r Rate) Wait(elapsed time.Duration, done int64) time.Duration {
	if r.Freq <= 0 || r.Per <= 0 {
		return 0
	}
	if r.Due(elapsed) > done {
		return 0
	}
	// Hit number done (0-based) is due at done*Per/Freq.
	at := time.Duration(math.Ceil(float64(done) * float64(r.Per) / float64(r.Freq)))
	if w := at - elapsed; w > 0 {
		return w
	}
	return 0
}

// bound is how many hits rate r makes before ctx's deadline: the count
// bound of a loop that is also bounded in time (math.MaxInt without a
// deadline, when only the context bounds it).
func bound(ctx context.Context, r Rate) int {
	dl, ok := ctx.Deadline()
	if !ok {
		return math.MaxInt
	}
	return int(r.Due(time.Until(dl)))
}

// pace calls hit n times (or until ctx is done, or hit returns false) at rate
// r, starting now. It returns how many hits it made. A late caller catches up
// without sleeping, so the mean rate holds (the hits may then bunch).
func pace(ctx context.Context, r Rate, n int, hit func(i int) bool) int {
	start := time.Now()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for i := 0; i < n; i++ {
		if w := r.Wait(time.Since(start), int64(i)); w > 0 {
			if timer == nil {
				timer = time.NewTimer(w)
			} else {
				timer.Reset(w)
			}
			select {
			case <-ctx.Done():
				return i
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			return i
		}
		if !hit(i) {
			return i + 1
		}
	}
	return n
}
