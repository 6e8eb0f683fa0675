package security

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/infra/hostconfig"
)

// runSuite prepares the env for checks with opts and runs them.
func runSuite(t *testing.T, opts Options, checks []Check) []Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e, err := Prepare(ctx, opts, checks)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	defer e.Close()
	return Run(ctx, e, checks, nil)
}

// runLogged runs checks with opts and logs the text report.
func runLogged(t *testing.T, opts Options, checks []Check) []Result {
	t.Helper()
	start := time.Now()
	rs := runSuite(t, opts, checks)
	var buf bytes.Buffer
	_ = WriteText(&buf, rs, time.Since(start))
	t.Log("\n" + buf.String())
	return rs
}

// wantFor is the status r must have on a hardened local stack: Pass, or
// Fail for a known finding, whose evidence must then name it.
func wantFor(t *testing.T, r Result) Status {
	t.Helper()
	f, ok := knownFindings[r.Check.ID]
	if !ok {
		return Pass
	}
	if r.Outcome.Status == Fail && !strings.Contains(r.Outcome.Evidence, f) {
		t.Errorf("%s failed, but not with the known finding %q: %s", r.Check.ID, f, r.Outcome.Evidence)
	}
	return Fail
}

func TestTier1(t *testing.T) {
	opts := startStack(t)
	checks, err := Select(Catalog(), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 48 {
		t.Errorf("tier 1 has %d checks, the catalog says 48", len(checks))
	}
	rs := runLogged(t, opts, checks)
	for _, r := range rs {
		if r.Check.Run == nil {
			t.Errorf("%s: tier-1 check not implemented", r.Check.ID)
			continue
		}
		want := wantFor(t, r)
		if r.Outcome.Status != want {
			t.Errorf("%s: %s, want %s: %s", r.Check.ID, r.Outcome.Status, want, r.Outcome.Evidence)
		}
	}
}

// knownFindings are real weaknesses of the rendered stack that the suite
// must keep reporting until the stack changes; the value is a fragment of
// the evidence that identifies the finding. None today:
//
// WEB-05 (F8) was closed by infra/hostconfig: devices do not use wss, and
// each WSS identity (observers, backends) has its own loopback listener
// whose password file holds only it, chosen by nginx from the verified
// certificate's CN. The opt-in DeviceWSS mode reopens it on purpose
// (TestMutationsWSS).
//
// WEB-07 (tier 2) was closed by nginx refusing (400) an upgrade that does
// not offer the mqtt subprotocol, instead of proxying it into a 502.
var knownFindings = map[string]string{}

// TestTier2 runs the tier-2 checks that this build implements against a
// hardened local stack.
func TestTier2(t *testing.T) {
	if testing.Short() {
		t.Skip("tier 2 floods and long sequences")
	}
	// AUTH-04 judges nginx's limit_req burst; the local render sizes it
	// to the fleet (one source address), so the stack is rendered with the
	// VPS value (10) here.
	opts := startStack(t, setWSBurst(10))
	var checks []Check
	for _, c := range Catalog() {
		if c.Tier != 2 || c.Run == nil {
			continue
		}
		if c.ID == "DOS-03" && os.Getenv("MQTTSTACK_LONG") == "" {
			t.Log("DOS-03 skipped: it watches connections for 110 s (set MQTTSTACK_LONG=1)")
			continue
		}
		checks = append(checks, c)
	}
	rs := runLogged(t, opts, checks)
	for _, r := range rs {
		want := wantFor(t, r)
		if r.Check.ID == "DOS-02" {
			// the per-source cap is a firewall rule the local stack lacks
			want = Skipped
		}
		if r.Outcome.Status != want {
			t.Errorf("%s: %s, want %s: %s", r.Check.ID, r.Outcome.Status, want, r.Outcome.Evidence)
		}
	}
}

// setWSBurst rewrites nginx's limit_req burst on /mqtt.
func setWSBurst(n int) func([]hostconfig.File) []hostconfig.File {
	re := regexp.MustCompile(`limit_req zone=wsreq burst=\d+`)
	return func(files []hostconfig.File) []hostconfig.File {
		hit := false
		for i, f := range files {
			if strings.HasSuffix(f.Path, "nginx.conf") && re.Match(f.Content) {
				files[i].Content = re.ReplaceAll(f.Content, []byte("limit_req zone=wsreq burst="+strconv.Itoa(n)))
				hit = true
			}
		}
		if !hit {
			panic("setWSBurst: no limit_req zone=wsreq line in nginx.conf")
		}
		return files
	}
}
