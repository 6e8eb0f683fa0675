package result

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Schema is the version tag of the Result JSON. ReadJSON refuses any other.
const Schema = "mqttstack.result/v1"

// Histogram range: microsecond resolution from 1µs to 10 minutes with three
// significant digits. Every histogram of every shard uses the same range, so
// merging them bucket by bucket is exact.
const (
	histLowest  = 1
	histHighest = int64(10 * time.Minute / time.Microsecond)
	histDigits  = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}

// Result is the summary of one run (or of several shards merged). It is what
// the reporters render and what thresholds are evaluated against.
type Result struct {
	Schema string `json:"schema"`
	Meta   Meta   `json:"meta"`
	// Phases in the order the run entered them.
	Phases []Phase `json:"phases"`
	// Total covers every phase ("all").
	Total Phase `json:"total"`
	// Series has one point per wall-clock second from the first to the last
	// second of the run, without gaps.
	Series []Second `json:"series"`
	// Errors grouped by cause, most frequent first.
	Errors   []ErrorGroup `json:"errors"`
	Delivery Delivery     `json:"delivery"`
	// Broker is the broker's own cost (nil in results of older versions).
	Broker *Broker `json:"broker,omitempty"`
	Cost   Cost    `json:"cost"`
	// Thresholds holds the outcomes when the run evaluated thresholds.
	Thresholds []ThresholdOutcome `json:"thresholds,omitempty"`
	// Profiles breaks the run down by device TLS profile (fleet.profiles).
	Profiles []ProfilePart `json:"profiles,omitempty"`
	// Compat is the device compatibility matrix measured before the load
	// of a run with fleet.profiles (set by the caller of Finish).
	Compat []CompatRow `json:"compat,omitempty"`

	source string // the file ReadJSON read, for messages
}

// Meta says what ran, where and when. ScenarioHash lets Merge refuse to mix
// results of different scenarios; Shard and Devices let it refuse shards that
// overlap.
type Meta struct {
	Scenario     string  `json:"scenario"`
	ScenarioHash string  `json:"scenario_hash"`
	Shard        Shard   `json:"shard"`
	Devices      Devices `json:"devices"`
	Target       string  `json:"target"`
	// Protocol is the MQTT version the devices spoke ("3.1.1", "5").
	Protocol    string    `json:"protocol,omitempty"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	ToolVersion string    `json:"tool_version"`
	Host        string    `json:"host"`
	GoVersion   string    `json:"go_version"`
	Interrupted bool      `json:"interrupted"`
	// InterruptReason says why the run stopped early ("interrupted (Ctrl-C)").
	InterruptReason string `json:"interrupt_reason,omitempty"`
	// Merged lists the shards a merged result was built from.
	Merged []Source `json:"merged,omitempty"`
}

// Shard is shard Index (0-based) of Count. A run without sharding is 0 of 1.
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// Devices names the devices a run (or shard) drove: either a numbered range
// Prefix+From … Prefix+(To-1), or an explicit list identified by its hash.
type Devices struct {
	Prefix string `json:"prefix,omitempty"`
	// From is the first device number, To one past the last.
	From int `json:"from"`
	To   int `json:"to"`
	// ListHash identifies an explicit id list (hex SHA-256 of the ids joined
	// by newlines) when devices are not a numbered range.
	ListHash string `json:"list_hash,omitempty"`
	Count    int    `json:"count"`
	// Width is the zero-padded width of the device numbers in the ids
	// (dev-00001: 5), so reports name the devices as they are named.
	Width int `json:"width,omitempty"`
}

// Source identifies one input of a merge.
type Source struct {
	File  string  `json:"file,omitempty"`
	Shard Shard   `json:"shard"`
	Devs  Devices `json:"devices"`
	Host  string  `json:"host,omitempty"`
}

// Phase is one stage of the run (ramp, steady, …) or, for Result.Total, all
// of them.
type Phase struct {
	Name string `json:"name"`
	// Kind is the scenario stage kind ("ramp", "steady", …), which rates
	// use; empty for the total and for phases named without one.
	Kind  string    `json:"kind,omitempty"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Spans are the wall-clock intervals spent in the phase; a phase entered
	// twice has two. Rates divide by their total length (Seconds).
	Spans []Span `json:"spans,omitempty"`
	// Seconds is the total length of Spans.
	Seconds    float64 `json:"seconds"`
	Counts     Counts  `json:"counts"`
	PeakActive int64   `json:"peak_active"`
	// CPUSeconds is the tool's CPU spent in the phase, from usage samples.
	CPUSeconds float64 `json:"cpu_seconds,omitempty"`
	// Latency holds one summary per metric that has observations, in
	// Metrics() order.
	Latency []Summary `json:"latency,omitempty"`
}

// Span is one interval of wall-clock time.
type Span struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Summary is one latency histogram: the percentiles a person reads, and the
// histogram itself in HdrHistogram's compressed encoding (base64) so that
// shards merge exactly. All durations are microseconds. Percentiles and max
// are HdrHistogram's: the upper edge of the value's bucket, at most 0.1%
// above the value observed, so a threshold is never passed by rounding.
type Summary struct {
	Metric string  `json:"metric"`
	Count  int64   `json:"count"`
	Min    int64   `json:"min_us"`
	P50    int64   `json:"p50_us"`
	P90    int64   `json:"p90_us"`
	P99    int64   `json:"p99_us"`
	P999   int64   `json:"p999_us"`
	Max    int64   `json:"max_us"`
	Mean   float64 `json:"mean_us"`
	// Clamped counts observations outside 1µs–10min, recorded at the edge.
	Clamped   int64  `json:"clamped,omitempty"`
	Histogram string `json:"histogram"`

	h *hdrhistogram.Histogram // decoded form, cached
}

