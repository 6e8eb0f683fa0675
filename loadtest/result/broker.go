package result

import (
	"fmt"
	"strings"
	"time"
)

// Broker is what the broker process spent during the run, read from the
// host it runs on (loadtest takes a host.Host; a local stack reads /proc,
// a deployed one over SSH). CPU is charged to the phase current when a
// sample is taken, as the tool's own (Recorder.Usage): ramp CPU divided by
// the ramp's connect attempts is the broker's CPU per connect, steady,
// soak and burst CPU divided by their publishes its CPU per publish.
// Per-operation figures are derived, and recomputed on merge, where one
// broker (same host and PID) seen by several shards counts once.
type Broker struct {
	// Host and PID identify the broker process ("local", 4242).
	Host string `json:"host,omitempty"`
	PID  int    `json:"pid,omitempty"`
	// Note says why nothing was measured ("no host access").
	Note string `json:"note,omitempty"`

	CPUSeconds        float64 `json:"cpu_seconds"`
	ConnectCPUSeconds float64 `json:"connect_cpu_seconds"`
	PublishCPUSeconds float64 `json:"publish_cpu_seconds"`
	// RSSStartBytes is its resident memory at the first sample, RSSPeakBytes
	// the largest sample.
	RSSStartBytes int64 `json:"rss_start_bytes"`
	RSSPeakBytes  int64 `json:"rss_peak_bytes"`

	// Derived (deriveCost): operations of the whole result, and per-op cost.
	Connects            int64   `json:"connects"`
	Publishes           int64   `json:"publishes"`
	Sessions            int64   `json:"sessions"`
	CPUPerConnectMillis float64 `json:"cpu_per_connect_ms,omitempty"`
	CPUPerPublishMicros float64 `json:"cpu_per_publish_us,omitempty"`
	RSSPerSessionBytes  float64 `json:"rss_per_session_bytes,omitempty"`
}

// brokerRec is the Recorder's side of Broker.
type brokerRec struct {
	b       Broker
	last    time.Duration
	sampled bool
}

// NoBroker records why the broker's cost is not measured ("no host
// access"); the report says so instead of leaving it out silently.
func (r *Recorder) NoBroker(note string) {
	r.broker = &brokerRec{b: Broker{Note: note}}
}

// BrokerUsage records a sample of the broker process (host, pid): its
// cumulative CPU time and resident memory at time at. The CPU since the
// previous sample is charged to the phase current at at: take a sample
// just before every phase change and about once a second.
func (r *Recorder) BrokerUsage(at time.Time, host string, pid int, cpu time.Duration, rssBytes int64) {
	br := r.broker
	if br == nil || br.b.PID != pid || br.b.Host != host {
		// First sample, or the broker restarted: a new baseline.
		prev := br
		br = &brokerRec{b: Broker{Host: host, PID: pid, RSSStartBytes: rssBytes}, last: cpu, sampled: true}
		if prev != nil && prev.sampled {
			// Keep what the old process spent; its PID is gone.
			br.b.CPUSeconds, br.b.ConnectCPUSeconds, br.b.PublishCPUSeconds = prev.b.CPUSeconds, prev.b.ConnectCPUSeconds, prev.b.PublishCPUSeconds
			br.b.RSSStartBytes = prev.b.RSSStartBytes
			br.b.RSSPeakBytes = prev.b.RSSPeakBytes
		}
		r.broker = br
	}
	d := max(cpu-br.last, 0).Seconds()
	br.last = max(cpu, br.last)
	br.b.CPUSeconds += d
	p := r.phase(at)
	kind := p.kind
	if kind == "" {
		kind = KindOfName(p.name)
	}
	switch {
	case kind == "ramp":
		br.b.ConnectCPUSeconds += d
	case publishKind(kind):
		br.b.PublishCPUSeconds += d
	}
	br.b.RSSPeakBytes = max(br.b.RSSPeakBytes, rssBytes)
}

// publishKind reports whether a phase of this kind is a publishing one for
// per-publish cost.
func publishKind(kind string) bool { return kind == "steady" || kind == "soak" || kind == "burst" }

// deriveBroker fills the broker's per-operation figures from the result's
// phases (which, merged, hold every shard's operations).
func (r *Result) deriveBroker() {
	b := r.Broker
	if b == nil || b.PID == 0 {
		return
	}
	b.Connects, b.Publishes = 0, 0
	for i := range r.Phases {
		p := &r.Phases[i]
		switch k := p.kind(); {
		case k == "ramp":
			b.Connects += p.Counts.ConnectAttempts
		case publishKind(k):
			b.Publishes += p.Counts.Published
		}
	}
	b.Sessions = r.Total.PeakActive
	b.CPUPerConnectMillis, b.CPUPerPublishMicros, b.RSSPerSessionBytes = 0, 0, 0
	if b.Connects > 0 {
		b.CPUPerConnectMillis = b.ConnectCPUSeconds * 1e3 / float64(b.Connects)
	}
	if b.Publishes > 0 {
		b.CPUPerPublishMicros = b.PublishCPUSeconds * 1e6 / float64(b.Publishes)
	}
	if b.Sessions > 0 && b.RSSPeakBytes > b.RSSStartBytes {
		b.RSSPerSessionBytes = float64(b.RSSPeakBytes-b.RSSStartBytes) / float64(b.Sessions)
	}
}

