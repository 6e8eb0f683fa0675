package result

import (
	"runtime"
	"sort"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Recorder collects the events of one run. It is owned by one goroutine (the
// collector): it is not safe for concurrent use, which is what keeps every
// method O(1) and lock-free. Percentiles are computed once, in Finish.
type Recorder struct {
	meta   Meta
	phases []*phaseRec
	byName map[string]*phaseRec
	cur    *phaseRec
	total  phaseRec

	active int64 // devices connected now

	// series[i] is the second base+i. It grows at either end as events
	// arrive; events further than maxSeriesSpan from base still count in
	// the totals but not in the series (a bogus clock must not allocate
	// gigabytes).
	series []secRec
	base   int64

	errors   map[string]*errRec
	errOrder []*errRec
	lastErr  *errRec

	first, last time.Time // earliest and latest event time seen

	lastCPU time.Duration // cumulative CPU at the last usage sample
	sampled bool

	broker *brokerRec // BrokerUsage, NoBroker; nil: not asked

	profiles profileRecs // per device profile (profiles.go)
}

// maxSeriesSpan bounds the series to a week of seconds.
const maxSeriesSpan = 7 * 24 * 3600

// maxCauses bounds the distinct error causes; further causes are counted
// under otherCause, so an error text that embeds a device id cannot grow the
// result without bound.
const maxCauses = 100

const otherCause = "other causes (more than 100 distinct causes)"

// defaultPhase holds what is recorded before the first call to Phase.
const defaultPhase = "setup"

type phaseRec struct {
	name, kind string
	cpu        time.Duration
	spans      []Span
	hist       [numMetrics]*hdrhistogram.Histogram
	clamped    [numMetrics]int64
	counts     Counts
	peakActive int64
}

type secRec struct {
	counts      Counts
	activeDelta int64
	cpu         time.Duration
	rss         int64
}

type errRec struct {
	cause       string
	count       int64
	first, last time.Time
	perSec      map[int64]int64
}

// NewRecorder returns a Recorder for a run described by meta. meta.Start may
// be zero: the first phase or event then marks the start.
func NewRecorder(meta Meta) *Recorder {
	if meta.GoVersion == "" {
		meta.GoVersion = runtime.Version()
	}
	if meta.Shard.Count == 0 {
		meta.Shard.Count = 1
	}
	r := &Recorder{
		meta:   meta,
		byName: map[string]*phaseRec{},
		errors: map[string]*errRec{},
	}
	r.total.name = "all"
	if !meta.Start.IsZero() {
		r.seen(meta.Start)
	}
	return r
}

// Phase starts phase name at time at: later events belong to it. Entering a
// phase that was entered before resumes it (its histograms keep growing and
// it gets a second span). The stage kind is derived from the name
// ("steady-1" → "steady"); use Stage when a stage has a custom name.
func (r *Recorder) Phase(name string, at time.Time) {
	r.Stage(name, KindOfName(name), at)
}

// Stage is Phase for a scenario stage of the given kind ("ramp", "steady",
// "burst", "soak", "reconnect-storm"): connect_rate is measured over ramp
// phases and publish_rate over steady and soak phases.
func (r *Recorder) Stage(name, kind string, at time.Time) {
	r.seen(at)
	if r.cur != nil {
		r.cur.close(at)
	}
	p := r.byName[name]
	if p == nil {
		p = &phaseRec{name: name, kind: kind}
		r.byName[name] = p
		r.phases = append(r.phases, p)
	}
	p.spans = append(p.spans, Span{Start: at})
	if r.active > p.peakActive {
		p.peakActive = r.active
	}
	r.cur = p
}

func (p *phaseRec) close(at time.Time) {
	if n := len(p.spans); n > 0 && p.spans[n-1].End.IsZero() {
		p.spans[n-1].End = at
	}
}

// phase returns the current phase, opening the default one for events that
// arrive before the first Phase call.
func (r *Recorder) phase(at time.Time) *phaseRec {
	if r.cur == nil {
		r.Phase(defaultPhase, at)
	}
	return r.cur
}

// Observe records one latency of metric m. Durations below 1µs are recorded
// as 1µs and above 10 minutes as 10 minutes; Summary.Clamped counts them.
func (r *Recorder) Observe(m Metric, at time.Time, d time.Duration) {
	if m < 0 || m >= numMetrics {
		return
	}
	p := r.phase(at)
	r.seen(at)
	us, clamped := micros(d)
	record(p, m, us, clamped)
	record(&r.total, m, us, clamped)
}

// micros is d in whole microseconds inside the histograms' range, and
// whether it counts as clamped: above the range always, below it (1µs)
// only when d is negative. Observe and ProfileObserve record through it.
func micros(d time.Duration) (us int64, clamped bool) {
	us = int64(d / time.Microsecond)
	if us < histLowest {
		return histLowest, d < 0
	}
	if us > histHighest {
		return histHighest, true
	}
	return us, false
}

func record(p *phaseRec, m Metric, us int64, clamped bool) {
	h := p.hist[m]
	if h == nil {
		h = newHistogram()
		p.hist[m] = h
	}
	// us is inside the histogram's range, so RecordValue cannot fail.
	_ = h.RecordValue(us)
	if clamped {
		p.clamped[m]++
	}
}

// Add adds n to counter c at time at. For Active, n is the change in
// connected devices (+1 up, -1 down).
func (r *Recorder) Add(c Counter, at time.Time, n int64) {
	if c < 0 || c >= numCounters {
		return
	}
	p := r.phase(at)
	r.seen(at)
	s := r.slot(at)
	if c == Active {
		r.active += n
		if s != nil {
			s.activeDelta += n
		}
		if r.active > p.peakActive {
			p.peakActive = r.active
		}
		if r.active > r.total.peakActive {
			r.total.peakActive = r.active
		}
		return
	}
	p.counts.add(c, n)
	r.total.counts.add(c, n)
	if s != nil {
		s.counts.add(c, n)
	}
}

// Error counts one error of the given cause at time at. Causes should be
// short and free of ids ("tls: bad certificate", "connack: not authorized").
func (r *Recorder) Error(cause string, at time.Time) {
	p := r.phase(at)
	r.seen(at)
	p.counts.Errors++
	r.total.counts.Errors++
	if s := r.slot(at); s != nil {
		s.counts.Errors++
	}
	e := r.lastErr
	if e == nil || e.cause != cause {
		e = r.errors[cause]
		if e == nil {
			if len(r.errors) >= maxCauses {
				cause = otherCause
				e = r.errors[cause]
			}
			if e == nil {
				e = &errRec{cause: cause, first: at, last: at, perSec: map[int64]int64{}}
				r.errors[cause] = e
				r.errOrder = append(r.errOrder, e)
			}
		}
		r.lastErr = e
	}
	e.count++
	if at.Before(e.first) {
		e.first = at
	}
	if at.After(e.last) {
		e.last = at
	}
	e.perSec[at.Unix()]++
}

// Usage records a sample of the tool's own resource use: the process's
// cumulative CPU time (user + system) and its resident memory at time at.
// The CPU since the previous sample is charged to the current phase and to
// at's second, which gives CPU per connect over the ramp, CPU per publish
// over steady stages, and the generator's load over time. Sample about once
// a second and at every phase change.
func (r *Recorder) Usage(at time.Time, cpu time.Duration, rssBytes int64) {
	p := r.phase(at)
	r.seen(at)
	if !r.sampled {
		// The first sample only sets the baseline: its CPU was spent
		// before the run (start-up, PKI loading).
		r.sampled, r.lastCPU = true, cpu
	}
	d := max(cpu-r.lastCPU, 0)
	r.lastCPU = max(cpu, r.lastCPU)
	p.cpu += d
	r.total.cpu += d
	if s := r.slot(at); s != nil {
		s.cpu += d
		s.rss = max(s.rss, rssBytes)
	}
}

// Snapshot returns the running totals; it copies a few words.
func (r *Recorder) Snapshot() Live {
	l := Live{Total: r.total.counts, Active: r.active, PeakActive: r.total.peakActive}
	if n := len(r.series); n > 0 {
		l.Second, l.SecondT = r.series[n-1].counts, r.base+int64(n-1)
	}
	if r.cur != nil {
		l.Phase = r.cur.name
	}
	for m, h := range r.total.hist {
		if h != nil {
			l.Observations[m] = h.TotalCount()
		}
	}
	return l
}

// seen widens the run's known time range.
func (r *Recorder) seen(at time.Time) {
	if at.IsZero() {
		return
	}
	if r.first.IsZero() || at.Before(r.first) {
		r.first = at
	}
	if at.After(r.last) {
		r.last = at
	}
}

// slot returns the series bucket of at's second, growing the series as
// needed, or nil when at is too far from the series' base.
func (r *Recorder) slot(at time.Time) *secRec {
	if at.IsZero() {
		return nil // an event without a time counts, but is not plotted
	}
	sec := at.Unix()
	if r.series == nil {
		r.base = sec
		r.series = make([]secRec, 1, 1024)
		return &r.series[0]
	}
	i := sec - r.base
	if i < 0 {
		if -i > maxSeriesSpan || int64(len(r.series))-i > maxSeriesSpan {
			return nil
		}
		// Rare: an event older than every earlier one. Shift once.
		grown := make([]secRec, int64(len(r.series))-i, int64(cap(r.series))-i)
		copy(grown[-i:], r.series)
		r.series, r.base, i = grown, sec, 0
		return &r.series[i]
	}
	if i >= maxSeriesSpan {
		return nil
	}
	for int64(len(r.series)) <= i {
		r.series = append(r.series, secRec{})
	}
	return &r.series[i]
}

// Finish closes the run at end and computes the Result: percentiles,
// encoded histograms, the dense per-second series, errors by cause, delivery
// and cost. The Recorder must not be used afterwards.
func (r *Recorder) Finish(end time.Time, f Final) *Result {
	r.seen(end)
	if r.cur != nil {
		r.cur.close(end)
	}
	meta := r.meta
	if meta.Start.IsZero() {
		meta.Start = r.first
	}
	meta.End = end
	if end.IsZero() {
		meta.End = r.last
	}
	if f.Interrupted {
		meta.Interrupted = true
		meta.InterruptReason = f.InterruptReason
	}
	res := &Result{Schema: Schema, Meta: meta, Profiles: r.profiles.results()}
	for _, p := range r.phases {
		res.Phases = append(res.Phases, p.result())
	}
	r.total.spans = []Span{{Start: meta.Start, End: meta.End}}
	res.Total = r.total.result()

	// Cover the whole run, so plots share one time axis.
	r.slot(meta.Start)
	r.slot(meta.End)
	res.Series = make([]Second, len(r.series))
	level := int64(0)
	var rss int64
	for i, s := range r.series {
		level += s.activeDelta
		// Resident memory is a level, like Active: a second without a
		// usage sample (the teardown second, say) keeps the last one
		// rather than dropping to zero in the plots.
		if s.rss != 0 {
			rss = s.rss
		}
		res.Series[i] = Second{T: r.base + int64(i), Counts: s.counts, Active: level,
			CPUSeconds: s.cpu.Seconds(), RSSBytes: rss}
	}

	for _, e := range r.errOrder {
		g := ErrorGroup{Cause: e.cause, Count: e.count, FirstSeen: e.first, LastSeen: e.last}
		for t, n := range e.perSec {
			g.PerSecond = append(g.PerSecond, Point{T: t, N: n})
		}
		sort.Slice(g.PerSecond, func(i, j int) bool { return g.PerSecond[i].T < g.PerSecond[j].T })
		res.Errors = append(res.Errors, g)
	}
	sortErrors(res.Errors)

	res.Delivery = f.Delivery
	// The observer's final tally is authoritative; live counters fill in
	// when the engine reported duplicates and reorders only as events.
	res.Delivery.Duplicates = max(res.Delivery.Duplicates, res.Total.Counts.Duplicates)
	res.Delivery.Reorders = max(res.Delivery.Reorders, res.Total.Counts.Reorders)

	res.Cost = Cost{
		CPUUserSeconds:   f.CPUUser.Seconds(),
		CPUSystemSeconds: f.CPUSystem.Seconds(),
		MaxRSSBytes:      f.MaxRSSBytes,
		Procs:            f.Procs,
		CPUs:             f.CPUs,
		DroppedEvents:    f.DroppedEvents,
	}
	if r.broker != nil {
		b := r.broker.b
		res.Broker = &b
	}
	res.deriveCost()
	return res
}

// result turns a phase's histograms into summaries.
func (p *phaseRec) result() Phase {
	ph := Phase{Name: p.name, Kind: p.kind, Spans: p.spans, Counts: p.counts, PeakActive: p.peakActive, CPUSeconds: p.cpu.Seconds()}
	ph.setSpans(p.spans)
	for m, h := range p.hist {
		if h == nil || h.TotalCount() == 0 {
			continue
		}
		s := summarize(Metric(m), h)
		s.Clamped = p.clamped[m]
		ph.Latency = append(ph.Latency, s)
	}
	return ph
}

// setSpans sets Spans and the derived Start, End and Seconds.
func (p *Phase) setSpans(spans []Span) {
	p.Spans = spans
	p.Seconds = 0
	for i, s := range spans {
		if i == 0 || s.Start.Before(p.Start) {
			p.Start = s.Start
		}
		if i == 0 || s.End.After(p.End) {
			p.End = s.End
		}
		p.Seconds += s.End.Sub(s.Start).Seconds()
	}
}

// summarize computes the percentiles of h and encodes it.
func summarize(m Metric, h *hdrhistogram.Histogram) Summary {
	s := Summary{
		Metric: m.String(),
		Count:  h.TotalCount(),
		Min:    h.Min(),
		P50:    h.ValueAtQuantile(50),
		P90:    h.ValueAtQuantile(90),
		P99:    h.ValueAtQuantile(99),
		P999:   h.ValueAtQuantile(99.9),
		Max:    h.Max(),
		Mean:   h.Mean(),
		h:      h,
	}
	enc, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		// Encoding writes to memory buffers only; it cannot fail for a
		// histogram this package built.
		panic("result: encoding histogram: " + err.Error())
	}
	s.Histogram = string(enc)
	return s
}

func sortErrors(es []ErrorGroup) {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Count != es[j].Count {
			return es[i].Count > es[j].Count
		}
		return es[i].Cause < es[j].Cause
	})
}

