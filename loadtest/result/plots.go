package result

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// palette is Tableau 10: distinguishable, print- and colour-blind-friendly
// enough, and calm on a white page.
var palette = []color.RGBA{
	{0x4e, 0x79, 0xa7, 0xff}, {0xf2, 0x8e, 0x2b, 0xff}, {0x59, 0xa1, 0x4f, 0xff},
	{0xe1, 0x57, 0x59, 0xff}, {0xb0, 0x7a, 0xa1, 0xff}, {0x76, 0xb7, 0xb2, 0xff},
	{0xed, 0xc9, 0x48, 0xff}, {0x9c, 0x75, 0x5f, 0xff}, {0xff, 0x9d, 0xa7, 0xff},
	{0xba, 0xb0, 0xac, 0xff},
}

var (
	inkColor   = color.RGBA{0x33, 0x33, 0x33, 0xff}
	gridColor  = color.RGBA{0xe6, 0xe6, 0xe6, 0xff}
	bandColor  = color.RGBA{0xf4, 0xf6, 0xf9, 0xff}
	bandLabel  = color.RGBA{0x88, 0x88, 0x88, 0xff}
	totalColor = color.RGBA{0x22, 0x22, 0x22, 0xff}
)

// Plot size in points; the page scales them to the column width.
const (
	plotW = 7 * vg.Inch
	plotH = 3.2 * vg.Inch
)

// chart is a plot and its legend. The page draws the legend in HTML under
// the plot, where it never hides data.
type chart struct {
	*plot.Plot
	legend []legendItem
}

type legendItem struct {
	Name   string
	Color  color.Color
	Dashed bool
}

// addLine draws l and lists it in the legend.
func (c *chart) addLine(name string, l *plotter.Line) {
	c.Add(l)
	c.legend = append(c.legend, legendItem{Name: name, Color: l.Color, Dashed: len(l.Dashes) > 0})
}

// newPlot returns a plot styled for the report.
func newPlot(title, xLabel, yLabel string) *chart {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.Title.TextStyle.Color = inkColor
	p.Title.Padding = vg.Points(8)
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = vg.Points(10)
		a.Label.TextStyle.Color = inkColor
		a.Tick.Label.Font.Size = vg.Points(9)
		a.Tick.Label.Color = inkColor
		a.Color = bandLabel
		a.Tick.Color = bandLabel
		a.Padding = 0
	}
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	// gonum's default face is Liberation Serif; the page is sans-serif.
	for _, f := range []*font.Font{&p.Title.TextStyle.Font, &p.X.Label.TextStyle.Font, &p.Y.Label.TextStyle.Font,
		&p.X.Tick.Label.Font, &p.Y.Tick.Label.Font, &p.Legend.TextStyle.Font} {
		f.Variant = "Sans"
	}
	g := plotter.NewGrid()
	g.Vertical.Color, g.Horizontal.Color = gridColor, gridColor
	g.Vertical.Width, g.Horizontal.Width = vg.Points(0.5), vg.Points(0.5)
	p.Add(g)
	return &chart{Plot: p}
}

// svgOf renders p as an SVG element for inlining in HTML: no XML prolog.
func svgOf(p *chart) (s string, err error) {
	defer func() {
		// gonum/plot panics on degenerate ranges; a report must still be
		// written, with this plot replaced by a note.
		if e := recover(); e != nil {
			err = fmt.Errorf("plot %q: %v", p.Title.Text, e)
		}
	}()
	c := vgsvg.New(plotW, plotH)
	p.Plot.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", err
	}
	out := buf.String()
	if i := strings.Index(out, "<svg"); i >= 0 {
		out = out[i:]
	}
	// Inline SVG in HTML needs no namespace declarations; dropping them
	// keeps the page free of any URL at all.
	out = strings.Replace(out, `
	xmlns="http://www.w3.org/2000/svg"
	xmlns:xlink="http://www.w3.org/1999/xlink"`, "", 1)
	// Let CSS size the plot; the viewBox keeps its proportions.
	out = strings.Replace(out, fmt.Sprintf(`width="%gpt" height="%gpt"`, plotW.Points(), plotH.Points()),
		`class="plot" preserveAspectRatio="xMidYMid meet"`, 1)
	return out, nil
}

