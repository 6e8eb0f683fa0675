package result

import (
	"fmt"
	"html/template"
	"sort"
	"strings"
	"time"
)

// ProfilePart is one device TLS profile's share of a run (a scenario's
// fleet.profiles, package devices): its counts and latencies over the
// whole run in the shape of a Phase (Name is the profile), its connect
// rate, and its failures by cause.
type ProfilePart struct {
	Phase
	// FirstAttempt and LastConnect bound the profile's connecting: its
	// connect rate is Connects over that time.
	FirstAttempt time.Time `json:"first_attempt"`
	LastConnect  time.Time `json:"last_connect"`
	// Causes are its failures (connect and publish) by cause, most
	// frequent first.
	Causes []Point2 `json:"causes,omitempty"`
}

// Point2 is a count of one cause.
type Point2 struct {
	Cause string `json:"cause"`
	N     int64  `json:"n"`
}

// ConnectRate is the profile's connects per second while it connected.
func (p *ProfilePart) ConnectRate() float64 {
	secs := p.LastConnect.Sub(p.FirstAttempt).Seconds()
	if secs <= 0 || p.Counts.Connects == 0 {
		return 0
	}
	return float64(p.Counts.Connects) / secs
}

// profileRecs accumulates per-profile parts inside a Recorder (owned by the
// Recorder's single writer; the zero value is ready).
type profileRecs struct {
	by    map[string]*profileRec
	order []*profileRec
}

type profileRec struct {
	ph           phaseRec
	causes       map[string]int64
	firstAttempt time.Time
	lastConnect  time.Time
	first, last  time.Time
}

func (r *Recorder) profile(name string, at time.Time) *profileRec {
	ps := &r.profiles
	p := ps.by[name]
	if p == nil {
		if ps.by == nil {
			ps.by = map[string]*profileRec{}
		}
		if len(ps.by) >= maxCauses {
			name = otherCause
			if p = ps.by[name]; p != nil {
				return p
			}
		}
		p = &profileRec{ph: phaseRec{name: name, kind: "profile"}, causes: map[string]int64{}, first: at, last: at}
		ps.by[name] = p
		ps.order = append(ps.order, p)
	}
	if !at.IsZero() {
		if at.Before(p.first) {
			p.first = at
		}
		if at.After(p.last) {
			p.last = at
		}
	}
	return p
}

// ProfileAdd counts c for a device profile, besides the run's own count
// (Add). Active is not tracked per profile.
func (r *Recorder) ProfileAdd(profile string, c Counter, at time.Time, n int64) {
	if c < 0 || c >= numCounters || c == Active {
		return
	}
	p := r.profile(profile, at)
	p.ph.counts.add(c, n)
	switch c {
	case ConnectAttempts:
		if p.firstAttempt.IsZero() || at.Before(p.firstAttempt) {
			p.firstAttempt = at
		}
	case Connects:
		if at.After(p.lastConnect) {
			p.lastConnect = at
		}
	}
}

// ProfileObserve records a latency for a device profile, besides Observe.
func (r *Recorder) ProfileObserve(profile string, m Metric, at time.Time, d time.Duration) {
	if m < 0 || m >= numMetrics {
		return
	}
	p := r.profile(profile, at)
	us, clamped := micros(d)
	record(&p.ph, m, us, clamped)
}

// ProfileError counts a failure of a device profile by cause, besides Error.
func (r *Recorder) ProfileError(profile, cause string, at time.Time) {
	p := r.profile(profile, at)
	p.ph.counts.Errors++
	if _, ok := p.causes[cause]; !ok && len(p.causes) >= maxCauses {
		cause = otherCause
	}
	p.causes[cause]++
}

// results returns the parts in the order the profiles first appeared.
func (ps *profileRecs) results() []ProfilePart {
	var out []ProfilePart
	for _, p := range ps.order {
		p.ph.spans = []Span{{Start: p.first, End: p.last}}
		part := ProfilePart{Phase: p.ph.result(), FirstAttempt: p.firstAttempt, LastConnect: p.lastConnect}
		part.Causes = sortCauses(p.causes)
		out = append(out, part)
	}
	return out
}

