package scenarios

import (
	"fmt"
	"strconv"
	"strings"
)

// Threshold is one pass/fail criterion of a run, written in YAML as
// `metric: "<op> <value><unit>"` (for example `e2e_p99: "< 250ms"`).
// loadtest/result evaluates it; Holds is the comparison it uses.
type Threshold struct {
	Metric string // one of KnownMetrics
	Op     string // "<", "<=", ">", ">=", "=="
	// Value in Unit: durations are normalized to milliseconds ("< 1s" has
	// Value 1000), rates to per second ("10/m" has Value 1/6).
	Value float64
	Unit  string // "" (counts), "%" (ratios), "ms" (durations), "/s" (rates)
	Raw   string // the expression as written, trimmed
	Line  int    // line of the threshold in its file; 0 when built in Go
}

// MetricKind is what a metric measures, which fixes its unit.
type MetricKind int

// The kinds of metric.
const (
	MetricDuration MetricKind = iota + 1 // milliseconds, from a histogram
	MetricRatio                          // percent
	MetricCount                          // a plain number of events
	MetricRate                           // per second
)

// Unit is the normalized unit of thresholds on metrics of kind k.
func (k MetricKind) Unit() string {
	switch k {
	case MetricDuration:
		return "ms"
	case MetricRatio:
		return "%"
	case MetricRate:
		return "/s"
	}
	return ""
}

// String names the kind.
func (k MetricKind) String() string {
	switch k {
	case MetricDuration:
		return "duration"
	case MetricRatio:
		return "ratio"
	case MetricCount:
		return "count"
	case MetricRate:
		return "rate"
	}
	return "MetricKind(" + strconv.Itoa(int(k)) + ")"
}

// example is a threshold expression for a metric of kind k, for fixes.
func (k MetricKind) example() string {
	switch k {
	case MetricDuration:
		return `"< 500ms"`
	case MetricRatio:
		return `">= 99.9%"`
	case MetricRate:
		return `">= 500/s"`
	}
	return `"== 0"`
}

// DurationMetrics are the histograms a run keeps, each reported at the
// percentiles in Percentiles.
var (
	DurationMetrics = []string{"tcp", "tls", "connack", "puback", "e2e"}
	Percentiles     = []string{"p50", "p90", "p99", "p999", "max"}
)

// KnownMetrics lists every metric a threshold may name, in the order of
// docs/CONTRACTS.md: the durations (DurationMetrics x Percentiles, as
// "e2e_p99"), the ratios, the counts, the rates.
var KnownMetrics = buildKnownMetrics()

// metricKinds maps each of KnownMetrics to its kind.
var metricKinds = map[string]MetricKind{}

func buildKnownMetrics() []string {
	var names []string
	add := func(k MetricKind, ns ...string) {
		for _, n := range ns {
			names = append(names, n)
			metricKinds[n] = k
		}
	}
	for _, m := range DurationMetrics {
		for _, p := range Percentiles {
			add(MetricDuration, m+"_"+p)
		}
	}
	add(MetricRatio, "connect_success", "loss_rate", "publish_success")
	add(MetricCount, "loss", "duplicates", "reorders", "errors", "reconnects", "connect_failures")
	add(MetricRate, "connect_rate", "publish_rate")
	return names
}

// KindOf returns the kind of a known metric; ok is false for an unknown one.
func KindOf(metric string) (kind MetricKind, ok bool) {
	kind, ok = metricKinds[metric]
	return kind, ok
}

// Ops lists the comparison operators of a threshold.
var Ops = []string{"<", "<=", ">", ">=", "=="}

// Holds reports whether an observed value (in t.Unit) meets the threshold.
func (t Threshold) Holds(observed float64) bool {
	switch t.Op {
	case "<":
		return observed < t.Value
	case "<=":
		return observed <= t.Value
	case ">":
		return observed > t.Value
	case ">=":
		return observed >= t.Value
	case "==":
		return observed == t.Value
	}
	return false
}

// String writes the threshold as "metric op value unit", normalized
// ("e2e_p99 < 250ms").
func (t Threshold) String() string {
	return t.Metric + " " + t.Op + " " + strconv.FormatFloat(t.Value, 'g', -1, 64) + t.Unit
}

// durationUnits converts the accepted duration units to milliseconds.
var durationUnits = map[string]float64{
	"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1, "s": 1000, "m": 60_000,
}

