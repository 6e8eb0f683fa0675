package result

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Merge combines the results of the shards of one run into one Result, as if
// a single Recorder had seen every event: histograms are merged bucket by
// bucket from their encoded form (percentiles are exact, not averaged),
// counters, delivery and errors are summed, the series are aligned by
// wall-clock second and phases are matched by name (start = earliest, end =
// latest, spans united).
//
// Merge refuses results of different scenarios (ScenarioHash), two results
// of the same shard, and shards whose devices overlap: merging them would
// count devices twice. Errors name the files the results were read from.
//
// Peak connected devices of a phase is the sum of the shards' peaks: exact
// when shards peak together (they run the same schedule), an upper bound
// otherwise. Thresholds are not carried over: evaluate the merged result.
func Merge(rs ...*Result) (*Result, error) {
	if len(rs) == 0 {
		return nil, errors.New("merge: no results given")
	}
	if err := checkMergeable(rs); err != nil {
		return nil, err
	}
	out := &Result{Schema: Schema}
	out.Meta = mergeMeta(rs)

	// Phases, in the order of their earliest start.
	type acc struct {
		ph    Phase
		spans []Span
		lat   latencies
	}
	var order []*acc
	byName := map[string]*acc{}
	total := &acc{ph: Phase{Name: "all"}}
	add := func(a *acc, p *Phase, where string) error {
		a.spans = append(a.spans, p.Spans...)
		a.ph.Counts.plus(p.Counts)
		a.ph.PeakActive += p.PeakActive
		a.ph.CPUSeconds += p.CPUSeconds
		return a.lat.add(p.Latency, where)
	}
	for _, r := range rs {
		for i := range r.Phases {
			p := &r.Phases[i]
			a := byName[p.Name]
			if a == nil {
				a = &acc{ph: Phase{Name: p.Name, Kind: p.Kind}}
				byName[p.Name] = a
				order = append(order, a)
			}
			if err := add(a, p, fmt.Sprintf("%s: phase %q", r.name(), p.Name)); err != nil {
				return nil, err
			}
		}
		if err := add(total, &r.Total, r.name()+": total"); err != nil {
			return nil, err
		}
	}
	finish := func(a *acc) Phase {
		p := a.ph
		p.setSpans(unionSpans(a.spans))
		p.Latency = a.lat.summaries()
		return p
	}
	for _, a := range order {
		out.Phases = append(out.Phases, finish(a))
	}
	sort.SliceStable(out.Phases, func(i, j int) bool { return out.Phases[i].Start.Before(out.Phases[j].Start) })
	out.Total = finish(total)

	series, err := mergeSeries(rs)
	if err != nil {
		return nil, err
	}
	out.Series = series
	out.Errors = mergeErrors(rs)
	if out.Profiles, err = mergeProfiles(rs); err != nil {
		return nil, err
	}
	out.Compat = mergeCompat(rs)
	for _, r := range rs {
		out.Delivery.Expected += r.Delivery.Expected
		out.Delivery.Received += r.Delivery.Received
		out.Delivery.Lost += r.Delivery.Lost
		out.Delivery.Duplicates += r.Delivery.Duplicates
		out.Delivery.Reorders += r.Delivery.Reorders
		out.Delivery.Observers += r.Delivery.Observers
		out.Delivery.Unverified += r.Delivery.Unverified
		out.Delivery.Overloaded = append(out.Delivery.Overloaded, r.Delivery.Overloaded...)
		out.Cost.CPUUserSeconds += r.Cost.CPUUserSeconds
		out.Cost.CPUSystemSeconds += r.Cost.CPUSystemSeconds
		out.Cost.MaxRSSBytes += r.Cost.MaxRSSBytes
		out.Cost.Procs += r.Cost.Procs // CPUs stays 0: shards may run on different machines
		out.Cost.DroppedEvents += r.Cost.DroppedEvents
	}
	out.Broker = mergeBrokers(rs)
	out.deriveCost()
	return out, nil
}

// latencies adds up the latency summaries of several results metric by
// metric: histograms merge bucket by bucket (mergeInto), clamped counts
// add. Merge keeps one per phase and one for the total, mergeProfiles one
// per profile.
type latencies struct {
	hists [numMetrics]*hdrhistogram.Snapshot
	clamp [numMetrics]int64
}

// add merges ls in; where says whose they are in an error
// (`shard-1.json: phase "ramp"`).
func (l *latencies) add(ls []Summary, where string) error {
	for i := range ls {
		s := &ls[i]
		m, ok := ParseMetric(s.Metric)
		if !ok {
			return fmt.Errorf("%s: unknown latency metric %q", where, s.Metric)
		}
		h, err := s.histogram()
		if err != nil {
			return fmt.Errorf("%s %s: histogram does not decode: %v", where, s.Metric, err)
		}
		if err := mergeInto(&l.hists[m], h); err != nil {
			return fmt.Errorf("%s %s: %v", where, s.Metric, err)
		}
		l.clamp[m] += s.Clamped
	}
	return nil
}