func line(xys plotter.XYs, c color.Color, width float64, dashed bool) *plotter.Line {
	l, err := plotter.NewLine(xys)
	if err != nil {
		// NewLine fails only on NaN or Inf, which the callers never build.
		panic(err)
	}
	l.Color = c
	l.Width = vg.Points(width)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	}
	return l
}

// timeAxis describes the x axis of the time plots: seconds since the start.
type timeAxis struct {
	start int64 // unix second at x = 0
	bands []band
}

type band struct {
	x0, x1 float64
	name   string
}

func newTimeAxis(r *Result) timeAxis {
	ta := timeAxis{start: r.Meta.Start.Unix()}
	if len(r.Series) > 0 && r.Series[0].T < ta.start {
		ta.start = r.Series[0].T
	}
	for _, ph := range r.Phases {
		for _, s := range ph.Spans {
			ta.bands = append(ta.bands, band{
				x0:   float64(s.Start.UnixNano())/1e9 - float64(ta.start),
				x1:   float64(s.End.UnixNano())/1e9 - float64(ta.start),
				name: ph.Name,
			})
		}
	}
	return ta
}

func (ta timeAxis) label() string {
	return "time since start (" + time.Unix(ta.start, 0).UTC().Format("15:04:05 UTC") + ")"
}

// phaseBands shades every other phase and names each, so a spike on a time
// plot is read against the stage that caused it.
type phaseBands struct{ bands []band }

// Plot implements plot.Plotter.
func (b phaseBands) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	sty := p.X.Tick.Label
	sty.Color = bandLabel
	sty.XAlign, sty.YAlign = draw.XLeft, draw.YTop
	sty.Font.Size = vg.Points(8)
	for i, bd := range b.bands {
		x0, x1 := max(trX(bd.x0), c.Min.X), min(trX(bd.x1), c.Max.X)
		if x1 <= x0 {
			continue
		}
		if i%2 == 0 {
			c.FillPolygon(bandColor, []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y}})
		}
		if x1-x0 > vg.Points(30) {
			c.FillText(sty, vg.Point{X: x0 + vg.Points(3), Y: c.Max.Y - vg.Points(3)}, bd.name)
		}
	}
}

// seriesPlot draws per-second values of the series.
type seriesLine struct {
	name  string
	value func(Second) float64
}

func timePlot(r *Result, ta timeAxis, title, yLabel string, lines []seriesLine) (*chart, bool) {
	p := newTimePlot(ta, title, yLabel)
	any := false
	for i, sl := range lines {
		xys := make(plotter.XYs, len(r.Series))
		nonZero := false
		for j, s := range r.Series {
			xys[j].X = float64(s.T - ta.start)
			xys[j].Y = sl.value(s)
			nonZero = nonZero || xys[j].Y != 0
		}
		if !nonZero && i > 0 {
			continue // a flat zero line of a secondary series is noise
		}
		any = any || nonZero
		// Later lines dashed over a wider first one: "received" equal to
		// "published" must not hide it.
		l := line(xys, palette[i%len(palette)], 1.4, i > 0)
		if i == 0 && len(lines) > 1 {
			l.Width = vg.Points(3)
		}
		p.addLine(sl.name, l)
	}
	headroom(p)
	return p, any
}

func newTimePlot(ta timeAxis, title, yLabel string) *chart {
	p := newPlot(title, ta.label(), yLabel)
	p.X.Tick.Marker = elapsedTicks{}
	p.Y.Tick.Marker = countTicks{}
	p.Add(phaseBands{ta.bands})
	return p
}

