package result

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// WriteHTML writes one self-contained HTML report: inline CSS and inline SVG
// plots (gonum/plot), no script and nothing fetched at view time, so it can
// be mailed, archived as a CI artifact and opened offline. Several results
// are taken to be shards of one run and merged first (Merge's checks
// apply). Thresholds shown are each result's stored outcomes (Thresholds);
// evaluate a merged result before rendering it to show its thresholds.
func WriteHTML(w io.Writer, rs ...*Result) error {
	if len(rs) == 0 {
		return fmt.Errorf("html report: no result given")
	}
	r := rs[0]
	if len(rs) > 1 {
		m, err := Merge(rs...)
		if err != nil {
			return fmt.Errorf("html report: %w", err)
		}
		r = m
	}
	page, err := buildPage(r)
	if err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	if err := pageTemplate.Execute(w, page); err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	return nil
}

type htmlPage struct {
	Title       string
	Subtitle    string
	Verdict     string // "pass", "fail", "none"
	VerdictText string
	Interrupted string
	Warnings    []string
	Cards       []card
	Thresholds  []htmlThreshold
	Meta        [][2]string
	Phases      []htmlPhase
	TimePlots   []figure
	Latency     []latencyFigures
	Errors      []htmlError
	Profiles    template.HTML // device profiles section (profiles.go)
	Compat      template.HTML // device compatibility section (compat.go)
	Delivery    [][2]string
	Cost        [][2]string
	Generated   string
}

type card struct {
	Label, Value, Sub string
	Bad               bool
}

type htmlThreshold struct {
	Passed            bool
	Metric, Want, Got string
	Line              int
}

type htmlPhase struct {
	Name, When string
	Facts      []string
	Rows       [][]string
}

type figure struct {
	Title  string
	SVG    template.HTML
	Legend []htmlLegend
	Note   string
}

type htmlLegend struct {
	Name   string
	Color  template.CSS
	Dashed bool
}

type latencyFigures struct {
	Metric     string
	Hist, Pct  figure
	Summary    string
	NoDataNote string
}

type htmlError struct {
	Cause, Count, First, Last string
}

