package loadtest

import (
	"os"
	"testing"
	"time"
)

func TestReadProcCost(t *testing.T) {
	// Burn a little CPU so utime has something to show at 10ms resolution.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	for _, pid := range []int{0, os.Getpid()} {
		c, err := readProcCost(pid)
		if err != nil {
			t.Fatalf("pid %d: %v", pid, err)
		}
		if c.RSS <= 0 || c.HWM < c.RSS || c.User+c.System <= 0 {
			t.Errorf("pid %d: %+v", pid, c)
		}
	}
	if _, err := readProcCost(1 << 30); err == nil {
		t.Error("no error for a pid that does not exist")
	}
}
