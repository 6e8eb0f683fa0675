package loadtest

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mqttstack/mqttstack/loadtest/result"
	"github.com/mqttstack/mqttstack/scenarios"
)

// syncBuffer is a bytes.Buffer safe for mpb's render goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testStages() []scenarios.Stage {
	return []scenarios.Stage{
		{Kind: scenarios.StageRamp, Name: "ramp-0"},
		{Kind: scenarios.StageSteady, Name: "report", Duration: time.Minute},
	}
}

// TestProgressAbortsOnCancel: a cancelled run aborts the bars, so finish
// (mpb's Wait) returns at once instead of waiting for bars that never
// complete; logs written meanwhile appear in the output.
func TestProgressAbortsOnCancel(t *testing.T) {
	// on synctest's fake clock: the refresh that renders the bars is
	// decided by the clock, not by how busy the machine is
	synctest.Test(t, func(t *testing.T) {
		var out syncBuffer
		ctx, cancel := context.WithCancel(context.Background())
		pr := newProgress(ctx, &out, true, 100, testStages())
		pr.stageStart(0)
		pr.update(result.Live{Phase: "ramp-0", Active: 40, Total: result.Counts{Connects: 40}})
		pr.stageDone(0)
		pr.stageStart(1)
		pr.update(result.Live{Phase: "report", Active: 40, Total: result.Counts{Connects: 40, Published: 10}})
		if _, err := pr.logWriter(nil).Write([]byte("a log line above the bars\n")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // one refresh (fake time: exactly one)
		cancel()
		done := make(chan struct{})
		go func() {
			pr.finish()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("finish hung after cancel")
		}
		for _, want := range []string{"ramp-0", "report", "a log line above the bars", "40 connected"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
	})
}

// TestProgressSilent: not a terminal (or quiet) means no output at all and
// no goroutine to wait for.
func TestProgressSilent(t *testing.T) {
	var out syncBuffer
	pr := newProgress(context.Background(), &out, isTerminal(&out), 10, testStages())
	pr.stageStart(0)
	pr.update(result.Live{Active: 3})
	pr.stageDone(0)
	pr.finish()
	if w := pr.logWriter(&out); w != &out {
		t.Error("silent progress diverts logs")
	}
	if out.String() != "" {
		t.Errorf("silent progress wrote %q", out.String())
	}
}

// TestProgressUpdatesDuringRender: updates racing the render goroutine
// never deadlock (a bar's render calls our decorators, which take the same
// lock update holds; update must not call into a bar while holding it).
func TestProgressUpdatesDuringRender(t *testing.T) {
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr := newProgress(ctx, &out, true, 100, testStages())
	pr.stageStart(0)
	pr.stageDone(0)
	pr.stageStart(1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1500 {
			pr.update(result.Live{Phase: "report", Active: 100, Total: result.Counts{Connects: 100, Published: int64(i)}})
			time.Sleep(time.Millisecond)
		}
		pr.finish()
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("progress deadlocked between update and render")
	}
}
