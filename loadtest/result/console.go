package result

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteConsole writes the summary a person reads at the end of a run: what
// ran, a latency table per phase, rates, delivery, errors by cause,
// thresholds with ✓/✗ and the measured value, and the tool's own cost.
// outcomes are the evaluated thresholds; nil means r.Thresholds.
func WriteConsole(w io.Writer, r *Result, outcomes []ThresholdOutcome) error {
	if outcomes == nil {
		outcomes = r.Thresholds
	}
	f := &fmtErr{w: w}
	writeHeader(f, r)
	for i := range r.Phases {
		writePhase(f, &r.Phases[i], false, len(r.Phases) == 1)
	}
	if len(r.Phases) != 1 {
		writePhase(f, &r.Total, true, true)
	}
	writeRates(f, r)
	writeDelivery(f, r)
	writeErrors(f, r)
	writeCompat(f, r)
	writeProfiles(f, r)
	writeThresholds(f, outcomes)
	writeCost(f, r)
	writeBroker(f, r)
	return f.err
}

func writeHeader(f *fmtErr, r *Result) {
	m := r.Meta
	name := m.Scenario
	if name == "" {
		name = "(unnamed)"
	}
	f.printf("Scenario %s", name)
	if m.ScenarioHash != "" {
		f.printf(" (%s)", shortHash(m.ScenarioHash))
	}
	if m.Target != "" {
		f.printf(" against %s", m.Target)
	}
	if m.Protocol != "" {
		f.printf(", MQTT %s", m.Protocol)
	}
	f.printf("\n")
	f.printf("  %s → %s (%s)", m.Start.UTC().Format("2006-01-02 15:04:05"), m.End.UTC().Format("15:04:05 MST"), formatSeconds(m.End.Sub(m.Start).Seconds()))
	if d := describeDevices(m.Devices); d != "" {
		f.printf(", %s", d)
	}
	f.printf("\n")
	if len(m.Merged) > 0 {
		f.printf("  merged %s\n", describeShards(m.Merged))
	} else if m.Shard.Count > 1 {
		f.printf("  shard %d of %d\n", m.Shard.Index+1, m.Shard.Count)
	}
	var by []string
	for _, s := range []string{m.Host, "mqttstack " + m.ToolVersion, m.GoVersion} {
		if s != "" && s != "mqttstack " {
			by = append(by, s)
		}
	}
	if len(by) > 0 {
		f.printf("  ran on %s\n", strings.Join(by, ", "))
	}
	if m.Interrupted {
		reason := m.InterruptReason
		if reason == "" {
			reason = "stopped early"
		}
		f.printf("  INTERRUPTED: %s. The numbers cover only what ran.\n", reason)
	}
	if n := r.Cost.DroppedEvents; n > 0 {
		f.printf("  WARNING: %s events were dropped because the collector fell behind: counts are lower bounds; add shards.\n", formatCount(n))
	}
}

