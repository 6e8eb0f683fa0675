package result

// ThresholdOutcome is one threshold of a scenario checked against a Result.
type ThresholdOutcome struct {
	// Metric, Op, Value and Unit restate the threshold ("connack_p99", "<",
	// 500, "ms"); Raw is how the scenario wrote it and Line where.
	Metric string  `json:"metric"`
	Op     string  `json:"op"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit,omitempty"`
	Raw    string  `json:"raw,omitempty"`
	Line   int     `json:"line,omitempty"`
	// Measured is the run's value in the threshold's unit; meaningful only
	// when HasData.
	Measured float64 `json:"measured"`
	// HasData is false when the run has nothing to measure (e2e_p99 with no
	// message received): such a threshold fails.
	HasData bool `json:"has_data"`
	Passed  bool `json:"passed"`
	// Detail explains a failure that is not a plain comparison ("no data:
	// no end-to-end latency was observed").
	Detail string `json:"detail,omitempty"`
}

// Passed reports whether every outcome passed. No thresholds pass.
func Passed(outcomes []ThresholdOutcome) bool {
	for _, o := range outcomes {
		if !o.Passed {
			return false
		}
	}
	return true
}