func sortCauses(m map[string]int64) []Point2 {
	var out []Point2
	for c, n := range m {
		out = append(out, Point2{Cause: c, N: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		return out[i].Cause < out[j].Cause
	})
	return out
}

// mergeProfiles adds up the parts of every result by profile: counts and
// causes add, histograms merge bucket by bucket, connecting spans unite.
func mergeProfiles(rs []*Result) ([]ProfilePart, error) {
	type acc struct {
		part   ProfilePart
		lat    latencies
		causes map[string]int64
		spans  []Span
	}
	var order []*acc
	by := map[string]*acc{}
	for _, r := range rs {
		for i := range r.Profiles {
			p := &r.Profiles[i]
			a := by[p.Name]
			if a == nil {
				a = &acc{part: ProfilePart{Phase: Phase{Name: p.Name, Kind: p.Kind}}, causes: map[string]int64{}}
				by[p.Name] = a
				order = append(order, a)
			}
			a.part.Counts.plus(p.Counts)
			a.spans = append(a.spans, p.Spans...)
			if !p.FirstAttempt.IsZero() && (a.part.FirstAttempt.IsZero() || p.FirstAttempt.Before(a.part.FirstAttempt)) {
				a.part.FirstAttempt = p.FirstAttempt
			}
			if p.LastConnect.After(a.part.LastConnect) {
				a.part.LastConnect = p.LastConnect
			}
			for _, c := range p.Causes {
				a.causes[c.Cause] += c.N
			}
			if err := a.lat.add(p.Latency, fmt.Sprintf("%s: profile %q", r.name(), p.Name)); err != nil {
				return nil, err
			}
		}
	}
	var out []ProfilePart
	for _, a := range order {
		p := a.part
		p.setSpans(unionSpans(a.spans))
		p.Latency = a.lat.summaries()
		p.Causes = sortCauses(a.causes)
		out = append(out, p)
	}
	return out, nil
}

// profileRow is one profile's line in the console and HTML reports.
type profileRow struct {
	Name, Connects, Rate, Failures, TLS50, TLS99, Connack99, Puback99, Causes string
}

func profileRows(r *Result) []profileRow {
	var rows []profileRow
	lat := func(p *ProfilePart, m Metric, q func(*Summary) int64) string {
		if s, ok := p.Summary(m); ok {
			return FormatMicros(float64(q(s)))
		}
		return "–"
	}
	for i := range r.Profiles {
		p := &r.Profiles[i]
		c := p.Counts
		row := profileRow{
			Name:      p.Name,
			Connects:  fmt.Sprintf("%s/%s", formatCount(c.Connects), formatCount(c.ConnectAttempts)),
			Rate:      rate(c.Connects, p.LastConnect.Sub(p.FirstAttempt).Seconds()),
			Failures:  fmt.Sprintf("%s connect, %s publish", formatCount(c.ConnectFailures), formatCount(c.PublishFailures)),
			TLS50:     lat(p, TLS, func(s *Summary) int64 { return s.P50 }),
			TLS99:     lat(p, TLS, func(s *Summary) int64 { return s.P99 }),
			Connack99: lat(p, CONNACK, func(s *Summary) int64 { return s.P99 }),
			Puback99:  lat(p, PUBACK, func(s *Summary) int64 { return s.P99 }),
		}
		var cs []string
		for j, k := range p.Causes {
			if j == 3 {
				cs = append(cs, "…")
				break
			}
			cs = append(cs, fmt.Sprintf("%s ×%d", k.Cause, k.N))
		}
		row.Causes = strings.Join(cs, "; ")
		rows = append(rows, row)
	}
	return rows
}

// writeProfiles is the console section of a run with device profiles.
func writeProfiles(f *fmtErr, r *Result) {
	if len(r.Profiles) == 0 {
		return
	}
	f.printf("\nDevice profiles (docs/DEVICES.md)\n")
	f.printf("  %-28s %13s %9s %10s %10s %10s %10s  %s\n", "profile", "connects", "rate", "TLS p50", "TLS p99", "CONNACK p99", "PUBACK p99", "failures")
	for _, row := range profileRows(r) {
		f.printf("  %-28s %13s %9s %10s %10s %10s %10s  %s", row.Name, row.Connects, row.Rate, row.TLS50, row.TLS99, row.Connack99, row.Puback99, row.Failures)
		if row.Causes != "" {
			f.printf(" (%s)", row.Causes)
		}
		f.printf("\n")
	}
}

// profilesHTML is the HTML report's section of a run with device profiles.
func profilesHTML(r *Result) template.HTML {
	if len(r.Profiles) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(`<h2>Device profiles</h2><div class="box"><table><tr><th>profile</th><th class="num">connects</th><th class="num">rate</th><th class="num">TLS p50</th><th class="num">TLS p99</th><th class="num">CONNACK p99</th><th class="num">PUBACK p99</th><th>failures</th></tr>`)
	for _, row := range profileRows(r) {
		fail := row.Failures
		if row.Causes != "" {
			fail += " (" + row.Causes + ")"
		}
		fmt.Fprintf(&b, `<tr><td>%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td><td>%s</td></tr>`,
			template.HTMLEscapeString(row.Name), row.Connects, row.Rate, row.TLS50, row.TLS99, row.Connack99, row.Puback99, template.HTMLEscapeString(fail))
	}
	b.WriteString("</table></div>")
	return template.HTML(b.String())
}
