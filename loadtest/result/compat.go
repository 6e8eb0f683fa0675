package result

import (
	"fmt"
	"html/template"
	"strings"
)

// CompatRow is one row of the device compatibility matrix (package
// devices) that a run with fleet.profiles measures before its load: each
// board's verdict against the target, in the result so the report shows
// why a profile's devices failed before anyone reads its latencies.
type CompatRow struct {
	Profile string `json:"profile"`
	Verdict string `json:"verdict"` // works | refused
	Reason  string `json:"reason,omitempty"`
	Detail  string `json:"detail,omitempty"`
	TLS     string `json:"tls_version,omitempty"`
	Suite   string `json:"suite,omitempty"`
	Group   string `json:"group,omitempty"`
	// FirstFlight is the size of the broker's first flight in bytes.
	FirstFlight int     `json:"first_flight_bytes,omitempty"`
	HandshakeMS float64 `json:"handshake_ms"`
	// ClockUnset is the verdict with the board's clock unset (no NTP).
	ClockUnset string `json:"clock_unset,omitempty"`
}

// mergeCompat keeps the first shard's matrix: every shard measured the
// same boards against the same broker.
func mergeCompat(rs []*Result) []CompatRow {
	for _, r := range rs {
		if len(r.Compat) > 0 {
			return r.Compat
		}
	}
	return nil
}

// writeCompat is the console section of the matrix.
func writeCompat(f *fmtErr, r *Result) {
	if len(r.Compat) == 0 {
		return
	}
	f.printf("\nDevice compatibility before the load (mqttstack devices compat)\n")
	for _, c := range r.Compat {
		line := fmt.Sprintf("  %-28s %-8s", c.Profile, c.Verdict)
		if c.Verdict == "works" {
			line += fmt.Sprintf(" %s %s %s, first flight %d B, handshake %.1f ms", c.TLS, c.Suite, c.Group, c.FirstFlight, c.HandshakeMS)
		} else {
			line += " " + c.Reason + ": " + c.Detail
		}
		if c.ClockUnset != "" {
			line += "; without NTP: " + c.ClockUnset
		}
		f.printf("%s\n", line)
	}
}

// compatHTML is the HTML report's section of the matrix.
func compatHTML(r *Result) template.HTML {
	if len(r.Compat) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(`<h2>Device compatibility</h2><div class="box"><table><tr><th>profile</th><th>verdict</th><th>reason</th><th>TLS</th><th>suite</th><th>group</th><th class="num">first flight</th><th class="num">handshake</th><th>without NTP</th></tr>`)
	e := template.HTMLEscapeString
	for _, c := range r.Compat {
		reason := c.Reason
		if c.Detail != "" {
			reason += ": " + c.Detail
		}
		fmt.Fprintf(&b, `<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class="num">%d B</td><td class="num">%.1f ms</td><td>%s</td></tr>`,
			e(c.Profile), e(c.Verdict), e(reason), e(c.TLS), e(c.Suite), e(c.Group), c.FirstFlight, c.HandshakeMS, e(c.ClockUnset))
	}
	b.WriteString("</table></div>")
	return template.HTML(b.String())
}
