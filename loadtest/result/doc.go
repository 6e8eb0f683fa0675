// Package result turns the events of a load run into a Result: HDR
// histograms per phase and per metric, counters, a per-second time series,
// errors grouped by cause, delivery accounting and the cost of the tool
// itself. A Result is versioned JSON that carries its histograms in
// HdrHistogram's compressed encoding, so results of shards merge exactly
// (Merge), thresholds are evaluated against it (Evaluate) and reporters
// render it (WriteConsole, WriteHTML).
//
// The design follows vegeta's metrics: recording is O(1) per event and
// owned by one goroutine (the Recorder is not safe for concurrent use);
// percentiles are computed once, when the run finishes. Reporters are
// functions of a Result and an io.Writer, and never touch the process.
package result
