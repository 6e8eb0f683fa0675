package result

import (
	"math/rand/v2"
	"testing"
	"time"
)

// feed records a deterministic, realistic-looking run of the devices
// [from, to) into r: a ramp, a steady phase, a reconnect storm, with errors.
// Device i's events only depend on i, so recording shards separately and
// together sees the same events.
func feed(r *Recorder, from, to int) {
	rampEnd := at(20)
	r.Phase("ramp", at(0))
	for i := from; i < to; i++ {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		ct := at(float64(i) * 20 / 400) // 20 devices/s
		r.Add(ConnectAttempts, ct, 1)
		tcp := time.Duration(200+rng.IntN(800)) * time.Microsecond
		r.Observe(TCP, ct, tcp)
		if i%97 == 13 {
			r.Add(ConnectFailures, ct, 1)
			r.Error("tls: remote error: bad certificate", ct)
			continue
		}
		r.Observe(TLS, ct, time.Duration(2000+rng.ExpFloat64()*3000)*time.Microsecond)
		r.Observe(CONNACK, ct, time.Duration(500+rng.ExpFloat64()*(1500+float64(i)*20))*time.Microsecond)
		r.Add(Connects, ct, 1)
		r.Add(Active, ct, 1)
	}
	usage(r, from, to, 0, 19)
	r.Phase("steady", rampEnd)
	for sec := 20; sec < 40; sec += 5 {
		for i := from; i < to; i++ {
			if i%97 == 13 {
				continue
			}
			rng := rand.New(rand.NewPCG(uint64(i), uint64(sec)))
			pt := at(float64(sec) + float64(i%250)/50) // spread over the 5 s interval
			r.Add(Published, pt, 1)
			r.Observe(PUBACK, pt, time.Duration(1000+rng.ExpFloat64()*4000)*time.Microsecond)
			if i%211 == 5 && sec == 30 {
				r.Error("observer: message lost", pt)
				continue
			}
			r.Add(Received, pt, 1)
			r.Observe(E2E, pt, time.Duration(1500+rng.ExpFloat64()*8000)*time.Microsecond)
		}
	}
	usage(r, from, to, 20, 39)
	r.Phase("reconnect-storm", at(40))
	for i := from; i < to; i++ {
		if i%97 == 13 || i%5 != 0 {
			continue
		}
		rng := rand.New(rand.NewPCG(uint64(i), 99))
		dt := at(40 + float64(i%100)/10)
		r.Add(Disconnects, dt, 1)
		r.Add(Active, dt, -1)
		rt := dt.Add(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		r.Add(ConnectAttempts, rt, 1)
		r.Observe(TCP, rt, time.Duration(300+rng.IntN(2000))*time.Microsecond)
		r.Observe(TLS, rt, time.Duration(3000+rng.ExpFloat64()*9000)*time.Microsecond)
		r.Observe(CONNACK, rt, time.Duration(800+rng.ExpFloat64()*20000)*time.Microsecond)
		r.Add(Connects, rt, 1)
		r.Add(Reconnects, rt, 1)
		r.Add(Active, rt, 1)
		if i%3 == 0 {
			r.Error("connack: server unavailable", rt)
		}
	}
	usage(r, from, to, 40, 50)
}

// usage samples the tool's CPU and memory once a second as the engine
// does: a shard's cost is proportional to its devices, heavier while
// connecting.
func usage(r *Recorder, from, to, secFrom, secTo int) {
	n := int64(to - from)
	for sec := secFrom; sec <= secTo; sec++ {
		r.Usage(at(float64(sec)), usageCPU(sec, n), int64(30<<20)+n*int64(min(sec, 20))*3<<10)
	}
}

// usageCPU is a shard's cumulative CPU at second sec: start-up, then a cost
// per device and second, heavier while connecting.
func usageCPU(sec int, n int64) time.Duration {
	cpu := 5 * time.Millisecond // start-up, before the run: not charged to a phase
	for s := 1; s <= sec; s++ {
		switch {
		case s <= 20:
			cpu += 400 * time.Microsecond
		case s <= 40:
			cpu += 100 * time.Microsecond
		default:
			cpu += 250 * time.Microsecond
		}
	}
	return cpu * time.Duration(n)
}

// synthetic returns the result of shard index/count over devices [from, to).
func synthetic(t testing.TB, index, count, from, to int) *Result {
	t.Helper()
	r := NewRecorder(syntheticMeta(index, count, from, to))
	feed(r, from, to)
	n := int64(to - from)
	return r.Finish(at(50), Final{
		Delivery:    Delivery{Expected: n * 4, Received: n*4 - n/211, Lost: n / 211},
		CPUUser:     usageCPU(50, n) * 3 / 4,
		CPUSystem:   usageCPU(50, n) / 4,
		MaxRSSBytes: 40<<20 + n*60<<10,
		Procs:       1,
		CPUs:        2,
	})
}

func syntheticMeta(index, count, from, to int) Meta {
	return Meta{
		Scenario: "launch", ScenarioHash: "sha256:5e1f", Target: "local",
		Shard:       Shard{Index: index, Count: count},
		Devices:     Devices{Prefix: "dev-", From: from, To: to, Count: to - from},
		Start:       t0,
		ToolVersion: "test", Host: "ci", GoVersion: "go1.26",
	}
}