// summaries summarizes every merged metric that holds a sample, in metric
// order; nil when none does.
func (l *latencies) summaries() []Summary {
	var out []Summary
	for m, snap := range l.hists {
		if snap == nil {
			continue
		}
		if h := hdrhistogram.Import(snap); h.TotalCount() > 0 {
			s := summarize(Metric(m), h)
			s.Clamped = l.clamp[m]
			out = append(out, s)
		}
	}
	return out
}

// mergeInto adds the counts of h to *dst (allocated on first use). Every
// histogram of this package has the same range and precision (ReadJSON
// checks), so adding the bucket arrays is exact and far cheaper than
// re-recording each bucket.
func mergeInto(dst **hdrhistogram.Snapshot, h *hdrhistogram.Histogram) error {
	src := h.Export()
	if *dst == nil {
		*dst = src
		return nil
	}
	cur := *dst
	if len(cur.Counts) != len(src.Counts) || cur.SignificantFigures != src.SignificantFigures ||
		cur.LowestTrackableValue != src.LowestTrackableValue || cur.HighestTrackableValue != src.HighestTrackableValue {
		return fmt.Errorf("histogram range %d–%dµs/%d digits differs from %d–%dµs/%d digits (written by another version?)",
			src.LowestTrackableValue, src.HighestTrackableValue, src.SignificantFigures,
			cur.LowestTrackableValue, cur.HighestTrackableValue, cur.SignificantFigures)
	}
	for i, c := range src.Counts {
		cur.Counts[i] += c
	}
	return nil
}

// name says where a result came from, for error messages.
func (r *Result) name() string {
	if r.source != "" {
		return r.source
	}
	return fmt.Sprintf("shard %d/%d", r.Meta.Shard.Index+1, max(r.Meta.Shard.Count, 1))
}

// sources lists the shards a result stands for: itself, or what it merged.
func (r *Result) sources() []Source {
	if len(r.Meta.Merged) > 0 {
		return r.Meta.Merged
	}
	return []Source{{File: r.source, Shard: r.Meta.Shard, Devs: r.Meta.Devices, Host: r.Meta.Host}}
}

func checkMergeable(rs []*Result) error {
	first := rs[0]
	for _, r := range rs[1:] {
		if r.Meta.ScenarioHash != first.Meta.ScenarioHash {
			return fmt.Errorf("merge: %s ran scenario %q (hash %s) but %s ran %q (hash %s): merge only the shards of one run of one scenario",
				first.name(), first.Meta.Scenario, first.Meta.ScenarioHash, r.name(), r.Meta.Scenario, r.Meta.ScenarioHash)
		}
	}
	type seen struct {
		r   *Result
		src Source
	}
	var all []seen
	for _, r := range rs {
		for _, s := range r.sources() {
			all = append(all, seen{r, s})
		}
	}
	for i := range all {
		for j := range i {
			a, b := all[j], all[i]
			if a.src.Shard.Count > 1 && a.src.Shard == b.src.Shard {
				return fmt.Errorf("merge: %s and %s are both shard %d/%d: give each shard's result once",
					a.r.name(), b.r.name(), a.src.Shard.Index+1, a.src.Shard.Count)
			}
			if a.src.Shard.Count != b.src.Shard.Count {
				return fmt.Errorf("merge: %s is one of %d shards but %s one of %d: these are not shards of the same run",
					a.r.name(), a.src.Shard.Count, b.r.name(), b.src.Shard.Count)
			}
			if why := overlap(a.src.Devs, b.src.Devs); why != "" {
				return fmt.Errorf("merge: %s and %s drove the same devices (%s): each shard must own a disjoint slice of devices (run them with --shard i/n)",
					a.r.name(), b.r.name(), why)
			}
		}
	}
	return nil
}

// overlap says how two device sets overlap, or "" when they are disjoint.
func overlap(a, b Devices) string {
	if a.ListHash != "" && a.ListHash == b.ListHash {
		return "identical device lists"
	}
	if a.ListHash != "" || b.ListHash != "" || a.Prefix != b.Prefix {
		return ""
	}
	if a.From < b.To && b.From < a.To {
		lo, hi := max(a.From, b.From), min(a.To, b.To)
		return fmt.Sprintf("%s%0*d … %s%0*d", a.Prefix, a.Width, lo, a.Prefix, a.Width, hi-1)
	}
	return ""
}