// mergeBrokers combines the shards' broker figures: one broker (same host
// and PID) seen by several shards counts once (each shard watched the same
// process over about the same time, so the largest figures stand), several
// brokers add up.
func mergeBrokers(rs []*Result) *Broker {
	var out *Broker
	seen := map[[2]any]*Broker{}
	for _, r := range rs {
		b := r.Broker
		if b == nil {
			continue
		}
		if out == nil {
			out = &Broker{Host: b.Host, PID: b.PID, Note: b.Note}
		}
		if b.PID == 0 {
			continue
		}
		k := [2]any{b.Host, b.PID}
		if s, ok := seen[k]; ok {
			s.CPUSeconds = max(s.CPUSeconds, b.CPUSeconds)
			s.ConnectCPUSeconds = max(s.ConnectCPUSeconds, b.ConnectCPUSeconds)
			s.PublishCPUSeconds = max(s.PublishCPUSeconds, b.PublishCPUSeconds)
			s.RSSStartBytes = min(s.RSSStartBytes, b.RSSStartBytes)
			s.RSSPeakBytes = max(s.RSSPeakBytes, b.RSSPeakBytes)
			continue
		}
		c := *b
		seen[k] = &c
	}
	if out == nil || len(seen) == 0 {
		return out
	}
	*out = Broker{}
	for _, s := range seen {
		if out.PID == 0 {
			out.Host, out.PID = s.Host, s.PID
		} else if out.PID != s.PID || out.Host != s.Host {
			out.Host, out.PID = "several", -1
		}
		out.CPUSeconds += s.CPUSeconds
		out.ConnectCPUSeconds += s.ConnectCPUSeconds
		out.PublishCPUSeconds += s.PublishCPUSeconds
		out.RSSStartBytes += s.RSSStartBytes
		out.RSSPeakBytes += s.RSSPeakBytes
	}
	return out
}

// brokerLines describes the broker's cost for the reports; nil when the
// result has none (older versions).
func brokerLines(r *Result) [][2]string {
	b := r.Broker
	switch {
	case b == nil:
		return nil
	case b.PID == 0:
		note := b.Note
		if note == "" {
			note = "not measured"
		}
		return [][2]string{{"broker cost", note}}
	}
	who := "mosquitto"
	if b.PID > 0 {
		who += fmt.Sprintf(" pid %d on %s", b.PID, b.Host)
	} else {
		who += " on several hosts"
	}
	rows := [][2]string{{"broker", who}}
	var per []string
	if b.CPUPerConnectMillis > 0 {
		per = append(per, FormatMicros(b.CPUPerConnectMillis*1000)+" CPU per connect attempt (ramp)")
	}
	if b.CPUPerPublishMicros > 0 {
		per = append(per, FormatMicros(b.CPUPerPublishMicros)+" CPU per publish (steady, soak, burst)")
	}
	if len(per) > 0 {
		rows = append(rows, [2]string{"broker CPU per operation", strings.Join(per, " · ")})
	}
	rows = append(rows, [2]string{"broker CPU", formatSeconds(b.CPUSeconds) + " over the run"})
	mem := FormatBytes(float64(b.RSSPeakBytes)) + " peak (" + FormatBytes(float64(b.RSSStartBytes)) + " at start)"
	switch {
	case b.Sessions >= minDevicesPerDevice && b.RSSPerSessionBytes > 0:
		mem += ", " + FormatBytes(b.RSSPerSessionBytes) + " per session (" + formatCount(b.Sessions) + " at peak)"
	case b.Sessions > 0:
		mem += fmt.Sprintf(", no per-session figure: %s sessions are too few to tell from the broker's base memory", formatCount(b.Sessions))
	}
	rows = append(rows, [2]string{"broker memory", mem})
	return rows
}

// minDevicesPerDevice is the fleet size below which per-device (and
// per-session) memory is left out: a process's base memory divided by 20
// devices says "1.4 MiB per device", which is noise.
const minDevicesPerDevice = 1000

func writeBroker(f *fmtErr, r *Result) {
	rows := brokerLines(r)
	if rows == nil {
		return
	}
	f.printf("\nBroker cost (the broker's process, read from its host)\n")
	for _, row := range rows {
		if row[0] == "broker cost" {
			f.printf("  %s\n", row[1])
			continue
		}
		f.printf("  %s: %s\n", strings.TrimPrefix(row[0], "broker "), row[1])
	}
}