// headroom starts the y axis at zero and leaves room at the top for the
// phase names.
func headroom(p *chart) {
	p.Y.Min = 0
	p.Y.Max = max(p.Y.Max, 1) * 1.12
}

// countTicks labels a count axis without spurious decimals ("1,500", not
// "1500.00").
type countTicks struct{}

// Ticks implements plot.Ticker.
func (countTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label == "" {
			continue
		}
		if v := ticks[i].Value; v == math.Trunc(v) {
			ticks[i].Label = formatCount(int64(v))
		} else {
			ticks[i].Label = sig3(v)
		}
	}
	return ticks
}

// elapsedTicks marks a time axis in seconds since the start with round
// steps and labels a person reads: 30s, 1m, 1m30s, 1h.
type elapsedTicks struct{}

// Ticks implements plot.Ticker.
func (elapsedTicks) Ticks(lo, hi float64) []plot.Tick {
	span := hi - lo
	step := 1.0
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400} {
		step = s
		if span/s <= 8 {
			break
		}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+1e-9; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: (time.Duration(v) * time.Second).String()})
		if minor := v + step/2; step >= 2 && minor < hi {
			ticks = append(ticks, plot.Tick{Value: minor})
		}
	}
	return ticks
}

func errorsPlot(r *Result, ta timeAxis) (*chart, bool) {
	p := newTimePlot(ta, "Errors by cause", "errors per second")
	if len(r.Series) == 0 {
		return p, false
	}
	const shown = 6
	lo, n := r.Series[0].T, len(r.Series)
	other := make([]float64, n)
	hasOther := false
	for i, e := range r.Errors {
		ys := other
		if i < shown {
			ys = make([]float64, n)
		} else {
			hasOther = true
		}
		for _, pt := range e.PerSecond {
			if k := pt.T - lo; k >= 0 && k < int64(n) {
				ys[k] += float64(pt.N)
			}
		}
		if i < shown {
			addErrLine(p, r, ta, ys, truncate(e.Cause, 48), palette[(i+3)%len(palette)])
		}
	}
	if hasOther {
		addErrLine(p, r, ta, other, fmt.Sprintf("%d other causes", len(r.Errors)-shown), palette[len(palette)-1])
	}
	headroom(p)
	return p, len(r.Errors) > 0
}