func buildPage(r *Result) (*htmlPage, error) {
	m := r.Meta
	pg := &htmlPage{
		Title:     "mqttstack · " + orDash(m.Scenario),
		Generated: "mqttstack report, schema " + Schema,
	}
	pg.Subtitle = fmt.Sprintf("%s → %s UTC · %s", m.Start.UTC().Format("2006-01-02 15:04:05"),
		m.End.UTC().Format("15:04:05"), formatSeconds(m.End.Sub(m.Start).Seconds()))
	if m.Target != "" {
		pg.Subtitle += " · target " + m.Target
	}
	if d := describeDevices(m.Devices); d != "" {
		pg.Subtitle += " · " + d
	}
	switch {
	case len(r.Thresholds) == 0:
		pg.Verdict, pg.VerdictText = "none", "no thresholds"
	case Passed(r.Thresholds):
		pg.Verdict, pg.VerdictText = "pass", fmt.Sprintf("PASS · %d thresholds", len(r.Thresholds))
	default:
		failed := 0
		for _, o := range r.Thresholds {
			if !o.Passed {
				failed++
			}
		}
		pg.Verdict, pg.VerdictText = "fail", fmt.Sprintf("FAIL · %d of %d thresholds", failed, len(r.Thresholds))
	}
	if m.Interrupted {
		pg.Interrupted = "Interrupted: " + orDash(m.InterruptReason) + ". The numbers cover only what ran."
	}
	if r.Cost.DroppedEvents > 0 {
		pg.Warnings = append(pg.Warnings, fmt.Sprintf("%s events were dropped because the collector fell behind: every count is a lower bound. Add shards.", formatCount(r.Cost.DroppedEvents)))
	}
	if len(m.Merged) > 0 && strings.Contains(describeShards(m.Merged), "MISSING") {
		pg.Warnings = append(pg.Warnings, "Merged "+describeShards(m.Merged)+".")
	}

	pg.Cards = cards(r)
	for _, o := range r.Thresholds {
		got := o.Detail
		if o.HasData {
			got = FormatValue(o.Measured, o.Unit)
		}
		pg.Thresholds = append(pg.Thresholds, htmlThreshold{Passed: o.Passed, Metric: o.Metric, Want: strings.TrimPrefix(thresholdText(o), o.Metric+" "), Got: got, Line: o.Line})
	}

	pg.Meta = [][2]string{
		{"scenario", orDash(m.Scenario)},
		{"scenario hash", orDash(m.ScenarioHash)},
		{"target", orDash(m.Target)},
		{"devices", orDash(describeDevices(m.Devices))},
		{"start", m.Start.UTC().Format(time.RFC3339)},
		{"end", m.End.UTC().Format(time.RFC3339)},
		{"host", orDash(m.Host)},
		{"mqttstack", orDash(m.ToolVersion)},
		{"go", orDash(m.GoVersion)},
	}
	if len(m.Merged) > 0 {
		pg.Meta = append(pg.Meta, [2]string{"merged", describeShards(m.Merged)})
		for _, s := range m.Merged {
			pg.Meta = append(pg.Meta, [2]string{fmt.Sprintf("· shard %d/%d", s.Shard.Index+1, s.Shard.Count),
				strings.TrimSpace(orDash(s.File) + " " + describeDevices(s.Devs) + " " + s.Host)})
		}
	} else if m.Shard.Count > 1 {
		pg.Meta = append(pg.Meta, [2]string{"shard", fmt.Sprintf("%d of %d", m.Shard.Index+1, m.Shard.Count)})
	}

	for i := range r.Phases {
		pg.Phases = append(pg.Phases, htmlPhaseOf(&r.Phases[i], "Phase "+r.Phases[i].Name))
	}
	if len(r.Phases) != 1 {
		pg.Phases = append(pg.Phases, htmlPhaseOf(&r.Total, "All phases"))
	}

	var errs []string
	render := func(title string, build func() (*chart, bool), note string) figure {
		f := figure{Title: title}
		src, ok := build()
		if !ok {
			f.Note = note
			return f
		}
		svg, err := svgOf(src)
		if err != nil {
			errs = append(errs, err.Error())
			f.Note = "This plot could not be drawn: " + err.Error()
			return f
		}
		f.SVG = template.HTML(svg) // produced by vgsvg, which escapes its text
		for _, l := range src.legend {
			r, g, b, _ := l.Color.RGBA()
			f.Legend = append(f.Legend, htmlLegend{Name: l.Name, Dashed: l.Dashed,
				Color: template.CSS(fmt.Sprintf("#%02x%02x%02x", r>>8, g>>8, b>>8))})
		}
		return f
	}
	ta := newTimeAxis(r)
	pg.TimePlots = []figure{
		render("Connections", func() (*chart, bool) {
			return timePlot(r, ta, "Connects per second", "per second", []seriesLine{
				{"connected", func(s Second) float64 { return float64(s.Connects) }},
				{"failed", func(s Second) float64 { return float64(s.ConnectFailures) }},
				{"reconnected", func(s Second) float64 { return float64(s.Reconnects) }},
			})
		}, "No connect was attempted."),
		render("Connected devices", func() (*chart, bool) {
			return timePlot(r, ta, "Connected devices", "devices", []seriesLine{
				{"connected", func(s Second) float64 { return float64(s.Active) }},
			})
		}, "No device was connected."),
		render("Publishes", func() (*chart, bool) {
			return timePlot(r, ta, "Publishes per second", "per second", []seriesLine{
				{"published", func(s Second) float64 { return float64(s.Published) }},
				{"received by observer", func(s Second) float64 { return float64(s.Received) }},
				{"publish failed", func(s Second) float64 { return float64(s.PublishFailures) }},
			})
		}, "Nothing was published."),
		render("Errors", func() (*chart, bool) { return errorsPlot(r, ta) }, "No errors."),
	}
	if r.Total.CPUSeconds > 0 {
		// The generator's own load next to the broker's numbers: a
		// saturated generator explains latency the broker did not cause.
		pg.TimePlots = append(pg.TimePlots,
			render("Load generator CPU", func() (*chart, bool) {
				return timePlot(r, ta, "Load generator CPU", "cores busy", []seriesLine{
					{"CPU (user + system)", func(s Second) float64 { return s.CPUSeconds }},
				})
			}, "No CPU samples."),
			render("Load generator memory", func() (*chart, bool) {
				return timePlot(r, ta, "Load generator memory", "MiB resident", []seriesLine{
					{"resident memory", func(s Second) float64 { return float64(s.RSSBytes) / (1 << 20) }},
				})
			}, "No memory samples."))
	}
	for _, met := range Metrics() {
		hs := histsOf(r, met)
		lf := latencyFigures{Metric: met.Label()}
		if len(hs) == 0 {
			lf.NoDataNote = noLatencyNote(met)
			pg.Latency = append(pg.Latency, lf)
			continue
		}
		var total = hs[0].h
		if s, ok := r.Total.Summary(met); ok {
			if h, err := s.histogram(); err == nil {
				total = h
			}
			lf.Summary = fmt.Sprintf("%s observations · p50 %s · p99 %s · p99.9 %s · max %s", formatCount(s.Count),
				FormatMicros(float64(s.P50)), FormatMicros(float64(s.P99)), FormatMicros(float64(s.P999)), FormatMicros(float64(s.Max)))
			if met == CONNACK {
				lf.Summary += ". " + connackNote
			}
		}
		lf.Hist = render("distribution", func() (*chart, bool) { return histogramPlot(met, hs), true }, "")
		lf.Pct = render("percentiles", func() (*chart, bool) { return percentilePlot(met, hs, total), true }, "")
		pg.Latency = append(pg.Latency, lf)
	}
	pg.Profiles = profilesHTML(r)
	pg.Compat = compatHTML(r)
	for _, e := range r.Errors {
		pg.Errors = append(pg.Errors, htmlError{Cause: e.Cause, Count: formatCount(e.Count),
			First: e.FirstSeen.UTC().Format("15:04:05"), Last: e.LastSeen.UTC().Format("15:04:05")})
	}
	if d := r.Delivery; d.Expected > 0 || d.Received > 0 {
		pg.Delivery = [][2]string{
			{"expected", formatCount(d.Expected)},
			{"received (unique)", formatCount(d.Received)},
			{"lost", formatCount(d.Lost) + " (" + ratio(d.Lost, d.Expected) + ")"},
			{"duplicates", formatCount(d.Duplicates)},
			{"reordered", formatCount(d.Reorders)},
		}
		if d.Observers > 1 {
			pg.Delivery = append(pg.Delivery, [2]string{"observers", fmt.Sprint(d.Observers)})
		}
		if d.Unverified > 0 {
			pg.Delivery = append(pg.Delivery, [2]string{"unverified (observer overload)", formatCount(d.Unverified) + ": " + strings.Join(d.Overloaded, ", ")})
		}
	}
	pg.Cost = costRows(r)
	if len(errs) > 0 {
		pg.Warnings = append(pg.Warnings, "Some plots could not be drawn: "+strings.Join(errs, "; "))
	}
	return pg, nil
}

