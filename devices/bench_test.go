package devices_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/devices"
	"github.com/mqttstack/mqttstack/internal/stacktest"
)

// BenchmarkCompatCPU measures the broker's CPU per full handshake for every
// board profile against the local stack (scripts/bench.sh,
// docs/BENCHMARKS.md): 500 sequential handshakes per profile, the
// broker's CPU read from /proc through host.Host before and after. A
// refused profile costs the broker its refusal. Reported as
// <profile>-µs/hs.
func BenchmarkCompatCPU(b *testing.B) {
	s := stacktest.Start(b)
	o := benchOptions(b, s)
	o.CostHandshakes = 500
	benchBrokerCPU(b, o)
}

// benchBrokerCPU runs o b.N times (within 15 minutes), logs each matrix
// and reports the broker's CPU per handshake of every profile it measured.
func benchBrokerCPU(b *testing.B, o devices.Options) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	for range b.N {
		m, err := devices.Run(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		var out bytes.Buffer
		devices.WriteConsole(&out, m)
		b.Logf("\n%s", out.String())
		for _, r := range m.Rows {
			if r.BrokerCPUus >= 0 {
				b.ReportMetric(r.BrokerCPUus, r.Profile+"-µs/hs")
			}
		}
	}
}

// BenchmarkLegacyCPU: the same on the legacy listener (RSA server
// certificate, docs/DEVICES.md), for the boards it admits and the ones
// that work on both: what an RSA server key costs the broker per board.
func BenchmarkLegacyCPU(b *testing.B) {
	s, addr := startLegacy(b)
	o := benchOptions(b, s)
	o.Addr = addr
	o.CostHandshakes = 500
	ps, err := devices.Select([]string{"esp8266-bearssl", "esp8266-bearssl-less-secure", "esp32-arduino-3", "pico-w-mbedtls-3.6", "a7670", "bg96"})
	if err != nil {
		b.Fatal(err)
	}
	o.Profiles = ps
	benchBrokerCPU(b, o)
}