// parseThreshold reads expr for metric. The returned error text completes
// "thresholds.<metric>: "; fix says what to write instead.
func parseThreshold(metric, expr string) (t Threshold, msg, fix string) {
	kind, ok := KindOf(metric)
	if !ok {
		return t, "unknown metric", metricFix(metric)
	}
	raw := strings.TrimSpace(expr)
	t = Threshold{Metric: metric, Raw: raw, Unit: kind.Unit()}
	rest := raw
	for _, op := range []string{"<=", ">=", "==", "<", ">"} {
		if r, ok := strings.CutPrefix(rest, op); ok {
			t.Op, rest = op, strings.TrimSpace(r)
			break
		}
	}
	if t.Op == "" {
		m := fmt.Sprintf("%q does not start with a comparison", raw)
		if strings.HasPrefix(raw, "=") || strings.HasPrefix(raw, "!=") {
			m = fmt.Sprintf("%q: use one of %s", raw, strings.Join(Ops, " "))
		}
		return t, m, "e.g. " + kind.example()
	}
	numEnd := scanNumber(rest)
	num, unit := rest[:numEnd], strings.TrimSpace(rest[numEnd:])
	v, err := parseFinite(num)
	if err != nil {
		if numEnd > 0 {
			return t, fmt.Sprintf("%q: %s is not a finite number", raw, num), "e.g. " + kind.example()
		}
		return t, fmt.Sprintf("%q has no number after %s", raw, t.Op), "e.g. " + kind.example()
	}
	switch kind {
	case MetricDuration:
		ms, ok := durationUnits[unit]
		if !ok {
			what := "has no unit"
			if unit != "" {
				what = "has unit " + strconv.Quote(unit)
			}
			return t, fmt.Sprintf("%q %s; %s is a duration", raw, what, metric), "use ms or s, e.g. " + kind.example()
		}
		v *= ms
	case MetricRatio:
		if unit != "%" {
			return t, fmt.Sprintf("%q: %s is a percentage", raw, metric), "end the value with %, e.g. " + kind.example()
		}
		if v > 100 {
			return t, fmt.Sprintf("%q: a percentage is at most 100%%", raw), "e.g. " + kind.example()
		}
	case MetricCount:
		if unit != "" {
			return t, fmt.Sprintf("%q: %s is a count and takes no unit", raw, metric), "e.g. " + kind.example()
		}
	case MetricRate:
		per, ok := rateUnits[strings.TrimPrefix(unit, "/")]
		if !strings.HasPrefix(unit, "/") || !ok {
			return t, fmt.Sprintf("%q: %s is a rate", raw, metric), "end the value with /s, e.g. " + kind.example()
		}
		v /= per
	}
	if v < 0 {
		return t, fmt.Sprintf("%q: %s is never negative", raw, metric), "e.g. " + kind.example()
	}
	if v == 0 && t.Op == "<" {
		return t, fmt.Sprintf("%q can never pass: %s is never negative", raw, metric), `e.g. "== 0"`
	}
	if kind == MetricRatio && v == 100 && t.Op == ">" {
		return t, fmt.Sprintf("%q can never pass: a percentage is at most 100%%", raw), `e.g. ">= 100%"`
	}
	t.Value = v
	return t, "", ""
}

// metricFix is the fix for an unknown metric: the likely typo fix when
// there is one, and the known metrics grouped by kind.
func metricFix(got string) string {
	var ratios, counts, rates []string
	for _, m := range KnownMetrics {
		switch metricKinds[m] {
		case MetricRatio:
			ratios = append(ratios, m)
		case MetricCount:
			counts = append(counts, m)
		case MetricRate:
			rates = append(rates, m)
		}
	}
	known := fmt.Sprintf("known metrics: durations {%s}_{%s}; percentages %s; counts %s; rates %s",
		strings.Join(DurationMetrics, ","), strings.Join(Percentiles, ","),
		strings.Join(ratios, ", "), strings.Join(counts, ", "), strings.Join(rates, ", "))
	if best := closest(got, KnownMetrics); best != "" {
		return "did you mean " + best + "? " + known
	}
	return known
}

// scanNumber returns the length of the decimal number at the start of s:
// digits with an optional sign, point and exponent. The exponent is taken
// only when digits follow, so in "5e" nothing after 5 is.
func scanNumber(s string) int {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && s[j] >= '0' && s[j] <= '9' {
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			i = j
		}
	}
	return i
}
