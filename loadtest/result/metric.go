package result

import "fmt"

// Metric is a latency measured per event and kept in an HDR histogram.
type Metric int

// The latency metrics, in the order reports show them.
const (
	// TCP is the time to establish the TCP connection.
	TCP Metric = iota
	// TLS is the TLS handshake, after TCP.
	TLS
	// CONNACK is from sending CONNECT to receiving CONNACK.
	CONNACK
	// PUBACK is from sending PUBLISH (QoS 1/2) to the broker's acknowledgement.
	PUBACK
	// E2E is from a device's send timestamp to the observer's receipt.
	E2E
	numMetrics
)

var metricNames = [numMetrics]string{"tcp", "tls", "connack", "puback", "e2e"}

// Metrics lists every metric in report order.
func Metrics() []Metric { return []Metric{TCP, TLS, CONNACK, PUBACK, E2E} }

// String returns the metric's name as thresholds and JSON spell it ("tcp").
func (m Metric) String() string {
	if m < 0 || m >= numMetrics {
		return fmt.Sprintf("metric(%d)", int(m))
	}
	return metricNames[m]
}

// Label is the name a person reads in a report ("CONNACK").
func (m Metric) Label() string {
	switch m {
	case TCP:
		return "TCP connect"
	case TLS:
		return "TLS handshake"
	case CONNACK:
		return "CONNACK"
	case PUBACK:
		return "PUBACK"
	case E2E:
		return "end-to-end"
	}
	return m.String()
}

// ParseMetric maps a name ("tcp") back to its Metric.
func ParseMetric(s string) (Metric, bool) {
	for i, n := range metricNames {
		if n == s {
			return Metric(i), true
		}
	}
	return 0, false
}

// Counter is an event count. Counters are kept per phase, in total and per
// wall-clock second.
type Counter int

// The counters. Active is special: it is a level (+1 when a device's session
// is up, -1 when it goes down), not a sum of events.
const (
	// ConnectAttempts counts every attempt to connect (first connects and reconnects).
	ConnectAttempts Counter = iota
	// Connects counts attempts that ended in an accepted CONNACK.
	Connects
	// ConnectFailures counts attempts that failed (TCP, TLS, CONNACK refused, timeout).
	ConnectFailures
	// Published counts publishes that completed: acknowledged for QoS 1/2,
	// written for QoS 0.
	Published
	// PublishFailures counts publishes that failed or timed out.
	PublishFailures
	// Received counts telemetry messages the observer received for the
	// first time (fleet.KindReceived); Duplicates counts the repeats.
	Received
	// Duplicates counts messages the observer saw more than once.
	Duplicates
	// Reorders counts messages that arrived with a lower sequence number than
	// one already seen from the same device.
	Reorders
	// Reconnects counts sessions re-established after a drop or a storm.
	Reconnects
	// Disconnects counts sessions that went down (intended or not).
	Disconnects
	// CommandsSent counts commands the backend published.
	CommandsSent
	// CommandsReceived counts commands devices received.
	CommandsReceived
	// Active moves the number of connected devices: Add(Active, at, +1) when
	// a session is up, -1 when it goes down.
	Active
	numCounters
)

var counterNames = [numCounters]string{
	"connect_attempts", "connects", "connect_failures", "published", "publish_failures",
	"received", "duplicates", "reorders", "reconnects", "disconnects",
	"commands_sent", "commands_received", "active",
}

// String returns the counter's JSON name ("connect_attempts").
func (c Counter) String() string {
	if c < 0 || c >= numCounters {
		return fmt.Sprintf("counter(%d)", int(c))
	}
	return counterNames[c]
}

// Counts holds the additive counters of a phase, of a whole run, or of one
// second. Errors counts Recorder.Error calls.
type Counts struct {
	ConnectAttempts  int64 `json:"connect_attempts,omitempty"`
	Connects         int64 `json:"connects,omitempty"`
	ConnectFailures  int64 `json:"connect_failures,omitempty"`
	Published        int64 `json:"published,omitempty"`
	PublishFailures  int64 `json:"publish_failures,omitempty"`
	Received         int64 `json:"received,omitempty"`
	Duplicates       int64 `json:"duplicates,omitempty"`
	Reorders         int64 `json:"reorders,omitempty"`
	Reconnects       int64 `json:"reconnects,omitempty"`
	Disconnects      int64 `json:"disconnects,omitempty"`
	CommandsSent     int64 `json:"commands_sent,omitempty"`
	CommandsReceived int64 `json:"commands_received,omitempty"`
	Errors           int64 `json:"errors,omitempty"`
}

// add adds n to counter c. Active is not in Counts (it is a level) and is
// handled by the Recorder.
func (c *Counts) add(k Counter, n int64) {
	switch k {
	case ConnectAttempts:
		c.ConnectAttempts += n
	case Connects:
		c.Connects += n
	case ConnectFailures:
		c.ConnectFailures += n
	case Published:
		c.Published += n
	case PublishFailures:
		c.PublishFailures += n
	case Received:
		c.Received += n
	case Duplicates:
		c.Duplicates += n
	case Reorders:
		c.Reorders += n
	case Reconnects:
		c.Reconnects += n
	case Disconnects:
		c.Disconnects += n
	case CommandsSent:
		c.CommandsSent += n
	case CommandsReceived:
		c.CommandsReceived += n
	}
}

// plus adds every counter of o to c.
func (c *Counts) plus(o Counts) {
	c.ConnectAttempts += o.ConnectAttempts
	c.Connects += o.Connects
	c.ConnectFailures += o.ConnectFailures
	c.Published += o.Published
	c.PublishFailures += o.PublishFailures
	c.Received += o.Received
	c.Duplicates += o.Duplicates
	c.Reorders += o.Reorders
	c.Reconnects += o.Reconnects
	c.Disconnects += o.Disconnects
	c.CommandsSent += o.CommandsSent
	c.CommandsReceived += o.CommandsReceived
	c.Errors += o.Errors
}
