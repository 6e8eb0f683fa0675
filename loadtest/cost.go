package loadtest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/mqttstack/mqttstack/host"
	"github.com/mqttstack/mqttstack/host/procfs"
	"github.com/mqttstack/mqttstack/loadtest/result"
)

// procCost is the CPU and memory of one process, read from /proc.
type procCost struct {
	User, System time.Duration
	RSS, HWM     int64 // bytes: resident now, peak resident
}

// readProcCost reads /proc/<pid>/stat (utime, stime) and /proc/<pid>/status
// (VmRSS, VmHWM) and parses them with package procfs, the one parser of
// both; pid 0 means this process.
func readProcCost(pid int) (procCost, error) {
	dir := "/proc/self"
	if pid > 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return procCost{}, err
	}
	st, err := procfs.ParseStat(b)
	if err != nil {
		return procCost{}, fmt.Errorf("%s/stat: %w", dir, err)
	}
	b, err = os.ReadFile(dir + "/status")
	if err != nil {
		return procCost{}, err
	}
	mem, err := procfs.ParseStatus(b)
	if err != nil {
		return procCost{}, fmt.Errorf("%s/status: %w", dir, err)
	}
	return procCost{User: st.User, System: st.System, RSS: mem.RSS, HWM: mem.HWM}, nil
}

// brokerSampler reads the broker's CPU and memory through a host.Host,
// once a second (run) and at every phase change (sample), for
// result.Recorder.BrokerUsage. A nil host samples nothing.
type brokerSampler struct {
	h host.Host

	mu      sync.Mutex
	lastErr error
}

func newBrokerSampler(h host.Host) *brokerSampler { return &brokerSampler{h: h} }

// brokerSample is one reading; ok false when there is none.
type brokerSample struct {
	ok       bool
	host     string
	pid      int
	cpu      time.Duration
	rssBytes int64
}

func (b brokerSample) record(r *result.Recorder, at time.Time) {
	if b.ok {
		r.BrokerUsage(at, b.host, b.pid, b.cpu, b.rssBytes)
	}
}

// sample reads the broker now (bounded by ctx and 3s).
func (s *brokerSampler) sample(ctx context.Context) brokerSample {
	if s == nil || s.h == nil {
		return brokerSample{}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	costs, err := s.h.Costs(ctx)
	if err == nil {
		for _, c := range costs {
			if c.Daemon == host.Mosquitto && c.PID > 0 {
				return brokerSample{ok: true, host: s.h.Name(), pid: c.PID, cpu: c.CPU, rssBytes: c.RSS}
			}
		}
		err = fmt.Errorf("%s: no mosquitto process", s.h.Name())
	}
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
	return brokerSample{}
}

// run samples once a second until ctx ends.
func (s *brokerSampler) run(ctx context.Context, col *collector) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if b := s.sample(ctx); b.ok {
				col.do(func(r *result.Recorder) { b.record(r, now) })
			}
		}
	}
}

// err is the last failed reading, if any.
func (s *brokerSampler) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}