// Second is one point of the time series: what happened during the
// wall-clock second T (unix seconds), and how many devices were connected at
// its end (Active).
type Second struct {
	T int64 `json:"t"`
	Counts
	Active int64 `json:"active"`
	// CPUSeconds and RSSBytes are the tool's own CPU spent in the second and
	// its largest resident memory sample in it (Recorder.Usage).
	CPUSeconds float64 `json:"cpu_seconds,omitempty"`
	RSSBytes   int64   `json:"rss_bytes,omitempty"`
}

// ErrorGroup is every error of one cause.
type ErrorGroup struct {
	Cause     string    `json:"cause"`
	Count     int64     `json:"count"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// PerSecond holds the non-zero per-second counts, in time order.
	PerSecond []Point `json:"per_second"`
}

// Point is a count in one unix second.
type Point struct {
	T int64 `json:"t"`
	N int64 `json:"n"`
}

// Delivery is the observer's accounting of telemetry: how many messages it
// expected (from the devices' sequence numbers), how many distinct ones it
// received, and what went wrong.
type Delivery struct {
	Expected   int64 `json:"expected"`
	Received   int64 `json:"received_unique"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
	Reorders   int64 `json:"reorders"`
	// Observers is how many observer connections split the devices.
	Observers int `json:"observers,omitempty"`
	// Unverified counts messages the devices sent that did not arrive at
	// an overloaded observer (its backlog reached the broker's per-client
	// queue, so the broker may have dropped them for the observer): they
	// are neither counted as received nor as lost.
	Unverified int64 `json:"unverified,omitempty"`
	// Overloaded names those observers, with their peak backlog.
	Overloaded []string `json:"overloaded_observers,omitempty"`
}

// Cost is what the load generator itself spent, so a slow generator is not
// mistaken for a slow broker. Per-device and per-operation figures are
// derived from the raw numbers and recomputed on merge.
type Cost struct {
	CPUUserSeconds   float64 `json:"cpu_user_seconds"`
	CPUSystemSeconds float64 `json:"cpu_system_seconds"`
	// MaxRSSBytes is the peak resident memory (summed over shards: each
	// shard is its own process).
	MaxRSSBytes int64 `json:"max_rss_bytes"`
	// Procs is how many cores the tool ran on (GOMAXPROCS; summed over
	// shards), of the CPUs of its machine (0 when merged: shards may run
	// on different machines).
	Procs int `json:"procs,omitempty"`
	CPUs  int `json:"cpus,omitempty"`
	// PeakConnected is the most devices connected at once.
	PeakConnected int64 `json:"peak_connected"`
	// RSSPerDeviceBytes is MaxRSSBytes / PeakConnected.
	RSSPerDeviceBytes float64 `json:"rss_per_device_bytes"`
	// CPUPerConnectMillis is CPU (user+sys) per connect attempt and
	// CPUPerPublishMicros per completed publish. With usage samples
	// (Recorder.Usage) they divide the CPU spent in ramp phases by their
	// connect attempts and the CPU of steady and soak phases by their
	// publishes (Basis "phases"); without, the whole run's CPU by all
	// attempts or publishes (Basis "whole run"), an upper bound.
	CPUPerConnectMillis float64 `json:"cpu_per_connect_ms"`
	CPUPerPublishMicros float64 `json:"cpu_per_publish_us"`
	Basis               string  `json:"basis,omitempty"`
	// DroppedEvents counts events the collector could not keep up with and
	// lost: when non-zero every count above is a lower bound.
	DroppedEvents int64 `json:"dropped_events,omitempty"`
}

// Final is what the engine knows only at the end of a run and hands to
// Recorder.Finish.
type Final struct {
	// Delivery as tallied by the observer(s) of this run.
	Delivery Delivery
	// CPU and memory of the tool's own process (getrusage).
	CPUUser, CPUSystem time.Duration
	MaxRSSBytes        int64
	// Procs is the Go processors (GOMAXPROCS) the tool ran with, of the
	// machine's CPUs.
	Procs, CPUs int
	// DroppedEvents is how many events never reached the Recorder (a full
	// event buffer).
	DroppedEvents   int64
	Interrupted     bool
	InterruptReason string
}

// Live is a cheap snapshot of a running Recorder for progress bars.
type Live struct {
	Phase      string
	Total      Counts
	Active     int64
	PeakActive int64
	// Observations per metric so far (all phases).
	Observations [numMetrics]int64
	// Second holds the counts of the latest second seen (unix second
	// SecondT), still filling: progress bars show rates from the one before
	// or smooth over a few snapshots.
	Second  Counts
	SecondT int64
}

// Summary returns the summary of metric m, and false when the phase has no
// observations of it.
func (p *Phase) Summary(m Metric) (*Summary, bool) {
	name := m.String()
	for i := range p.Latency {
		if p.Latency[i].Metric == name {
			return &p.Latency[i], true
		}
	}
	return nil, false
}

// Phase returns the phase called name, if the run had one.
func (r *Result) Phase(name string) (*Phase, bool) {
	for i := range r.Phases {
		if r.Phases[i].Name == name {
			return &r.Phases[i], true
		}
	}
	return nil, false
}
