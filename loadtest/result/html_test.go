package result

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

func syntheticForHTML(t testing.TB) *Result {
	res := synthetic(t, 0, 1, 0, 400)
	res.Thresholds = Evaluate(res, syntheticThresholds())
	return res
}

// TestWriteHTMLStructure renders a full synthetic run and checks the page:
// every plot is an inline <svg>, nothing is fetched at view time, and the
// tables a person reads are there.
func TestWriteHTMLStructure(t *testing.T) {
	res := syntheticForHTML(t)
	var buf bytes.Buffer
	if err := WriteHTML(&buf, res); err != nil {
		t.Fatal(err)
	}
	page := buf.String()

	// 6 time plots + histogram and percentile plot for each of 5 metrics.
	if got := strings.Count(page, "<svg"); got != 16 {
		t.Errorf("page has %d <svg> plots, want 16", got)
	}
	if got := strings.Count(page, "</svg>"); got != 16 {
		t.Errorf("page has %d </svg>, want 16", got)
	}
	for _, title := range []string{
		"Connects per second", "Connected devices", "Publishes per second", "Errors by cause",
		"Load generator CPU", "Load generator memory",
		"TCP connect latency distribution", "TLS handshake latency by percentile",
		"CONNACK latency distribution", "PUBACK latency by percentile", "end-to-end latency distribution",
	} {
		if !strings.Contains(page, ">"+title+"</text>") {
			t.Errorf("no plot titled %q", title)
		}
	}
	// Self-contained: no URL of any kind, no script, no external stylesheet.
	for _, bad := range []string{"http://", "https://", "<script", "<link", "@import", "src=", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q: it must not fetch anything at view time", bad)
		}
	}
	for _, want := range []string{
		"FAIL · 2 of 5 thresholds", "e2e_p99", "✗", "✓", "Phase ramp", "All phases", "p99.9",
		"connack: server unavailable", "memory per connected device", "sha256:5e1f",
		"Delivery (observer)", "received (unique)",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?s)^<!DOCTYPE html>.*</html>\n$`).MatchString(page) {
		t.Error("page is not one complete HTML document")
	}
}

func TestWriteHTMLWithoutData(t *testing.T) {
	res := NewRecorder(Meta{Scenario: "idle", Start: t0}).Finish(at(3), Final{})
	var buf bytes.Buffer
	if err := WriteHTML(&buf, res); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"No connect was attempted.", "No PUBACK latency", "No errors.", "no thresholds"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestWriteHTMLMergesShards(t *testing.T) {
	a, b := synthetic(t, 0, 2, 0, 200), synthetic(t, 1, 2, 200, 400)
	var buf bytes.Buffer
	if err := WriteHTML(&buf, a, b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "2 of 2 shards") {
		t.Error("merged page does not say it merged 2 of 2 shards")
	}
	if err := WriteHTML(&buf, a, a); err == nil {
		t.Error("WriteHTML of the same shard twice succeeded")
	}
	if err := WriteHTML(errWriter{}, a); err == nil {
		t.Error("WriteHTML to a failing writer returned nil")
	}
}

// TestWriteHTMLTinyRuns: runs of one second, or with one observation, still
// draw every plot (gonum/plot panics on degenerate ranges; the page must
// neither panic nor lose plots).
func TestWriteHTMLTinyRuns(t *testing.T) {
	for _, tt := range []struct {
		name string
		end  float64
	}{{"sub-second", 0.4}, {"one second", 1}} {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRecorder(Meta{Scenario: "tiny", Start: t0})
			r.Phase("ramp", t0)
			r.Add(ConnectAttempts, at(0.1), 1)
			r.Add(Connects, at(0.1), 1)
			r.Add(Active, at(0.1), 1)
			r.Observe(CONNACK, at(0.1), 3*time.Millisecond)
			r.Error("tls: bad certificate", at(0.2))
			r.Usage(at(0), time.Second, 1<<20)
			r.Usage(at(0.3), time.Second+5*time.Millisecond, 1<<20)
			var buf bytes.Buffer
			if err := WriteHTML(&buf, r.Finish(at(tt.end), Final{})); err != nil {
				t.Fatal(err)
			}
			page := buf.String()
			if strings.Contains(page, "could not be drawn") {
				t.Errorf("a plot failed:\n%s", page[strings.Index(page, "could not be drawn")-200:][:600])
			}
			// 5 time plots (nothing published: a note instead) + CONNACK's two.
			if got := strings.Count(page, "<svg"); got != 7 || !strings.Contains(page, "Nothing was published.") {
				t.Errorf("page has %d plots, want 7 and a note for publishes", got)
			}
		})
	}
}
