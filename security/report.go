package security

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes the result table: id, result, one-line evidence, and the
// fix under every failed or inconclusive check.
func WriteText(w io.Writer, rs []Result, total time.Duration) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRESULT\tTIME\tEVIDENCE")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Check.ID, r.Outcome.Status, r.Outcome.Duration.Round(10*time.Millisecond), r.Outcome.Evidence)
		if r.Outcome.Status == Fail || r.Outcome.Status == Inconclusive {
			fmt.Fprintf(tw, "\t\t\tfix: %s\n", r.Check.Fix)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	c := Counts(rs)
	_, err := fmt.Fprintf(w, "\n%d checks in %s: %d passed, %d failed, %d inconclusive, %d skipped\n",
		len(rs), total.Round(100*time.Millisecond), c[Pass], c[Fail], c[Inconclusive], c[Skipped])
	return err
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// WriteJUnit writes one testcase per check; Fail and Inconclusive become
// <failure> (type says which), Skipped becomes <skipped>.
func WriteJUnit(w io.Writer, suite string, rs []Result, total time.Duration) error {
	s := junitSuite{Name: suite, Tests: len(rs), Time: secs(total)}
	for _, r := range rs {
		fam, _, _ := strings.Cut(r.Check.ID, "-")
		tc := junitCase{Classname: "security." + fam, Name: r.Check.ID + " " + r.Check.Title, Time: secs(r.Outcome.Duration)}
		switch r.Outcome.Status {
		case Fail, Inconclusive:
			s.Failures++
			tc.Failure = &junitFailure{Message: r.Outcome.Evidence, Type: r.Outcome.Status.String(),
				Body: "attack: " + r.Check.Attack + "\nevidence: " + r.Outcome.Evidence + "\nfix: " + r.Check.Fix}
		case Skipped:
			s.Skipped++
			tc.Skipped = &junitSkipped{Message: r.Outcome.Evidence}
		default:
			tc.SystemOut = r.Outcome.Evidence
		}
		s.Cases = append(s.Cases, tc)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{s}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// JSONReport is the machine-readable form of a run.
type JSONReport struct {
	Version  int          `json:"version"`
	Target   string       `json:"target"`
	Started  time.Time    `json:"started"`
	Duration float64      `json:"duration_s"`
	Counts   JSONCounts   `json:"counts"`
	Checks   []JSONResult `json:"checks"`
}

// JSONCounts tallies a run.
type JSONCounts struct {
	Pass         int `json:"pass"`
	Fail         int `json:"fail"`
	Inconclusive int `json:"inconclusive"`
	Skipped      int `json:"skipped"`
}

// JSONResult is one check in a JSONReport.
type JSONResult struct {
	ID         string  `json:"id"`
	Tier       int     `json:"tier"`
	Title      string  `json:"title"`
	Status     Status  `json:"status"`
	Evidence   string  `json:"evidence"`
	Fix        string  `json:"fix"`
	DurationMS float64 `json:"duration_ms"`
}

// WriteJSON writes the run as a JSONReport.
func WriteJSON(w io.Writer, targetName string, started time.Time, rs []Result, total time.Duration) error {
	c := Counts(rs)
	rep := JSONReport{Version: 1, Target: targetName, Started: started.UTC(), Duration: total.Seconds(),
		Counts: JSONCounts{Pass: c[Pass], Fail: c[Fail], Inconclusive: c[Inconclusive], Skipped: c[Skipped]}}
	for _, r := range rs {
		rep.Checks = append(rep.Checks, JSONResult{ID: r.Check.ID, Tier: r.Check.Tier, Title: r.Check.Title,
			Status: r.Outcome.Status, Evidence: r.Outcome.Evidence, Fix: r.Check.Fix,
			DurationMS: float64(r.Outcome.Duration.Microseconds()) / 1000})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