func mergeMeta(rs []*Result) Meta {
	m := rs[0].Meta
	m.Merged = nil
	m.Shard = Shard{Index: 0, Count: 1}
	var targets, tools, hosts, gos, reasons []string
	devs := Devices{Prefix: rs[0].Meta.Devices.Prefix, From: rs[0].Meta.Devices.From, To: rs[0].Meta.Devices.To, Width: rs[0].Meta.Devices.Width}
	for _, r := range rs {
		m.Merged = append(m.Merged, r.sources()...)
		if r.Meta.Start.Before(m.Start) {
			m.Start = r.Meta.Start
		}
		if r.Meta.End.After(m.End) {
			m.End = r.Meta.End
		}
		targets = appendNew(targets, r.Meta.Target)
		tools = appendNew(tools, r.Meta.ToolVersion)
		hosts = appendNew(hosts, r.Meta.Host)
		gos = appendNew(gos, r.Meta.GoVersion)
		if r.Meta.Interrupted {
			m.Interrupted = true
			reasons = appendNew(reasons, r.name()+": "+r.Meta.InterruptReason)
		}
		d := r.Meta.Devices
		devs.Count += d.Count
		if d.Prefix != devs.Prefix || d.ListHash != "" {
			devs.Prefix = ""
		}
		devs.From, devs.To = min(devs.From, d.From), max(devs.To, d.To)
	}
	if devs.Prefix == "" {
		devs.From, devs.To = 0, 0
	}
	m.Devices = devs
	m.Target = strings.Join(targets, ", ")
	m.ToolVersion = strings.Join(tools, ", ")
	m.Host = strings.Join(hosts, ", ")
	m.GoVersion = strings.Join(gos, ", ")
	m.InterruptReason = strings.Join(reasons, "; ")
	return m
}

func appendNew(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// unionSpans merges overlapping spans: shards run their phases side by side,
// so the merged phase lasts as long as the wall-clock time they cover.
func unionSpans(spans []Span) []Span {
	if len(spans) == 0 {
		return nil
	}
	s := slices.Clone(spans)
	sort.Slice(s, func(i, j int) bool { return s[i].Start.Before(s[j].Start) })
	out := []Span{s[0]}
	for _, sp := range s[1:] {
		last := &out[len(out)-1]
		if !sp.Start.After(last.End) {
			if sp.End.After(last.End) {
				last.End = sp.End
			}
			continue
		}
		out = append(out, sp)
	}
	return out
}

// mergeSeries aligns the series by unix second. Counts add up; the connected
// level of a shard carries forward after its last second, as it would in a
// single Recorder, and is zero before its first.
func mergeSeries(rs []*Result) ([]Second, error) {
	lo, hi := int64(0), int64(0)
	first := true
	for _, r := range rs {
		if len(r.Series) == 0 {
			continue
		}
		a, b := r.Series[0].T, r.Series[len(r.Series)-1].T
		if first || a < lo {
			lo = a
		}
		if first || b > hi {
			hi = b
		}
		first = false
	}
	if first {
		return nil, nil
	}
	if hi-lo >= maxSeriesSpan {
		return nil, fmt.Errorf("merge: the results span %s, more than a week: they are not shards of one run",
			time.Duration(hi-lo)*time.Second)
	}
	out := make([]Second, hi-lo+1)
	for i := range out {
		out[i].T = lo + int64(i)
	}
	for _, r := range rs {
		if len(r.Series) == 0 {
			continue
		}
		for _, s := range r.Series {
			o := &out[s.T-lo]
			o.Counts.plus(s.Counts)
			o.Active += s.Active
			o.CPUSeconds += s.CPUSeconds
			o.RSSBytes += s.RSSBytes // shards are separate processes
		}
		last := r.Series[len(r.Series)-1]
		for t := last.T + 1; t <= hi; t++ {
			out[t-lo].Active += last.Active
		}
	}
	return out, nil
}

func mergeErrors(rs []*Result) []ErrorGroup {
	by := map[string]*ErrorGroup{}
	perSec := map[string]map[int64]int64{}
	var order []string
	for _, r := range rs {
		for _, e := range r.Errors {
			g := by[e.Cause]
			if g == nil {
				g = &ErrorGroup{Cause: e.Cause, FirstSeen: e.FirstSeen, LastSeen: e.LastSeen}
				by[e.Cause] = g
				perSec[e.Cause] = map[int64]int64{}
				order = append(order, e.Cause)
			}
			g.Count += e.Count
			g.FirstSeen = minTime(g.FirstSeen, e.FirstSeen)
			if e.LastSeen.After(g.LastSeen) {
				g.LastSeen = e.LastSeen
			}
			for _, p := range e.PerSecond {
				perSec[e.Cause][p.T] += p.N
			}
		}
	}
	out := make([]ErrorGroup, 0, len(order))
	for _, c := range order {
		g := *by[c]
		for t, n := range perSec[c] {
			g.PerSecond = append(g.PerSecond, Point{T: t, N: n})
		}
		sort.Slice(g.PerSecond, func(i, j int) bool { return g.PerSecond[i].T < g.PerSecond[j].T })
		out = append(out, g)
	}
	sortErrors(out)
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
