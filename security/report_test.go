package security

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleResults() []Result {
	return []Result{
		{Check{ID: "TLS-01", Tier: 1, Title: "t1", Fix: "tls_version tlsv1.2"}, Outcome{Status: Pass, Evidence: "alert 70", Duration: 10 * time.Millisecond}},
		{Check{ID: "ACL-03", Tier: 1, Title: "t2", Fix: "acl_file <&>"}, Outcome{Status: Fail, Evidence: "canary DELIVERED <x>", Duration: time.Second}},
		{Check{ID: "SES-01", Tier: 1, Title: "t3", Fix: "use_username_as_clientid true"}, Outcome{Status: Inconclusive, Evidence: "barrier missing"}},
		{Check{ID: "NET-01", Tier: 1, Title: "t4", Fix: "f"}, Outcome{Status: Skipped, Evidence: "remote target"}},
	}
}

func TestWriteJUnit(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJUnit(&b, "suite", sampleResults(), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("not valid XML: %v\n%s", err, b.String())
	}
	s := got.Suites[0]
	if s.Tests != 4 || s.Failures != 2 || s.Skipped != 1 {
		t.Errorf("tests/failures/skipped = %d/%d/%d, want 4/2/1", s.Tests, s.Failures, s.Skipped)
	}
	if s.Cases[1].Failure == nil || s.Cases[1].Failure.Type != "FAIL" || !strings.Contains(s.Cases[1].Failure.Body, "fix: acl_file <&>") {
		t.Errorf("failure case: %+v", s.Cases[1].Failure)
	}
	if s.Cases[2].Failure == nil || s.Cases[2].Failure.Type != "INCONCLUSIVE" {
		t.Errorf("inconclusive must be a <failure>: %+v", s.Cases[2])
	}
	if s.Cases[3].Skipped == nil || s.Cases[0].Failure != nil || s.Cases[0].Skipped != nil {
		t.Errorf("pass/skip cases wrong: %+v", s.Cases)
	}
}

func TestWriteJSONAndText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, "local", time.Unix(0, 0), sampleResults(), time.Second); err != nil {
		t.Fatal(err)
	}
	var rep JSONReport
	if err := json.Unmarshal(b.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Counts != (JSONCounts{Pass: 1, Fail: 1, Inconclusive: 1, Skipped: 1}) || rep.Checks[1].Status != Fail {
		t.Errorf("counts %+v, status %v", rep.Counts, rep.Checks[1].Status)
	}
	if !strings.Contains(b.String(), `"status": "inconclusive"`) {
		t.Errorf("statuses must be words in JSON:\n%s", b.String())
	}
	b.Reset()
	if err := WriteText(&b, sampleResults(), time.Second); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"fix: acl_file <&>", "fix: use_username_as_clientid true", "1 passed, 1 failed, 1 inconclusive, 1 skipped"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "fix: tls_version") {
		t.Errorf("a passing check must not print its fix:\n%s", out)
	}
	if !Failed(sampleResults()) || Failed(sampleResults()[:1]) || Failed(sampleResults()[3:]) {
		t.Error("Failed: fail/inconclusive fail the run, pass/skip do not")
	}
}

func TestCatalog(t *testing.T) {
	all := Catalog()
	if len(all) != 63 {
		t.Errorf("catalog has %d checks, want 63 (53 of the original catalog, ACL-11…14, CRT-09/10, WEB-08/09/10, AUTH-05)", len(all))
	}
	tier2 := map[string]bool{"NET-03": true, "CRT-04": true, "CRT-07": true, "AUTH-04": true, "ACL-10": true, "SES-03": true,
		"PRO-06": true, "PRO-07": true, "PRO-08": true, "DOS-02": true, "DOS-03": true, "DOS-05": true, "WEB-07": true, "CRT-10": true, "WEB-10": true}
	seen := map[string]bool{}
	for _, c := range all {
		if seen[c.ID] {
			t.Errorf("duplicate id %s", c.ID)
		}
		seen[c.ID] = true
		if want := map[bool]int{true: 2, false: 1}[tier2[c.ID]]; c.Tier != want {
			t.Errorf("%s: tier %d, want %d", c.ID, c.Tier, want)
		}
		if c.Title == "" || c.Attack == "" || c.Fix == "" {
			t.Errorf("%s: title, attack and fix are required", c.ID)
		}
		if c.Run == nil {
			t.Errorf("%s: check without Run", c.ID)
		}
		if c.Proves == "" {
			t.Errorf("%s: what a PASS proves is required (the catalog document prints it)", c.ID)
		}
	}
	if _, err := Select(all, 1, []string{"acl-03", "NOPE-1"}); err == nil || !strings.Contains(err.Error(), "NOPE-1") {
		t.Errorf("Select must name unknown ids, got %v", err)
	}
	got, err := Select(all, 1, []string{" tls-01", "ACL-03"})
	if err != nil || len(got) != 2 || got[0].ID != "TLS-01" {
		t.Errorf("Select --only: %v %v", got, err)
	}
	if s, _ := Select(all, 2, nil); len(s) != 63 {
		t.Errorf("tier 2 selects %d", len(s))
	}
}

var update = flag.Bool("update", false, "rewrite docs/SECURITY.md from the catalog")

// TestCatalogDoc fails when docs/SECURITY.md is not what WriteCatalog
// makes of Catalog(): the document and `mqttstack security --list` come
// from one source.
func TestCatalogDoc(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCatalog(&b, Catalog()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "docs", "SECURITY.md")
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it: go test ./security -run TestCatalogDoc -update)", err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(b.String(), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s drifted from the catalog at line %d:\n file:    %q\n catalog: %q\n(regenerate: go test ./security -run TestCatalogDoc -update)", path, i+1, g, w)
			}
		}
	}
	for _, c := range Catalog() {
		if !bytes.Contains(got, []byte("#### "+c.ID+": ")) {
			t.Errorf("%s is not in %s", c.ID, path)
		}
	}
}
