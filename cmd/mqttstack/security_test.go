package main

import (
	"strings"
	"testing"

	"github.com/mqttstack/mqttstack/internal/stacktest"
)

// TestSecurityOpensHost: against a local stack's target, the command opens
// the stack as a host, so the host-side checks run instead of being
// skipped for want of host access.
func TestSecurityOpensHost(t *testing.T) {
	s := stacktest.Start(t)
	out, errOut, code := runCLI("security", "--target", s.TargetPath, "--only", "OPS-02,NET-01")
	if code != exitOK || strings.Contains(out, "SKIPPED") || strings.Count(out, "PASS") != 2 {
		t.Errorf("exit %d, want both checks to run and pass\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