func shortHash(h string) string {
	algo, hex, ok := strings.Cut(h, ":")
	if !ok {
		algo, hex = "", h
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	if algo == "" {
		return hex
	}
	return algo + ":" + hex
}

func describeDevices(d Devices) string {
	switch {
	case d.Count == 0:
		return ""
	case d.Prefix != "" && d.To > d.From:
		s := formatCount(int64(d.Count)) + " devices " + fmt.Sprintf("%s%0*d … %s%0*d", d.Prefix, d.Width, d.From, d.Prefix, d.Width, d.To-1)
		if d.To-d.From != d.Count {
			s += " (not all of the range)"
		}
		return s
	}
	return formatCount(int64(d.Count)) + " devices"
}

// describeShards says which shards a merge covered and which are missing.
func describeShards(src []Source) string {
	n := src[0].Shard.Count
	s := strconv.Itoa(len(src)) + " results"
	if n <= 1 {
		return s
	}
	have := map[int]bool{}
	for _, x := range src {
		have[x.Shard.Index] = true
	}
	s = strconv.Itoa(len(have)) + " of " + strconv.Itoa(n) + " shards"
	var missing []string
	count := 0
	for i := range n {
		if !have[i] {
			if count++; count <= 10 {
				missing = append(missing, strconv.Itoa(i+1))
			}
		}
	}
	if count > 10 {
		missing = append(missing, "… "+strconv.Itoa(count-10)+" more")
	}
	if count > 0 {
		s += " (MISSING shard " + strings.Join(missing, ", ") + ": totals cover only the shards given)"
	}
	return s
}

// writePhase prints one phase (total: all phases); last adds the notes that
// belong once under the last table.
func writePhase(f *fmtErr, p *Phase, total, last bool) {
	title := "Phase " + p.Name
	if total {
		title = "All phases"
	}
	f.printf("\n%s  %s", title, formatSeconds(p.Seconds))
	if !p.Start.IsZero() {
		f.printf(", %s → %s", p.Start.UTC().Format("15:04:05"), p.End.UTC().Format("15:04:05"))
	}
	f.printf("\n")
	c := p.Counts
	var facts []string
	if c.ConnectAttempts > 0 {
		// The rate divides by this phase's length: over all phases it is
		// not the ramp's pace (that is "connect rate (ramp)" under Rates).
		over := " over this phase"
		if total {
			over = " averaged over all phases"
		}
		facts = append(facts, "connects "+formatCount(c.Connects)+"/"+formatCount(c.ConnectAttempts)+" ("+ratio(c.Connects, c.ConnectAttempts)+") at "+rate(c.Connects, p.Seconds)+over)
	}
	if c.Published+c.PublishFailures > 0 {
		s := "published " + formatCount(c.Published) + " at " + rate(c.Published, p.Seconds)
		if c.PublishFailures > 0 {
			s += ", " + formatCount(c.PublishFailures) + " failed"
		}
		facts = append(facts, s)
	}
	if c.Received > 0 {
		facts = append(facts, "received "+formatCount(c.Received))
	}
	if c.Reconnects > 0 {
		facts = append(facts, "reconnects "+formatCount(c.Reconnects))
	}
	if c.CommandsSent+c.CommandsReceived > 0 {
		facts = append(facts, "commands "+formatCount(c.CommandsReceived)+"/"+formatCount(c.CommandsSent)+" delivered")
	}
	if c.Errors > 0 {
		facts = append(facts, "errors "+formatCount(c.Errors))
	}
	facts = append(facts, "peak connected "+formatCount(p.PeakActive))
	f.printf("  %s\n", strings.Join(facts, " · "))
	if len(p.Latency) == 0 {
		f.printf("  no latency observed\n")
		return
	}
	f.printf("  %-14s %9s %9s %9s %9s %9s %9s\n", "latency", "count", "p50", "p90", "p99", "p99.9", "max")
	for _, s := range p.Latency {
		m, _ := ParseMetric(s.Metric)
		f.printf("  %-14s %9s %9s %9s %9s %9s %9s", m.Label(), formatCount(s.Count),
			FormatMicros(float64(s.P50)), FormatMicros(float64(s.P90)), FormatMicros(float64(s.P99)),
			FormatMicros(float64(s.P999)), FormatMicros(float64(s.Max)))
		if s.Clamped > 0 {
			f.printf("  (%s outside 1µs–10m)", formatCount(s.Clamped))
		}
		f.printf("\n")
	}
	if _, ok := p.Summary(CONNACK); ok && last {
		f.printf("  %s\n", connackNote)
	}
}

// connackNote explains why CONNACK can be shorter than TLS.
const connackNote = "TCP, TLS and CONNACK are consecutive phases of one connect: CONNACK is timed from the CONNECT write, after the TLS handshake, so it can be shorter than TLS."

func writeRates(f *fmtErr, r *Result) {
	f.printf("\nRates\n")
	for _, x := range []struct{ label, metric string }{
		{"connect rate (ramp)", "connect_rate"},
		{"publish rate (steady)", "publish_rate"},
		{"connect success", "connect_success"},
		{"publish success", "publish_success"},
	} {
		v, ok, why := Measure(r, x.metric)
		unit := "/s"
		if strings.HasSuffix(x.metric, "success") {
			unit = "%"
		}
		val := "– (" + why + ")"
		if ok {
			val = FormatValue(v, unit)
		}
		f.printf("  %-22s %s\n", x.label, val)
	}
}

func writeDelivery(f *fmtErr, r *Result) {
	d := r.Delivery
	f.printf("\nDelivery (observer)\n")
	if d.Expected == 0 && d.Received == 0 {
		f.printf("  no telemetry was tracked\n")
		return
	}
	f.printf("  expected %s · received %s · lost %s (%s) · duplicates %s · reordered %s\n",
		formatCount(d.Expected), formatCount(d.Received), formatCount(d.Lost), ratio(d.Lost, d.Expected),
		formatCount(d.Duplicates), formatCount(d.Reorders))
	if d.Observers > 1 {
		f.printf("  %d observers, each subscribed to its own slice of the devices\n", d.Observers)
	}
	if d.Unverified > 0 {
		f.printf("  OBSERVER OVERLOAD: %s messages unverified (neither received nor counted lost): %s\n",
			formatCount(d.Unverified), strings.Join(d.Overloaded, ", "))
	}
}

func writeErrors(f *fmtErr, r *Result) {
	f.printf("\nErrors by cause\n")
	if len(r.Errors) == 0 {
		f.printf("  none\n")
		return
	}
	for _, e := range r.Errors {
		f.printf("  %9s  %s  (%s → %s)\n", formatCount(e.Count), e.Cause,
			e.FirstSeen.UTC().Format("15:04:05"), e.LastSeen.UTC().Format("15:04:05"))
	}
}

func writeThresholds(f *fmtErr, outcomes []ThresholdOutcome) {
	f.printf("\nThresholds\n")
	if len(outcomes) == 0 {
		f.printf("  none set\n")
		return
	}
	failed := 0
	width := 0
	for _, o := range outcomes {
		width = max(width, len([]rune(thresholdText(o))))
	}
	for _, o := range outcomes {
		mark, measured := "✓", ""
		if !o.Passed {
			mark = "✗"
			failed++
		}
		if o.HasData {
			measured = "measured " + FormatValue(o.Measured, o.Unit)
		} else {
			measured = o.Detail
		}
		f.printf("  %s %-*s  %s", mark, width, thresholdText(o), measured)
		if o.Line > 0 {
			f.printf("  (line %d)", o.Line)
		}
		f.printf("\n")
	}
	if failed == 0 {
		f.printf("  all %d passed\n", len(outcomes))
	} else {
		f.printf("  %d of %d FAILED\n", failed, len(outcomes))
	}
}

// thresholdText writes the threshold as the scenario did when it can.
func thresholdText(o ThresholdOutcome) string {
	if o.Raw != "" {
		return o.Metric + " " + o.Raw
	}
	return o.Metric + " " + o.Op + " " + FormatValue(o.Value, o.Unit)
}

// perOperation says what the tool spends per connect and per publish, and
// on what basis.
func perOperation(c Cost) string {
	var per []string
	connect, publish := " per connect attempt (ramp)", " per publish (steady, soak, burst)"
	if c.Basis != "phases" {
		connect, publish = " per connect attempt", " per publish"
	}
	if c.CPUPerConnectMillis > 0 {
		per = append(per, FormatMicros(c.CPUPerConnectMillis*1000)+" CPU"+connect)
	}
	if c.CPUPerPublishMicros > 0 {
		per = append(per, FormatMicros(c.CPUPerPublishMicros)+" CPU"+publish)
	}
	s := strings.Join(per, " · ")
	if s != "" && c.Basis == "whole run" {
		s += " (whole run's CPU: upper bounds)"
	}
	return s
}

func writeCost(f *fmtErr, r *Result) {
	c := r.Cost
	f.printf("\nTool cost (the load generator itself)\n")
	cpu := c.CPUUserSeconds + c.CPUSystemSeconds
	if cpu == 0 && c.MaxRSSBytes == 0 {
		f.printf("  not measured\n")
		return
	}
	f.printf("  CPU %s (user %s + system %s)", formatSeconds(cpu), formatSeconds(c.CPUUserSeconds), formatSeconds(c.CPUSystemSeconds))
	if secs := r.Meta.End.Sub(r.Meta.Start).Seconds(); secs > 0 {
		f.printf(", %s of one core", pct(100*cpu/secs))
	}
	switch {
	case c.Procs > 0 && c.CPUs > 0:
		f.printf("; ran on %d of %d cores", c.Procs, c.CPUs)
	case c.Procs > 0:
		f.printf("; ran on %d cores in all", c.Procs)
	}
	f.printf("\n")
	if per := perOperation(c); per != "" {
		f.printf("  %s\n", per)
	}
	f.printf("  memory peak %s", FormatBytes(float64(c.MaxRSSBytes)))
	switch {
	case c.PeakConnected >= minDevicesPerDevice:
		f.printf(", %s per connected device (%s at peak)", FormatBytes(c.RSSPerDeviceBytes), formatCount(c.PeakConnected))
	case c.PeakConnected > 0:
		f.printf(" (no per-device figure: %s devices are too few to tell from the process's base memory)", formatCount(c.PeakConnected))
	}
	f.printf("\n")
}
