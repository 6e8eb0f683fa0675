package result_test

import (
	"fmt"
	"time"

	"github.com/mqttstack/mqttstack/loadtest/result"
)

// The collector goroutine owns the Recorder: it maps each event of the
// fleet onto counters, histograms and errors, samples the tool's own usage,
// and finishes with what only the end of the run knows.
func ExampleRecorder() {
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	rec := result.NewRecorder(result.Meta{
		Scenario:     "launch",
		ScenarioHash: result.ScenarioHash([]byte("name: launch\n")),
		Devices:      result.Devices{Prefix: "dev-", From: 0, To: 2, Count: 2},
		Start:        start,
	})
	rec.Stage("ramp", "ramp", start)
	rec.Usage(start, 50*time.Millisecond, 30<<20)

	// fleet.KindConnectAttempt, then KindConnected with its phase timings.
	at := start.Add(100 * time.Millisecond)
	rec.Add(result.ConnectAttempts, at, 1)
	rec.Add(result.Connects, at, 1)
	rec.Add(result.Active, at, +1)
	rec.Observe(result.TCP, at, 800*time.Microsecond)
	rec.Observe(result.TLS, at, 4*time.Millisecond)
	rec.Observe(result.CONNACK, at, 2*time.Millisecond)
	// fleet.KindConnectFailed.
	rec.Add(result.ConnectAttempts, at, 1)
	rec.Add(result.ConnectFailures, at, 1)
	rec.Error("tls: bad certificate", at)

	rec.Stage("steady-1", "steady", start.Add(time.Second))
	// fleet.KindPublished (PUBACK latency) and KindReceived (end to end).
	rec.Add(result.Published, start.Add(1500*time.Millisecond), 1)
	rec.Observe(result.PUBACK, start.Add(1500*time.Millisecond), 3*time.Millisecond)
	rec.Add(result.Received, start.Add(1505*time.Millisecond), 1)
	rec.Observe(result.E2E, start.Add(1505*time.Millisecond), 5*time.Millisecond)
	rec.Usage(start.Add(2*time.Second), 70*time.Millisecond, 31<<20)

	live := rec.Snapshot() // for the progress bars
	fmt.Println("live:", live.Phase, live.Active, "connected")

	res := rec.Finish(start.Add(2*time.Second), result.Final{
		Delivery:  result.Delivery{Expected: 1, Received: 1},
		CPUUser:   60 * time.Millisecond,
		CPUSystem: 10 * time.Millisecond,
	})
	v, ok, _ := result.Measure(res, "connect_success")
	fmt.Println("connect_success:", v, ok)
	e2e, _ := res.Total.Summary(result.E2E)
	fmt.Println("e2e p99:", result.FormatMicros(float64(e2e.P99)))
	fmt.Println("errors:", res.Errors[0].Cause, res.Errors[0].Count)
	// Output:
	// live: steady-1 1 connected
	// connect_success: 50 true
	// e2e p99: 5ms
	// errors: tls: bad certificate 1
}
