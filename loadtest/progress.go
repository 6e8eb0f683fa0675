package loadtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/mqttstack/mqttstack/loadtest/result"
	"github.com/mqttstack/mqttstack/scenarios"
)

// progress draws the live bars: connects (n/N, rate, ETA), one bar per
// stage (time), and a counters line. It is silent (every method a no-op)
// when the writer is not a terminal or the run is quiet. The container is
// tied to the stages' context so that a cancelled run aborts the bars and
// Wait never hangs.
type progress struct {
	p       *mpb.Progress
	connect *mpb.Bar
	stages  []*mpb.Bar
	live    *mpb.Bar
	n       int64

	mu       sync.Mutex // guards started, done, lastPub, lastAt
	started  []time.Time
	done     []bool
	total    []time.Duration
	lastPub  int64
	lastAt   time.Time
	liveText atomic.Value // string
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newProgress returns the bars, drawing on w when enabled (Run enables them
// for a terminal unless quiet).
func newProgress(ctx context.Context, w io.Writer, enabled bool, n int, stages []scenarios.Stage) *progress {
	pr := &progress{n: int64(n)}
	if !enabled || w == nil {
		return pr
	}
	pr.p = mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithWidth(40), mpb.WithRefreshRate(200*time.Millisecond))
	pr.started = make([]time.Time, len(stages))
	pr.done = make([]bool, len(stages))
	pr.total = make([]time.Duration, len(stages))
	pr.liveText.Store("")
	for i, st := range stages {
		if st.Kind == scenarios.StageRamp {
			pr.connect = pr.p.AddBar(int64(n),
				mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-16s", st.Name)), decor.CountersNoUnit("%d / %d", decor.WCSyncWidth)),
				mpb.AppendDecorators(decor.AverageSpeed(nil, "%.0f/s ", decor.WCSyncSpace), decor.OnComplete(decor.AverageETA(decor.ET_STYLE_GO), "done")),
			)
			pr.stages = append(pr.stages, pr.connect)
			continue
		}
		ms := st.Duration.Milliseconds()
		pr.total[i] = st.Duration
		pr.stages = append(pr.stages, pr.p.AddBar(max(ms, 1),
			mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-16s", st.Name)), decor.Any(func(decor.Statistics) string { return pr.elapsed(i) }, decor.WCSyncWidth)),
			mpb.AppendDecorators(decor.OnComplete(decor.Name(""), "done")),
		))
	}
	pr.live = pr.p.New(0, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
		return pr.liveText.Load().(string)
	})))
	return pr
}

func (pr *progress) elapsed(i int) string {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.started[i].IsZero() {
		return fmt.Sprintf("%v", pr.total[i])
	}
	return fmt.Sprintf("%v / %v", time.Since(pr.started[i]).Round(time.Second), pr.total[i])
}

// logWriter is where log lines go: above the bars while they show.
func (pr *progress) logWriter(w io.Writer) io.Writer {
	if pr.p == nil {
		return w
	}
	return pr.p
}

func (pr *progress) stageStart(i int) {
	if pr.p == nil {
		return
	}
	pr.mu.Lock()
	pr.started[i] = time.Now()
	pr.mu.Unlock()
}

func (pr *progress) stageDone(i int) {
	if pr.p == nil {
		return
	}
	b := pr.stages[i]
	pr.mu.Lock()
	pr.done[i] = true
	pr.mu.Unlock()
	if b == pr.connect {
		return // completes by count, or is aborted by finish
	}
	b.SetTotal(-1, true)
}

// drawn reports whether bars are drawn (a terminal, not --quiet).
func (pr *progress) drawn() bool { return pr.p != nil }

// update moves the bars to a snapshot of the recorder.
func (pr *progress) update(l result.Live) {
	if pr.p == nil {
		return
	}
	// Bars are never asked whether they completed: mpb reads that state
	// unsynchronised against a late render; this type keeps its own.
	if pr.connect != nil {
		pr.connect.SetCurrent(min(l.Total.Connects, pr.n))
	}
	// Bar calls happen outside pr.mu: a bar's render calls the decorators,
	// which take pr.mu (elapsed), while SetCurrent waits for the render.
	type move struct {
		b   *mpb.Bar
		cur int64
	}
	var moves []move
	pr.mu.Lock()
	for i, b := range pr.stages {
		if b != pr.connect && !pr.started[i].IsZero() && !pr.done[i] {
			moves = append(moves, move{b, min(time.Since(pr.started[i]).Milliseconds(), max(pr.total[i].Milliseconds()-1, 0))})
		}
	}
	now := time.Now()
	rate := 0.0
	if !pr.lastAt.IsZero() {
		rate = float64(l.Total.Published-pr.lastPub) / now.Sub(pr.lastAt).Seconds()
	}
	pr.lastPub, pr.lastAt = l.Total.Published, now
	pr.mu.Unlock()
	for _, m := range moves {
		m.b.SetCurrent(m.cur)
	}
	pr.liveText.Store(fmt.Sprintf("%-16s %d connected, %.0f msg/s, %d published, %d received, %d errors, %d reconnects",
		l.Phase, l.Active, rate, l.Total.Published, l.Total.Received, l.Total.Errors, l.Total.Reconnects))
}

// finish completes or aborts every bar and waits for the container.
func (pr *progress) finish() {
	if pr.p == nil {
		return
	}
	// Abort is a no-op on a bar that completed; on the others it ends the
	// bar, so Wait cannot hang.
	for _, b := range append(pr.stages, pr.live) {
		b.Abort(false)
	}
	pr.p.Wait()
}
