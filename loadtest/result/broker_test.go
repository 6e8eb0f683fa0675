package result

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

// brokerShard records devices [from, to) connecting in a ramp and
// publishing 5 messages each in steady, with one broker (pid) sampled at
// the phase changes: 2 s of its CPU over the ramp, 1 s over steady, 0.5 s
// in the storm; its memory grows from 8 to 48 MiB.
func brokerShard(t *testing.T, index, count, from, to, pid int) *Result {
	t.Helper()
	r := NewRecorder(syntheticMeta(index, count, from, to))
	n := int64(to - from)
	r.Phase("ramp", at(0))
	r.BrokerUsage(at(0), "local", pid, 10*time.Second, 8<<20)
	r.Add(ConnectAttempts, at(1), n)
	r.Add(Connects, at(1), n)
	r.Add(Active, at(1), n)
	r.BrokerUsage(at(10), "local", pid, 12*time.Second, 40<<20)
	r.Phase("steady", at(10))
	r.Add(Published, at(11), 5*n)
	r.BrokerUsage(at(20), "local", pid, 13*time.Second, 48<<20)
	r.Phase("reconnect-storm", at(20))
	r.BrokerUsage(at(25), "local", pid, 13500*time.Millisecond, 44<<20)
	return r.Finish(at(30), Final{})
}

// TestBrokerCost: the broker's CPU is charged to the phase it was spent in,
// per connect over the ramp and per publish over steady; a shard merge
// counts one broker (same host and pid) once, two brokers twice.
func TestBrokerCost(t *testing.T) {
	whole := brokerShard(t, 0, 1, 0, 2000, 42)
	b := whole.Broker
	if b == nil || b.CPUSeconds != 3.5 || b.ConnectCPUSeconds != 2 || b.PublishCPUSeconds != 1 {
		t.Fatalf("broker %+v: want 3.5 s total, 2 s ramp, 1 s steady", b)
	}
	if b.Connects != whole.Phases[0].Counts.ConnectAttempts || b.Publishes != whole.Phases[1].Counts.Published {
		t.Errorf("operations %d/%d, want the ramp's attempts and steady's publishes", b.Connects, b.Publishes)
	}
	if want := 2e3 / float64(b.Connects); math.Abs(b.CPUPerConnectMillis-want) > 1e-9 {
		t.Errorf("CPU per connect %v ms, want %v", b.CPUPerConnectMillis, want)
	}
	if want := float64(40<<20) / float64(b.Sessions); math.Abs(b.RSSPerSessionBytes-want) > 1e-6 {
		t.Errorf("RSS per session %v, want (48-8 MiB)/%d", b.RSSPerSessionBytes, b.Sessions)
	}

	tests := []struct {
		name   string
		pids   [2]int
		factor float64 // merged CPU / one shard's CPU
	}{
		{"one broker counted once", [2]int{42, 42}, 1},
		{"two brokers add up", [2]int{42, 43}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := brokerShard(t, 0, 2, 0, 1000, tt.pids[0])
			c := brokerShard(t, 1, 2, 1000, 2000, tt.pids[1])
			m, err := Merge(a, c)
			if err != nil {
				t.Fatal(err)
			}
			mb := m.Broker
			if mb.CPUSeconds != 3.5*tt.factor || mb.ConnectCPUSeconds != 2*tt.factor {
				t.Errorf("merged broker %+v: want %v× one shard's CPU", mb, tt.factor)
			}
			if mb.Connects != b.Connects || mb.Publishes != b.Publishes {
				t.Errorf("merged operations %d/%d, want the whole fleet's %d/%d", mb.Connects, mb.Publishes, b.Connects, b.Publishes)
			}
			if tt.factor == 1 && math.Abs(mb.CPUPerConnectMillis-b.CPUPerConnectMillis) > 1e-9 {
				t.Errorf("merged CPU per connect %v, want the unsharded %v", mb.CPUPerConnectMillis, b.CPUPerConnectMillis)
			}
		})
	}
}

// TestBrokerCostReport: the console says what the broker cost, or why it
// was not measured.
func TestBrokerCostReport(t *testing.T) {
	with := brokerShard(t, 0, 1, 0, 2000, 42)
	small := brokerShard(t, 0, 1, 0, 20, 42)
	r := NewRecorder(syntheticMeta(0, 1, 0, 400))
	feed(r, 0, 400)
	r.NoBroker("broker cost: no host access")
	without := r.Finish(at(50), Final{})
	for _, tt := range []struct {
		r    *Result
		want []string
	}{
		{with, []string{"Broker cost", "mosquitto pid 42 on local", "1ms CPU per connect attempt (ramp)", "100µs CPU per publish", "48 MiB peak (8 MiB at start), 20.5 KiB per session (2,000 at peak)"}},
		{small, []string{"no per-session figure: 20 sessions are too few"}},
		{without, []string{"broker cost: no host access"}},
	} {
		var buf bytes.Buffer
		if err := WriteConsole(&buf, tt.r, nil); err != nil {
			t.Fatal(err)
		}
		for _, w := range tt.want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("console lacks %q:\n%s", w, buf.String())
			}
		}
	}
}
