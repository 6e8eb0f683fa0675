package local

import (
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestChildren: the kernel's per-thread children lists and the pass over
// /proc name the same children, here of a shell with two sleeping ones.
func TestChildren(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 30 & sleep 30 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, p := range scanChildren(cmd.Process.Pid) {
			syscall.Kill(p, syscall.SIGKILL)
		}
		cmd.Process.Kill()
		cmd.Wait()
	}()
	var scan []int
	for range 100 { // until the shell has started both
		if scan = scanChildren(cmd.Process.Pid); len(scan) == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(scan) != 2 {
		t.Fatalf("the shell has %d children, want 2", len(scan))
	}
	got := children(cmd.Process.Pid)
	slices.Sort(got)
	slices.Sort(scan)
	if !slices.Equal(got, scan) {
		t.Errorf("children = %v, the pass over /proc found %v", got, scan)
	}
	if c := children(os.Getpid()); slices.Contains(c, os.Getpid()) {
		t.Errorf("children of the test process include itself: %v", c)
	}
}