func addErrLine(p *chart, r *Result, ta timeAxis, ys []float64, name string, c color.Color) {
	xys := make(plotter.XYs, len(ys))
	for k := range ys {
		xys[k] = plotter.XY{X: float64(r.Series[k].T - ta.start), Y: ys[k]}
	}
	l := line(xys, c, 1.4, false)
	p.addLine(name, l)
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// latencyTicks marks a log latency axis (in ms) with readable units.
type latencyTicks struct{}

// Ticks implements plot.Ticker.
func (latencyTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); math.Pow(10, e) <= hi*1.0001; e++ {
		base := math.Pow(10, e)
		for i := 1; i < 10; i++ {
			v := base * float64(i)
			if v < lo*0.9999 || v > hi*1.0001 {
				continue
			}
			t := plot.Tick{Value: v}
			if i == 1 || (hi/lo < 2000 && (i == 2 || i == 5)) || (hi/lo < 8 && (i == 3 || i == 4 || i == 7)) {
				t.Label = FormatMicros(v * 1000)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// phaseHists lists, for one metric, the decoded histogram of every phase
// that observed it.
type phaseHist struct {
	name  string
	color color.Color
	h     *hdrhistogram.Histogram
}

func histsOf(r *Result, m Metric) []phaseHist {
	var out []phaseHist
	for i := range r.Phases {
		if s, ok := r.Phases[i].Summary(m); ok {
			if h, err := s.histogram(); err == nil && h.TotalCount() > 0 {
				out = append(out, phaseHist{r.Phases[i].Name, palette[i%len(palette)], h})
			}
		}
	}
	return out
}

// binsPerDecade sets the resolution of the latency histogram plots.
const binsPerDecade = 12

// histogramPlot draws, for each phase, the share of observations per
// log-spaced latency bin: on a log axis, equal-width bins read as a shape.
func histogramPlot(m Metric, hs []phaseHist) *chart {
	p := newPlot(m.Label()+" latency distribution", "latency (log scale)", "% of observations")
	p.Y.Tick.Marker = countTicks{}
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = latencyTicks{}
	loBin, hiBin := math.MaxInt, math.MinInt
	type binned struct {
		ph    phaseHist
		share map[int]float64
	}
	var all []binned
	for _, ph := range hs {
		share := map[int]float64{}
		total := float64(ph.h.TotalCount())
		for _, b := range ph.h.Distribution() {
			if b.Count == 0 {
				continue
			}
			mid := (float64(b.From) + float64(b.To)) / 2
			k := int(math.Floor(math.Log10(max(mid, 1)) * binsPerDecade))
			share[k] += 100 * float64(b.Count) / total
			loBin, hiBin = min(loBin, k), max(hiBin, k)
		}
		all = append(all, binned{ph, share})
	}
	loBin--
	hiBin += 2
	edge := func(k int) float64 { return math.Pow(10, float64(k)/binsPerDecade) / 1000 } // ms
	for _, b := range all {
		xys := make(plotter.XYs, 0, hiBin-loBin+1)
		for k := loBin; k <= hiBin; k++ {
			xys = append(xys, plotter.XY{X: edge(k), Y: b.share[k]})
		}
		l := line(xys, b.ph.color, 1.4, false)
		l.StepStyle = plotter.PostStep
		p.addLine(b.ph.name, l)
	}
	p.X.Min, p.X.Max = edge(loBin), edge(hiBin)
	headroom(p)
	return p
}

// percentilePlot draws latency against percentile on a "nines" axis (x =
// -log10(1-q)), where the tail that thresholds care about gets as much room
// as the median.
func percentilePlot(m Metric, hs []phaseHist, total *hdrhistogram.Histogram) *chart {
	p := newPlot(m.Label()+" latency by percentile", "percentile", "latency (log scale)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = latencyTicks{}
	maxX := 1.0
	curve := func(h *hdrhistogram.Histogram) plotter.XYs {
		limit := math.Log10(float64(h.TotalCount())) // the finest percentile the data resolves
		var xys plotter.XYs
		for _, b := range h.CumulativeDistributionWithTicks(5) {
			q := b.Quantile / 100
			x := limit
			if q < 1 {
				x = min(-math.Log10(1-q), limit)
			}
			xys = append(xys, plotter.XY{X: x, Y: math.Max(float64(b.ValueAt), 1) / 1000})
		}
		maxX = max(maxX, limit)
		return xys
	}
	lo, hi := math.Inf(1), 0.0
	add := func(name string, c color.Color, h *hdrhistogram.Histogram, dashed bool) {
		xys := curve(h)
		for _, pt := range xys {
			lo, hi = min(lo, pt.Y), max(hi, pt.Y)
		}
		l := line(xys, c, 1.4, dashed)
		p.addLine(name, l)
	}
	for _, ph := range hs {
		add(ph.name, ph.color, ph.h, false)
	}
	if len(hs) > 1 && total != nil {
		add("all phases", totalColor, total, true)
	}
	var ticks []plot.Tick
	for _, t := range []struct {
		x     float64
		label string
	}{{0, "0%"}, {1, "90%"}, {2, "99%"}, {3, "99.9%"}, {4, "99.99%"}, {5, "99.999%"}, {6, "99.9999%"}} {
		if t.x <= math.Ceil(maxX) {
			ticks = append(ticks, plot.Tick{Value: t.x, Label: t.label})
		}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = 0, math.Ceil(maxX)
	p.Y.Min, p.Y.Max = lo/1.3, hi*1.3
	return p
}
