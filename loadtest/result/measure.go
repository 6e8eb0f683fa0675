package result

import (
	"fmt"
	"strings"
)

// Measure returns the value of a threshold metric (a name of
// scenarios.KnownMetrics, e.g. "connack_p99", "loss_rate") in r, in the
// metric's threshold unit: milliseconds for durations, percent for ratios,
// per second for rates. ok is false when the run has nothing to measure it
// by; why then says what was missing.
//
// Durations are read from the histograms of all phases (Result.Total).
// connect_rate is successful connects per second over the ramp phases;
// publish_rate is completed publishes per second over the steady and soak
// phases.
func Measure(r *Result, metric string) (v float64, ok bool, why string) {
	if name, pct, found := strings.Cut(metric, "_"); found {
		if m, isMetric := ParseMetric(name); isMetric {
			s, has := r.Total.Summary(m)
			if !has || s.Count == 0 {
				return 0, false, fmt.Sprintf("no %s latency was observed", m.Label())
			}
			var us int64
			switch pct {
			case "p50":
				us = s.P50
			case "p90":
				us = s.P90
			case "p99":
				us = s.P99
			case "p999":
				us = s.P999
			case "max":
				us = s.Max
			default:
				return 0, false, fmt.Sprintf("unknown percentile %q (known: p50 p90 p99 p999 max)", pct)
			}
			return float64(us) / 1000, true, ""
		}
	}
	c := r.Total.Counts
	d := r.Delivery
	noMessages := "the observer tracked no messages"
	switch metric {
	case "connect_success":
		if c.ConnectAttempts == 0 {
			return 0, false, "no connect was attempted"
		}
		return 100 * float64(c.Connects) / float64(c.ConnectAttempts), true, ""
	case "publish_success":
		n := c.Published + c.PublishFailures
		if n == 0 {
			return 0, false, "nothing was published"
		}
		return 100 * float64(c.Published) / float64(n), true, ""
	case "loss_rate":
		if d.Expected == 0 {
			return 0, false, noMessages
		}
		if d.Unverified > 0 {
			return 0, false, unverified(d)
		}
		return 100 * float64(d.Lost) / float64(d.Expected), true, ""
	case "loss":
		if d.Expected == 0 {
			return 0, false, noMessages
		}
		if d.Unverified > 0 {
			return 0, false, unverified(d)
		}
		return float64(d.Lost), true, ""
	case "duplicates":
		if d.Expected == 0 && d.Received == 0 {
			return 0, false, noMessages
		}
		return float64(d.Duplicates), true, ""
	case "reorders":
		if d.Expected == 0 && d.Received == 0 {
			return 0, false, noMessages
		}
		return float64(d.Reorders), true, ""
	case "errors":
		return float64(c.Errors), true, ""
	case "reconnects":
		return float64(c.Reconnects), true, ""
	case "connect_failures":
		if c.ConnectAttempts == 0 {
			return 0, false, "no connect was attempted"
		}
		return float64(c.ConnectFailures), true, ""
	case "connect_rate":
		n, secs := r.kindTotals("ramp", func(c Counts) int64 { return c.Connects })
		if secs <= 0 {
			return 0, false, "the run has no ramp phase"
		}
		return float64(n) / secs, true, ""
	case "publish_rate":
		n, secs := r.kindTotals("steady", func(c Counts) int64 { return c.Published })
		n2, secs2 := r.kindTotals("soak", func(c Counts) int64 { return c.Published })
		if secs+secs2 <= 0 {
			return 0, false, "the run has no steady or soak phase"
		}
		return float64(n+n2) / (secs + secs2), true, ""
	}
	return 0, false, fmt.Sprintf("unknown metric %q", metric)
}

// kindTotals sums a counter and the seconds over the phases of one kind.
func (r *Result) kindTotals(kind string, count func(Counts) int64) (n int64, secs float64) {
	for i := range r.Phases {
		if r.Phases[i].kind() == kind {
			n += count(r.Phases[i].Counts)
			secs += r.Phases[i].Seconds
		}
	}
	return n, secs
}

// kind returns the phase's stage kind: Kind when the engine set it, else
// derived from a default stage name ("steady-1" is a steady stage).
func (p *Phase) kind() string {
	if p.Kind != "" {
		return p.Kind
	}
	return KindOfName(p.Name)
}

// KindOfName derives a stage kind from a default stage name: a trailing
// "-<index>" is dropped ("reconnect-storm-3" → "reconnect-storm").
func KindOfName(name string) string {
	trimmed := strings.TrimRight(name, "0123456789")
	if trimmed != name && strings.HasSuffix(trimmed, "-") {
		return strings.TrimSuffix(trimmed, "-")
	}
	return name
}

// unverified says why loss cannot be measured: an observer was overloaded,
// so what it missed may have been dropped for it, not for the devices.
func unverified(d Delivery) string {
	return fmt.Sprintf("%s messages unverified (observer overload: %s); more observers or a slower stage", formatCount(d.Unverified), strings.Join(d.Overloaded, ", "))
}