// deriveCost fills the per-device and per-operation figures from the raw ones.
func (r *Result) deriveCost() {
	c := &r.Cost
	c.PeakConnected = r.Total.PeakActive
	c.RSSPerDeviceBytes, c.CPUPerConnectMillis, c.CPUPerPublishMicros, c.Basis = 0, 0, 0, ""
	if c.PeakConnected > 0 {
		c.RSSPerDeviceBytes = float64(c.MaxRSSBytes) / float64(c.PeakConnected)
	}
	cpu := c.CPUUserSeconds + c.CPUSystemSeconds
	connects, connectCPU := r.Total.Counts.ConnectAttempts, cpu
	publishes, publishCPU := r.Total.Counts.Published, cpu
	if r.Total.CPUSeconds > 0 {
		c.Basis = "phases"
		connects, connectCPU, publishes, publishCPU = 0, 0, 0, 0
		for i := range r.Phases {
			p := &r.Phases[i]
			switch p.kind() {
			case "ramp":
				connects += p.Counts.ConnectAttempts
				connectCPU += p.CPUSeconds
			case "steady", "soak", "burst":
				publishes += p.Counts.Published
				publishCPU += p.CPUSeconds
			}
		}
	} else if cpu > 0 {
		c.Basis = "whole run"
	}
	if connects > 0 && connectCPU > 0 {
		c.CPUPerConnectMillis = connectCPU * 1e3 / float64(connects)
	}
	if publishes > 0 && publishCPU > 0 {
		c.CPUPerPublishMicros = publishCPU * 1e6 / float64(publishes)
	}
	r.deriveBroker()
}
