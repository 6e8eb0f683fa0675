package devices

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html/template"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteConsole writes the matrix as a table, then one line per refusal
// with its reason in plain words.
func WriteConsole(w io.Writer, m *Matrix) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "device compatibility against %s (%s)\n", m.Target, m.ServerName)
	fmt.Fprintln(tw, "PROFILE\tVERDICT\tREASON\tTLS\tSUITE\tGROUP\tMFLN\t1ST FLIGHT\tCHAIN/BOARD\tOWN CHAIN/BUF\tHANDSHAKE\tCPU/HS\tNO NTP")
	for _, r := range m.Rows {
		name := r.Profile
		if r.Required {
			name += " (required)"
		}
		verdict := r.Verdict
		if !r.Matches {
			verdict += " (!)"
		}
		mfln := "-"
		if r.MFLN > 0 {
			mfln = fmt.Sprint(r.MFLN)
			if r.Version != "" {
				mfln += "→" + orDash(r.ServerMFLN)
			}
		}
		chain := "-"
		if r.ServerChain > 0 {
			chain = fmt.Sprintf("%d/%s", r.ServerChain, orAny(r.BoardIn))
		}
		own := "-"
		if r.ClientChain > 0 {
			own = fmt.Sprintf("%d/%s (%s)", r.ClientChain, orAny(r.BoardOut), r.ClientKey)
		}
		cpu := "n/a"
		if r.BrokerCPUus >= 0 {
			cpu = fmt.Sprintf("%.0fµs", r.BrokerCPUus)
		}
		nontp := r.NoNTP
		if r.NoNTPReason != "" {
			nontp += ": " + string(r.NoNTPReason)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1fms\t%s\t%s\n", name, verdict, dash(string(r.Reason)), dash(r.Version),
			dash(r.Suite), dash(r.Group), mfln, bytesOrDash(r.FirstFlight), chain, own, r.HandshakeMS, cpu, nontp)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range m.Rows {
		if !r.Works() {
			if _, err := fmt.Fprintf(w, "  %s: %s: %s\n", r.Profile, r.Reason, r.Detail); err != nil {
				return err
			}
		}
	}
	mismatch := 0
	for _, r := range m.Rows {
		if !r.Matches {
			mismatch++
		}
	}
	if mismatch > 0 {
		fmt.Fprintf(w, "  (!) %d verdict(s) differ from what docs/DEVICES.md expects of mqttstack's hardened broker (a changed config, or another broker)\n", mismatch)
	}
	if m.Skew != 0 {
		for _, r := range m.Rows {
			fmt.Fprintf(w, "  clock off by %v: %s %s\n", m.Skew, r.Profile, r.Skewed)
		}
	}
	if m.CPUNote != "" {
		fmt.Fprintf(w, "  %s\n", m.CPUNote)
	}
	if f := m.Failed(); len(f) > 0 {
		var names []string
		for _, r := range f {
			names = append(names, r.Profile)
		}
		_, err := fmt.Fprintf(w, "FAIL: required profile(s) do not work: %s\n", strings.Join(names, ", "))
		return err
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orDash(n int) string {
	if n == 0 {
		return "ignored"
	}
	return fmt.Sprint(n)
}

func orAny(n int) string {
	if n == 0 {
		return "streamed"
	}
	return fmt.Sprint(n)
}

func bytesOrDash(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%d B", n)
}

// WriteJSON writes the matrix as indented JSON.
func WriteJSON(w io.Writer, m *Matrix) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     float64     `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes one test case per profile: a required profile that
// does not work is a failure, any other refused profile is skipped with
// its reason (it documents a board the stack does not serve).
func WriteJUnit(w io.Writer, m *Matrix) error {
	s := junitSuite{Name: "mqttstack devices compat", Time: m.Duration.Seconds()}
	for _, r := range m.Rows {
		c := junitCase{Name: r.Profile, Classname: "devices.compat", Time: r.HandshakeMS / 1000,
			SystemOut: fmt.Sprintf("%s %s %s %s, first flight %d B, handshake %.1f ms, broker CPU/handshake %.0f µs, clock unset: %s", r.Verdict, r.Version, r.Suite, r.Group, r.FirstFlight, r.HandshakeMS, r.BrokerCPUus, r.NoNTP)}
		switch {
		case r.Works():
		case r.Required:
			c.Failure = &junitMessage{Message: string(r.Reason), Text: r.Detail}
			s.Failures++
		default:
			c.Skipped = &junitMessage{Message: "refused: " + string(r.Reason) + ": " + r.Detail}
			s.Skipped++
		}
		s.Cases = append(s.Cases, c)
	}
	s.Tests = len(s.Cases)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteProfiles lists the profiles with what they offer and their sources.
func WriteProfiles(w io.Writer, ps []Profile, verbose bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tTLS\tSUITES\tMFLN\tKEY\tCLOCK\tEXPECT\tBOARD")
	for _, p := range ps {
		tlsv := VersionName(p.MinVersion)
		if p.MaxVersion != p.MinVersion {
			tlsv += "–" + strings.TrimPrefix(VersionName(p.MaxVersion), "TLS ")
		}
		suites := fmt.Sprint(len(p.Suites))
		if p.Native {
			suites = "Go default"
		}
		mfln := "-"
		if p.MFLN > 0 {
			mfln = fmt.Sprint(p.MFLN)
		}
		exp := p.Expect
		if p.ExpectReason != "" {
			exp += " (" + p.ExpectReason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, tlsv, suites, mfln, p.ClientKey, p.Clock, exp, p.Board)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nSources:")
	for _, p := range ps {
		hello := "captured: devices/testdata/hello/" + p.Capture
		switch {
		case p.Native:
			hello = "Go crypto/tls"
		case p.Capture == "":
			hello = "derived: " + p.Derived
		case p.Derived != "":
			hello += "; derived: " + p.Derived
		}
		fmt.Fprintf(w, "  %s (%s; hello %s)\n", p.Name, p.Stack, hello)
		for _, s := range p.Sources {
			fmt.Fprintf(w, "    - %s\n", s)
		}
		if verbose {
			fmt.Fprintf(w, "    suites %s\n    groups %s\n    sig_algs %s\n    extensions %s\n", hexList(p.Suites), hexList(p.Groups), hexList(p.SigAlgs), hexList(p.Extensions))
			if p.Notes != "" {
				fmt.Fprintf(w, "    note: %s\n", p.Notes)
			}
		}
	}
	return nil
}

func hexList(v []uint16) string {
	if len(v) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, x := range v {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(hex4(x))
	}
	return b.String()
}

var htmlPage = template.Must(template.New("compat").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Device compatibility: {{.Target}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}th,td{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}.works{color:#17702b}.refused{color:#b3261e}.sub{color:#666}
</style></head><body>
<h1>Device compatibility</h1>
<p class="sub">against {{.Target}} ({{.ServerName}}), {{.Started.UTC.Format "2006-01-02 15:04:05 MST"}}{{if .Host}}, broker CPU read on {{.Host}}{{end}}. Profiles and sources: docs/DEVICES.md.</p>
<table>
<tr><th>profile</th><th>verdict</th><th>reason</th><th>TLS</th><th>suite</th><th>group</th><th class="num">MFLN</th><th class="num">first flight</th><th class="num">chain / board</th><th class="num">own chain / buffer</th><th class="num">handshake</th><th class="num">broker CPU</th><th>clock unset</th></tr>
{{range .Rows}}<tr><td>{{.Profile}}{{if .Required}} <b>(required)</b>{{end}}<br><span class="sub">{{.Board}}</span></td>
<td class="{{.Verdict}}">{{.Verdict}}{{if not .Matches}} (differs from docs/DEVICES.md){{end}}</td>
<td>{{if .Reason}}{{.Reason}}<br><span class="sub">{{.Detail}}</span>{{end}}</td>
<td>{{.Version}}</td><td>{{.Suite}}</td><td>{{.Group}}</td>
<td class="num">{{if .MFLN}}{{.MFLN}} → {{if .ServerMFLN}}{{.ServerMFLN}}{{else}}–{{end}}{{end}}</td>
<td class="num">{{if .FirstFlight}}{{.FirstFlight}} B{{end}}</td>
<td class="num">{{if .ServerChain}}{{.ServerChain}} / {{if .BoardIn}}{{.BoardIn}}{{else}}streamed{{end}}{{end}}</td>
<td class="num">{{if .ClientChain}}{{.ClientChain}} / {{if .BoardOut}}{{.BoardOut}}{{else}}streamed{{end}} ({{.ClientKey}}){{end}}</td>
<td class="num">{{printf "%.1f" .HandshakeMS}} ms</td>
<td class="num">{{if ge .BrokerCPUus 0.0}}{{printf "%.0f" .BrokerCPUus}} µs{{else}}n/a{{end}}</td>
<td>{{.NoNTP}}{{if .NoNTPReason}}: {{.NoNTPReason}}{{end}}</td></tr>
{{end}}</table>
{{if .CPUNote}}<p class="sub">{{.CPUNote}}</p>{{end}}
</body></html>
`))

// WriteHTML writes the matrix as a standalone HTML page.
func WriteHTML(w io.Writer, m *Matrix) error { return htmlPage.Execute(w, m) }
