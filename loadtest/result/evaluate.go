package result

import (
	"fmt"

	"github.com/mqttstack/mqttstack/scenarios"
)

// Evaluate checks every threshold against r, in the order given. A
// threshold on a metric the run has no data for (e2e_p99 when no message was
// received, loss when the observer tracked nothing) fails with "no data": a
// run that measured nothing must not pass.
func Evaluate(r *Result, ts []scenarios.Threshold) []ThresholdOutcome {
	out := make([]ThresholdOutcome, 0, len(ts))
	for _, t := range ts {
		o := ThresholdOutcome{Metric: t.Metric, Op: t.Op, Value: t.Value, Unit: t.Unit, Raw: t.Raw, Line: t.Line}
		v, ok, why := Measure(r, t.Metric)
		switch {
		case !ok:
			o.Detail = "no data: " + why
		default:
			o.Measured, o.HasData = v, true
			o.Passed = t.Holds(v)
			if !o.Passed {
				o.Detail = fmt.Sprintf("measured %s, want %s %s", FormatValue(v, t.Unit), t.Op, FormatValue(t.Value, t.Unit))
			}
		}
		out = append(out, o)
	}
	return out
}
