package result

import "html/template"

// pageTemplate is the HTML report. Everything is inline: CSS here, SVG from
// gonum/plot; there is no script and no external resource.
var pageTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
:root { --ink:#24292f; --muted:#6e7781; --line:#d8dee4; --bg:#f6f8fa; --ok:#1a7f37; --bad:#cf222e; --okbg:#dafbe1; --badbg:#ffebe9; --warnbg:#fff8c5; --warn:#9a6700; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Liberation Sans", Arial, sans-serif; }
main { max-width: 1360px; margin: 0 auto; padding: 24px 28px 48px; }
header { display: flex; align-items: flex-start; justify-content: space-between; gap: 24px; border-bottom: 1px solid var(--line); padding-bottom: 14px; }
h1 { font-size: 24px; margin: 0 0 4px; font-weight: 650; }
h2 { font-size: 18px; margin: 34px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); font-weight: 650; }
h3 { font-size: 15px; margin: 0 0 4px; font-weight: 650; }
.sub { color: var(--muted); }
.verdict { white-space: nowrap; font-weight: 700; font-size: 15px; padding: 8px 16px; border-radius: 999px; border: 1px solid var(--line); }
.verdict.pass { color: var(--ok); background: var(--okbg); border-color: #aceebb; }
.verdict.fail { color: var(--bad); background: var(--badbg); border-color: #ffcecb; }
.verdict.none { color: var(--muted); background: var(--bg); }
.banner { margin: 14px 0 0; padding: 10px 14px; border-radius: 6px; background: var(--warnbg); color: var(--warn); border: 1px solid #eed888; font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin-top: 18px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; background: #fff; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; margin: 2px 0; }
.card.bad .value { color: var(--bad); }
.card .sub { font-size: 12px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: var(--bg); }
td.num, th.num { text-align: right; white-space: nowrap; }
tr:last-child td { border-bottom: none; }
.box { border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
th.mark { width: 36px; }
.ok { color: var(--ok); font-weight: 700; }
.bad { color: var(--bad); font-weight: 700; }
.phases { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.phase { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px 6px; }
.phase .facts { color: var(--muted); font-size: 13px; margin-bottom: 8px; }
.phase table th, .phase table td { padding: 4px 8px; }
.plots { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 8px; background: #fff; }
figure .note { color: var(--muted); padding: 40px 12px; text-align: center; }
.legend { display: flex; flex-wrap: wrap; justify-content: center; gap: 4px 18px; font-size: 12px; color: var(--ink); padding: 2px 8px 4px; }
.legend i { display: inline-block; width: 22px; height: 0; border-top: 2.5px solid; vertical-align: middle; margin-right: 6px; }
.legend i.dashed { border-top-style: dashed; }
svg.plot { display: block; width: 100%; height: auto; }
svg.plot text { font-family: "Liberation Sans", Arial, Helvetica, sans-serif; }
.metric { margin-bottom: 18px; }
.metric .sub { margin-bottom: 8px; }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; align-items: start; }
.two.wide-left { grid-template-columns: 2fr 1fr; }
.meta td:first-child { color: var(--muted); width: 180px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 10px; }
@media (max-width: 900px) { .cards { grid-template-columns: 1fr 1fr; } .phases, .plots, .two { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<main>
<header>
  <div>
    <h1>{{.Title}}</h1>
    <div class="sub">{{.Subtitle}}</div>
  </div>
  <div class="verdict {{.Verdict}}">{{.VerdictText}}</div>
</header>
{{with .Interrupted}}<div class="banner">{{.}}</div>{{end}}
{{range .Warnings}}<div class="banner">{{.}}</div>{{end}}

<section class="cards">
{{range .Cards}}  <div class="card{{if .Bad}} bad{{end}}"><div class="label">{{.Label}}</div><div class="value">{{.Value}}</div><div class="sub">{{.Sub}}</div></div>
{{end}}</section>

<h2>Thresholds</h2>
{{if .Thresholds}}<div class="box"><table>
<tr><th class="mark"></th><th>metric</th><th>threshold</th><th class="num">measured</th><th class="num">line</th></tr>
{{range .Thresholds}}<tr><td>{{if .Passed}}<span class="ok">✓</span>{{else}}<span class="bad">✗</span>{{end}}</td><td>{{.Metric}}</td><td>{{.Want}}</td><td class="num{{if not .Passed}} bad{{end}}">{{.Got}}</td><td class="num">{{if .Line}}{{.Line}}{{end}}</td></tr>
{{end}}</table></div>
{{else}}<p class="sub">The scenario sets no thresholds, or they were not evaluated for this result.</p>{{end}}

<h2>Over time</h2>
<section class="plots">
{{range .TimePlots}}<figure>{{if .SVG}}{{.SVG}}{{template "legend" .Legend}}{{else}}<div class="note"><h3>{{.Title}}</h3>{{.Note}}</div>{{end}}</figure>
{{end}}</section>

<h2>Latency per phase</h2>
<section class="phases">
{{range .Phases}}<div class="phase">
  <h3>{{.Name}} <span class="sub">· {{.When}}</span></h3>
  <div class="facts">{{range $i, $f := .Facts}}{{if $i}} · {{end}}{{$f}}{{end}}</div>
  {{if .Rows}}<table>
  <tr><th>latency</th><th class="num">count</th><th class="num">p50</th><th class="num">p90</th><th class="num">p99</th><th class="num">p99.9</th><th class="num">max</th><th class="num">mean</th></tr>
  {{range .Rows}}<tr>{{range $i, $c := .}}{{if $i}}<td class="num">{{$c}}</td>{{else}}<td>{{$c}}</td>{{end}}{{end}}</tr>
  {{end}}</table>{{else}}<p class="sub">No latency observed.</p>{{end}}
</div>
{{end}}</section>

<h2>Latency distributions</h2>
{{range .Latency}}<div class="metric">
  <h3>{{.Metric}}</h3>
  {{if .NoDataNote}}<p class="sub">{{.NoDataNote}}</p>{{else}}<div class="sub">{{.Summary}}</div>
  <div class="two">
    <figure>{{if .Hist.SVG}}{{.Hist.SVG}}{{template "legend" .Hist.Legend}}{{else}}<div class="note">{{.Hist.Note}}</div>{{end}}</figure>
    <figure>{{if .Pct.SVG}}{{.Pct.SVG}}{{template "legend" .Pct.Legend}}{{else}}<div class="note">{{.Pct.Note}}</div>{{end}}</figure>
  </div>{{end}}
</div>
{{end}}

{{.Compat}}
{{.Profiles}}
<div class="two wide-left">
<div>
<h2>Errors by cause</h2>
{{if .Errors}}<div class="box"><table>
<tr><th class="num">count</th><th>cause</th><th class="num">first seen</th><th class="num">last seen</th></tr>
{{range .Errors}}<tr><td class="num">{{.Count}}</td><td>{{.Cause}}</td><td class="num">{{.First}}</td><td class="num">{{.Last}}</td></tr>
{{end}}</table></div>
{{else}}<p class="sub">No errors.</p>{{end}}
</div>
<div>
<h2>Delivery (observer)</h2>
{{if .Delivery}}<div class="box"><table class="meta">
{{range .Delivery}}<tr><td>{{index . 0}}</td><td class="num">{{index . 1}}</td></tr>
{{end}}</table></div>
{{else}}<p class="sub">No telemetry was tracked.</p>{{end}}
</div>
</div>

<div class="two">
<div>
<h2>Cost of the load generator</h2>
<div class="box"><table class="meta">
{{range .Cost}}<tr><td>{{index . 0}}</td><td>{{index . 1}}</td></tr>
{{end}}</table></div>
<p class="sub">When the generator's CPU load nears the cores it had, the latencies above measure the generator, not the broker: add shards.</p>
</div>
<div>
<h2>Run</h2>
<div class="box"><table class="meta">
{{range .Meta}}<tr><td>{{index . 0}}</td><td>{{index . 1}}</td></tr>
{{end}}</table></div>
</div>
</div>

<footer>{{.Generated}}</footer>
</main>
</body>
</html>
{{define "legend"}}{{if .}}<div class="legend">{{range .}}<span><i class="{{if .Dashed}}dashed{{end}}" style="border-color: {{.Color}}"></i>{{.Name}}</span>{{end}}</div>{{end}}{{end}}`))