func noLatencyNote(m Metric) string {
	switch m {
	case PUBACK:
		return "No PUBACK latency: nothing was published with QoS 1 or 2."
	case E2E:
		return "No end-to-end latency: the observer received no telemetry."
	}
	return "No " + m.Label() + " latency was observed."
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func cards(r *Result) []card {
	c := r.Total.Counts
	var out []card
	// A card is red when a threshold on its metric failed; without a
	// threshold, by its own rule (bad).
	verdict := map[string]bool{}
	for _, o := range r.Thresholds {
		if passed, seen := verdict[o.Metric]; !seen || passed {
			verdict[o.Metric] = o.Passed
		}
	}
	add := func(label, metric, unit, sub string, bad func(float64) bool) {
		v, ok, why := Measure(r, metric)
		k := card{Label: label, Value: "–", Sub: sub}
		if passed, seen := verdict[metric]; seen {
			k.Bad = !passed
		}
		if ok {
			k.Value = FormatValue(v, unit)
			if _, seen := verdict[metric]; !seen {
				k.Bad = bad != nil && bad(v)
			}
		} else {
			k.Sub = why
		}
		out = append(out, k)
	}
	add("connect success", "connect_success", "%", formatCount(c.Connects)+" of "+formatCount(c.ConnectAttempts)+" attempts", func(v float64) bool { return v < 100 })
	out = append(out, card{Label: "peak connected", Value: formatCount(r.Total.PeakActive), Sub: describeDevices(r.Meta.Devices)})
	add("connect rate", "connect_rate", "/s", "mean over the ramp", nil)
	add("CONNACK p99", "connack_p99", "ms", "all phases", nil)
	add("publish rate", "publish_rate", "/s", "mean over steady stages", nil)
	add("end-to-end p99", "e2e_p99", "ms", "all phases", nil)
	d := r.Delivery
	if d.Expected > 0 {
		if d.Unverified > 0 {
			out = append(out, card{Label: "lost", Value: "unverified", Sub: formatCount(d.Unverified) + " not verified: observer overload", Bad: true})
		} else {
			out = append(out, card{Label: "lost", Value: formatCount(d.Lost), Sub: ratio(d.Lost, d.Expected) + " of " + formatCount(d.Expected) + " · dup " + formatCount(d.Duplicates) + " · reord " + formatCount(d.Reorders), Bad: d.Lost > 0})
		}
	} else {
		out = append(out, card{Label: "lost", Value: "–", Sub: "no telemetry tracked"})
	}
	out = append(out, card{Label: "errors", Value: formatCount(c.Errors), Sub: fmt.Sprintf("%d causes", len(r.Errors)), Bad: c.Errors > 0})
	return out
}

func htmlPhaseOf(p *Phase, title string) htmlPhase {
	h := htmlPhase{Name: title, When: formatSeconds(p.Seconds)}
	if !p.Start.IsZero() {
		h.When += ", " + p.Start.UTC().Format("15:04:05") + " → " + p.End.UTC().Format("15:04:05")
	}
	c := p.Counts
	if c.ConnectAttempts > 0 {
		over := "over this phase"
		if title == "All phases" {
			over = "averaged over all phases"
		}
		h.Facts = append(h.Facts, fmt.Sprintf("connects %s/%s (%s) at %s %s", formatCount(c.Connects), formatCount(c.ConnectAttempts), ratio(c.Connects, c.ConnectAttempts), rate(c.Connects, p.Seconds), over))
	}
	if c.Published+c.PublishFailures > 0 {
		h.Facts = append(h.Facts, fmt.Sprintf("published %s at %s", formatCount(c.Published), rate(c.Published, p.Seconds)))
	}
	if c.PublishFailures > 0 {
		h.Facts = append(h.Facts, "publish failures "+formatCount(c.PublishFailures))
	}
	if c.Received > 0 {
		h.Facts = append(h.Facts, "received "+formatCount(c.Received))
	}
	if c.Reconnects > 0 {
		h.Facts = append(h.Facts, "reconnects "+formatCount(c.Reconnects))
	}
	if c.Errors > 0 {
		h.Facts = append(h.Facts, "errors "+formatCount(c.Errors))
	}
	h.Facts = append(h.Facts, "peak connected "+formatCount(p.PeakActive))
	for _, s := range p.Latency {
		m, _ := ParseMetric(s.Metric)
		h.Rows = append(h.Rows, []string{m.Label(), formatCount(s.Count), FormatMicros(float64(s.P50)), FormatMicros(float64(s.P90)),
			FormatMicros(float64(s.P99)), FormatMicros(float64(s.P999)), FormatMicros(float64(s.Max)), FormatMicros(s.Mean)})
	}
	return h
}

func costRows(r *Result) [][2]string {
	c := r.Cost
	cpu := c.CPUUserSeconds + c.CPUSystemSeconds
	if cpu == 0 && c.MaxRSSBytes == 0 {
		return [][2]string{{"cost", "not measured"}}
	}
	rows := [][2]string{
		{"CPU", fmt.Sprintf("%s (user %s + system %s)", formatSeconds(cpu), formatSeconds(c.CPUUserSeconds), formatSeconds(c.CPUSystemSeconds))},
	}
	if secs := r.Meta.End.Sub(r.Meta.Start).Seconds(); secs > 0 {
		rows = append(rows, [2]string{"CPU load", pct(100*cpu/secs) + " of one core on average"})
	}
	if per := perOperation(c); per != "" {
		rows = append(rows, [2]string{"CPU per operation", per})
	}
	if c.DroppedEvents > 0 {
		rows = append(rows, [2]string{"dropped events", formatCount(c.DroppedEvents) + " (the collector fell behind: counts are lower bounds)"})
	}
	rows = append(rows, [2]string{"memory peak", FormatBytes(float64(c.MaxRSSBytes))})
	switch {
	case c.PeakConnected >= minDevicesPerDevice:
		rows = append(rows, [2]string{"memory per connected device", FormatBytes(c.RSSPerDeviceBytes) + " (" + formatCount(c.PeakConnected) + " at peak)"})
	case c.PeakConnected > 0:
		rows = append(rows, [2]string{"memory per connected device", "left out: " + formatCount(c.PeakConnected) + " devices are too few to tell from the process's base memory"})
	}
	return append(rows, brokerLines(r)...)
}
