package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/mqttstack/mqttstack/devices"
	"github.com/mqttstack/mqttstack/internal/levenshtein"
)

// MaxFileSize bounds a scenario file; a real one is a few hundred bytes.
const MaxFileSize = 1 << 20

// Parse decodes and validates one scenario. name is the file name used in
// problems ("launch.yaml"); the scenario's Name defaults to name without
// directory and extension. Every problem in the file is reported at once
// (see Problem); the decode is strict: unknown fields, duplicate keys,
// values of the wrong shape and bare numbers where a unit is needed are all
// problems with their line.
func Parse(name string, data []byte) (*Scenario, error) {
	if len(data) > MaxFileSize {
		return nil, (&Problem{File: name, Msg: fmt.Sprintf("file is %d bytes, more than the %d a scenario may have", len(data), MaxFileSize), Fix: "is this the right file?"}).asList()
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, (&Problem{File: name, Msg: "file is empty", Fix: "a scenario needs at least fleet: {count: N} and stages:"}).asList()
		}
		return nil, yamlProblem(name, err).asList()
	}
	for {
		// A trailing "---" with nothing after it is harmless; a second
		// scenario in one file would be silently ignored, so it is not.
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, yamlProblem(name, err).asList()
		}
		if !emptyDocument(&extra) {
			return nil, (&Problem{File: name, Line: extra.Line, Msg: "a second YAML document after ---", Fix: "put one scenario per file"}).asList()
		}
	}

	d := &decoder{file: name, s: &Scenario{Source: name, lines: map[string]pos{}, bad: map[string]bool{}}}
	if !d.document(&doc) {
		// Without a top-level mapping, "fleet.count: required" and
		// friends would only bury the one problem that matters.
		return nil, d.probs.err()
	}
	s := d.s
	if s.Name == "" && !s.has("name") {
		s.Name = nameFromFile(name)
	}
	s.SetDefaults()
	var all problemList = d.probs
	all = append(all, s.validate()...)
	if err := all.err(); err != nil {
		return nil, err
	}
	return s, nil
}

func emptyDocument(doc *yaml.Node) bool {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return doc.Kind == yaml.DocumentNode
	}
	c := doc.Content[0]
	return c.Kind == yaml.ScalarNode && c.Tag == "!!null" && c.Value == ""
}

// Load reads and parses the scenario file at path; problems name the path
// as given.
func Load(path string) (*Scenario, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// readFile reads at most one byte more than MaxFileSize, so that Parse can
// refuse an oversized file without reading all of it.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	return data, nil
}

// nameFromFile turns "dir/launch-eu.yaml" into "launch-eu".
func nameFromFile(file string) string {
	base := filepath.Base(file)
	if ext := filepath.Ext(base); ext == ".yaml" || ext == ".yml" {
		base = strings.TrimSuffix(base, ext)
	}
	if base == "." || base == string(filepath.Separator) {
		return ""
	}
	return base
}

func (p *Problem) asList() error { return problemList{p}.err() }

// yamlProblem turns a yaml.v3 syntax error ("yaml: line 3: mapping values
// are not allowed in this context") into a Problem with the line split out.
func yamlProblem(file string, err error) *Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := &Problem{File: file, Msg: "not valid YAML: " + msg, Fix: "check indentation and quote values that contain ': ' or start with '{', '[', '*', '&', '!', '%' or '@'"}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				p.Line, p.Msg = n, "not valid YAML: "+after
			}
		}
	}
	return p
}

// decoder walks the yaml.Node tree by hand rather than decoding into
// tagged structs: that is what gives every problem its line and field
// path, lets one pass collect all of them, and reads the human units.
type decoder struct {
	file  string
	s     *Scenario
	probs problemList
}

// add records a problem about path, found at node n.
func (d *decoder) add(n *yaml.Node, path, msg, fix string) {
	p := &Problem{File: d.file, Path: path, Msg: msg, Fix: fix}
	if n != nil {
		p.Line, p.col = n.Line, n.Column
	}
	d.probs = append(d.probs, p)
}

// bad records a problem with the value at path and marks the path so that
// validation does not report it again.
func (d *decoder) bad(n *yaml.Node, path, msg, fix string) {
	d.s.bad[path] = true
	d.add(n, path, msg, fix)
}

// field is one known key of a mapping and what to do with its value.
type field struct {
	name string
	set  func(v *yaml.Node, path string)
}

// resolve follows an alias to the node it names. Problems are reported at
// the unresolved node, so that a bad alias points at where it is used. yaml.v3 does not expand
// aliases when it builds a Node tree, and the schema has a fixed depth, so
// following them here costs at most a constant per reference.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "empty"
		}
		return strconv.Quote(clip(n.Value))
	case yaml.AliasNode:
		return "an alias"
	}
	return "unknown"
}

// mapping decodes the known fields of the mapping n; unknown keys,
// duplicate keys and merge keys are problems.
func (d *decoder) mapping(orig *yaml.Node, path string, fields []field, example string) bool {
	n := resolve(orig)
	if n == nil || n.Kind != yaml.MappingNode {
		what := "empty"
		if n != nil {
			what = kindName(n)
		}
		d.bad(orig, path, "must be a mapping, not "+what, "e.g. "+example)
		return false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.add(k, path, fmt.Sprintf("a key must be a plain name, not %s", kindName(k)), "e.g. "+example)
			continue
		}
		if k.Tag == "!!merge" {
			d.add(k, join(path, "<<"), "merge keys are not supported", "write the fields out; an alias like *name works as a whole value")
			continue
		}
		p := join(path, clip(k.Value))
		if first, dup := seen[k.Value]; dup {
			d.add(k, p, fmt.Sprintf("set twice (first on line %d)", first), "keep one")
			continue
		}
		seen[k.Value] = k.Line
		f := lookupField(fields, k.Value)
		if f == nil {
			d.add(k, join(path, clip(k.Value)), "unknown field", suggest(k.Value, fields))
			continue
		}
		d.s.lines[p] = pos{k.Line, k.Column}
		if f.set != nil {
			f.set(v, p)
		}
	}
	return true
}

// clip shortens what a user wrote for quoting in a problem, so that one
// absurd key does not make a megabyte error line.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func lookupField(fields []field, name string) *field {
	for i := range fields {
		if fields[i].name == name {
			return &fields[i]
		}
	}
	return nil
}

// suggest names the closest known field when one is close, else lists them.
func suggest(name string, fields []field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	if best := closest(name, names); best != "" {
		return "did you mean " + best + "?"
	}
	return "known fields: " + strings.Join(names, ", ")
}

// closest returns the valid name nearest to got when it is near enough to
// be a typo, else "".
func closest(got string, valid []string) string {
	// Inputs are keys and values of a small file; a long one is cut to 64
	// bytes, which keeps the quadratic distance tiny.
	g := strings.ToLower(got)
	if len(g) > 64 {
		g = g[:64]
	}
	best, bestD := "", 1<<30
	for _, v := range valid {
		if dist := levenshtein.Distance(g, v); dist < bestD {
			best, bestD = v, dist
		}
	}
	// One edit is a typo; two only in longer words ("base" is not
	// "name"), more only in long ones.
	if bestD <= 1 || bestD == 2 && min(len(got), len(best)) >= 5 || bestD <= len(best)/3 && bestD < 5 {
		return best
	}
	return ""
}

// oneOf is the fix for a value outside an enumeration: the likely typo
// fix when there is one, and the valid values.
func oneOf[T ~string](got T, valid []T) string {
	names := make([]string, len(valid))
	for i, v := range valid {
		names[i] = string(v)
	}
	if best := closest(string(got), names); best != "" {
		return "did you mean " + best + "? valid: " + strings.Join(names, ", ")
	}
	return "valid: " + strings.Join(names, ", ")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// scalar returns the text of a scalar value, or reports what it is instead.
func (d *decoder) scalar(orig *yaml.Node, path, example string) (string, bool) {
	v := resolve(orig)
	if v == nil {
		d.bad(orig, path, "has no value", "e.g. "+example)
		return "", false
	}
	if v.Kind != yaml.ScalarNode {
		d.bad(orig, path, fmt.Sprintf("must be a single value, not %s", kindName(v)), "e.g. "+example)
		return "", false
	}
	if v.Tag == "!!null" && (v.Value == "" || v.Value == "~" || strings.EqualFold(v.Value, "null")) {
		d.bad(orig, path, "has no value", "e.g. "+example)
		return "", false
	}
	// Problems quote values; no value but a description is long, and a
	// long one would make an unreadable problem line.
	if len(v.Value) > maxValueLen && path != "description" {
		d.bad(orig, path, fmt.Sprintf("value is %d characters long", len(v.Value)), "e.g. "+example)
		return "", false
	}
	return v.Value, true
}

// maxValueLen bounds every value but the description.
const maxValueLen = 256

// parsed decodes a scalar with one of the unit parsers.
func parsed[T any](d *decoder, v *yaml.Node, path, example string, parse func(string) (T, error), dst *T) {
	s, ok := d.scalar(v, path, example)
	if !ok {
		return
	}
	x, err := parse(s)
	if err != nil {
		d.bad(v, path, err.Error(), "e.g. "+example)
		return
	}
	*dst = x
}

func (d *decoder) str(dst *string, example string) func(*yaml.Node, string) {
	return func(v *yaml.Node, path string) {
		if s, ok := d.scalar(v, path, example); ok {
			*dst = s
		}
	}
}

func (d *decoder) duration(dst *time.Duration, example string) func(*yaml.Node, string) {
	return func(v *yaml.Node, path string) { parsed(d, v, path, example, parseDuration, dst) }
}

func (d *decoder) rate(dst *float64, example string) func(*yaml.Node, string) {
	return func(v *yaml.Node, path string) { parsed(d, v, path, example, parseRate, dst) }
}

func (d *decoder) fraction(dst *float64, example string) func(*yaml.Node, string) {
	return func(v *yaml.Node, path string) { parsed(d, v, path, example, parseFraction, dst) }
}

func (d *decoder) integer(dst *int, example string) func(*yaml.Node, string) {
	return func(v *yaml.Node, path string) { parsed(d, v, path, example, parseInt, dst) }
}

func (d *decoder) size(dst *int, example string) func(*yaml.Node, string) {
	return func(v *yaml.Node, path string) { parsed(d, v, path, example, parseSize, dst) }
}

// boolean accepts YAML 1.2's true and false only: "yes", "on" and friends
// are strings in YAML 1.2 and booleans in 1.1, so they are refused rather
// than read one way by us and another by the next tool.
func (d *decoder) boolean(dst *bool) func(*yaml.Node, string) {
	return func(v *yaml.Node, path string) {
		s, ok := d.scalar(v, path, "true")
		if !ok {
			return
		}
		switch s {
		case "true", "True", "TRUE":
			*dst = true
		case "false", "False", "FALSE":
			*dst = false
		default:
			d.bad(v, path, fmt.Sprintf("%q is not true or false", s), "write true or false")
		}
	}
}

// document decodes the top level; false when it is not a mapping.
func (d *decoder) document(doc *yaml.Node) bool {
	root := doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			d.add(doc, "", "file is empty", "a scenario needs at least fleet: {count: N} and stages:")
			return false
		}
		root = doc.Content[0]
	}
	if r := resolve(root); r != nil && r.Kind == yaml.ScalarNode && r.Tag == "!!null" {
		d.add(r, "", "file is empty", "a scenario needs at least fleet: {count: N} and stages:")
		return false
	}
	s := d.s
	return d.mapping(root, "", []field{
		{"name", d.str(&s.Name, "launch")},
		{"description", d.str(&s.Description, `"5,000 boards after a firmware push"`)},
		{"fleet", d.fleet},
		{"connect", d.connect},
		{"stages", d.stages},
		{"commands", d.commands},
		{"thresholds", d.thresholds},
	}, "name: launch")
}

func (d *decoder) fleet(v *yaml.Node, path string) {
	f := &d.s.Fleet
	var sources int
	d.mapping(v, path, []field{
		{"count", d.integer(&f.Count, "5000")},
		{"prefix", d.str(&f.Prefix, "dev-")},
		{"transport", func(v *yaml.Node, p string) {
			if s, ok := d.scalar(v, p, "mqtts"); ok {
				f.Transport = Transport(s)
			}
		}},
		{"keepalive", d.duration(&f.KeepAlive, "30s")},
		{"clean_session", d.boolean(&f.CleanSession)},
		{"protocol", func(v *yaml.Node, p string) {
			if s, ok := d.scalar(v, p, "5"); ok {
				f.Protocol = Protocol(s)
			}
		}},
		{"session_expiry", d.duration(&f.SessionExpiry, "10m")},
		{"topic_aliases", d.boolean(&f.TopicAliases)},
		{"qos", func(v *yaml.Node, p string) {
			var q int
			parsed(d, v, p, "1", parseInt, &q)
			if d.s.bad[p] {
				return
			}
			if q < 0 || q > 2 {
				d.bad(v, p, fmt.Sprintf("%d is not an MQTT QoS", q), "use 0, 1 or 2")
				return
			}
			f.QoS = byte(q)
		}},
		{"sources", func(v *yaml.Node, p string) {
			parsed(d, v, p, "4", parseInt, &sources)
			if d.s.bad[p] {
				return
			}
			if sources < 1 || sources > 254 {
				d.bad(v, p, fmt.Sprintf("%d loopback source addresses: must be 1..254", sources), "e.g. 4, which uses 127.0.0.1 to 127.0.0.4")
				return
			}
			for i := 1; i <= sources; i++ {
				f.SourceAddrs = append(f.SourceAddrs, netip.AddrFrom4([4]byte{127, 0, 0, byte(i)}).String())
			}
		}},
		{"source_addrs", d.sourceAddrs},
		{"profiles", d.profiles},
	}, "{count: 5000, prefix: dev-, transport: mqtts, keepalive: 30s, qos: 1}")
	if d.s.has(join(path, "sources")) && d.s.has(join(path, "source_addrs")) {
		d.probs = append(d.probs, &Problem{File: d.file, Line: d.s.lines[join(path, "source_addrs")].line, col: d.s.lines[join(path, "source_addrs")].col, Path: join(path, "source_addrs"),
			Msg: "sources and source_addrs are both set", Fix: "keep one: sources: N for 127.0.0.1..N, or source_addrs: [list]"})
	}
}

// profiles reads fleet.profiles: device profile -> share of the fleet.
// Every known profile is a field, so an unknown one gets "did you mean".
func (d *decoder) profiles(v *yaml.Node, path string) {
	const example = "{esp8266-bearssl: 60%, esp32-arduino-3: 40%}"
	var fields []field
	for _, name := range devices.Names() {
		fields = append(fields, field{name, func(v *yaml.Node, p string) {
			var share float64
			parsed(d, v, p, "60%", parseFraction, &share)
			if d.s.bad[p] {
				return
			}
			if share <= 0 || share > 1 {
				d.bad(v, p, fmt.Sprintf("share %s is not above 0%% and at most 100%%", formatFraction(share)), "e.g. 40%, or leave the profile out")
				return
			}
			d.s.Fleet.Profiles = append(d.s.Fleet.Profiles, ProfileShare{Profile: name, Share: share})
		}})
	}
	if !d.mapping(v, path, fields, example) {
		d.s.bad[path] = true
		return
	}
	sum := 0.0
	for _, ps := range d.s.Fleet.Profiles {
		sum += ps.Share
	}
	if len(d.s.Fleet.Profiles) > 0 && math.Abs(sum-1) > 1e-9 && !d.s.bad[path] {
		d.bad(v, path, fmt.Sprintf("shares sum to %.4g%%, not 100%%", sum*100), "make the shares add up to 100%; every device has one profile ('mqttstack devices profiles' lists them)")
	}
}

func (d *decoder) sourceAddrs(v *yaml.Node, path string) {
	n := resolve(v)
	if n == nil || n.Kind != yaml.SequenceNode {
		if n == nil {
			n = v
		}
		d.bad(v, path, fmt.Sprintf("must be a list of IP addresses, not %s", kindName(n)), "e.g. [127.0.0.2, 127.0.0.3]")
		return
	}
	seen := map[string]bool{}
	for i, it := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		s, ok := d.scalar(it, p, "127.0.0.2")
		if !ok {
			continue
		}
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || a.Zone() != "" {
			d.bad(it, p, fmt.Sprintf("%q is not an IP address", s), "e.g. 127.0.0.2 or 10.0.0.5")
			continue
		}
		a = a.Unmap()
		if a.IsUnspecified() || a.IsMulticast() {
			d.bad(it, p, fmt.Sprintf("%s cannot be a source address", a), "use an address of this machine, e.g. 127.0.0.2")
			continue
		}
		if seen[a.String()] {
			d.bad(it, p, fmt.Sprintf("%s listed twice", a), "list each address once")
			continue
		}
		seen[a.String()] = true
		d.s.Fleet.SourceAddrs = append(d.s.Fleet.SourceAddrs, a.String())
	}
}

func (d *decoder) connect(v *yaml.Node, path string) {
	c := &d.s.Connect
	d.mapping(v, path, []field{
		{"rate", d.rate(&c.Rate, `"800/s"`)},
		{"max_in_flight", d.integer(&c.MaxInFlight, "256")},
		{"timeout", d.duration(&c.Timeout, "10s")},
		{"backoff", func(v *yaml.Node, p string) {
			d.mapping(v, p, []field{
				{"min", d.duration(&c.Backoff.Min, "500ms")},
				{"max", d.duration(&c.Backoff.Max, "30s")},
				{"jitter", d.fraction(&c.Backoff.Jitter, `"20%"`)},
			}, "{min: 500ms, max: 30s, jitter: 20%}")
		}},
	}, `{rate: 800/s, max_in_flight: 256}`)
}

func (d *decoder) stages(v *yaml.Node, path string) {
	n := resolve(v)
	if n == nil || n.Kind != yaml.SequenceNode {
		if n == nil {
			n = v
		}
		d.bad(v, path, fmt.Sprintf("must be a list of stages, not %s", kindName(n)), "e.g. - {kind: ramp}")
		return
	}
	d.s.Stages = make([]Stage, len(n.Content))
	for i, it := range n.Content {
		st := &d.s.Stages[i]
		p := fmt.Sprintf("%s[%d]", path, i)
		if r := resolve(it); r != nil {
			st.Line = r.Line
			if it.Line > 0 {
				st.Line = it.Line
			}
		}
		d.s.lines[p] = pos{st.Line, 0}
		if r := resolve(it); r != nil {
			d.s.lines[p] = pos{st.Line, r.Column}
		}
		d.mapping(it, p, []field{
			{"kind", func(v *yaml.Node, p string) {
				if s, ok := d.scalar(v, p, "steady"); ok {
					st.Kind = StageKind(s)
				}
			}},
			{"name", d.str(&st.Name, "warm-up")},
			{"duration", d.duration(&st.Duration, "2m")},
			{"every", d.duration(&st.Every, "5s")},
			{"rate", d.rate(&st.Rate, `"0.2/s"`)},
			{"payload", func(v *yaml.Node, p string) {
				if s, ok := d.scalar(v, p, "dht11"); ok {
					st.Payload = Payload(s)
				}
			}},
			{"size", d.size(&st.Size, "256 or 1KiB")},
			{"share", d.fraction(&st.Share, `"20%"`)},
			{"within", d.duration(&st.Within, "10s")},
			{"count", d.integer(&st.Count, "10")},
		}, "{kind: steady, duration: 2m, every: 5s}")
	}
}

func (d *decoder) commands(v *yaml.Node, path string) {
	c := &Commands{}
	if d.mapping(v, path, []field{
		{"rate", d.rate(&c.Rate, `"50/s"`)},
		{"payload", func(v *yaml.Node, p string) {
			if s, ok := d.scalar(v, p, "relay"); ok {
				c.Payload = CommandPayload(s)
			}
		}},
	}, "{rate: 50/s, payload: relay}") {
		d.s.Commands = c
	}
}

// thresholds decodes `metric: "expr"` pairs in file order; a metric may
// also take a list of expressions (`e2e_p99: ["< 250ms", "> 0ms"]`).
func (d *decoder) thresholds(v *yaml.Node, path string) {
	n := resolve(v)
	if n == nil || n.Kind != yaml.MappingNode {
		if n == nil {
			n = v
		}
		d.bad(v, path, fmt.Sprintf("must be a mapping of metric to condition, not %s", kindName(n)), `e.g. {e2e_p99: "< 250ms", loss: "== 0"}`)
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			d.add(k, path, "a key must be a metric name", `e.g. e2e_p99: "< 250ms"`)
			continue
		}
		p := join(path, clip(k.Value))
		if first, dup := seen[k.Value]; dup {
			d.add(k, p, fmt.Sprintf("set twice (first on line %d)", first), `give several conditions as a list: ["> 0ms", "< 250ms"]`)
			continue
		}
		seen[k.Value] = k.Line
		d.s.lines[p] = pos{k.Line, k.Column}
		kind, known := KindOf(k.Value)
		if !known {
			d.add(k, p, "unknown metric", metricFix(k.Value))
			continue
		}
		exprs := []*yaml.Node{val}
		if r := resolve(val); r != nil && r.Kind == yaml.SequenceNode {
			exprs = r.Content
			if len(exprs) == 0 {
				d.add(r, p, "empty list of conditions", "e.g. "+kind.example())
			}
		}
		for j, e := range exprs {
			ep := p
			if len(exprs) > 1 || exprs[0] != val {
				ep = fmt.Sprintf("%s[%d]", p, j)
			}
			s, ok := d.scalar(e, ep, kind.example())
			if !ok {
				continue
			}
			t, msg, fix := parseThreshold(k.Value, s)
			if msg != "" {
				d.add(e, ep, msg, fix)
				continue
			}
			t.Line = k.Line
			if r := resolve(e); r != nil && r.Line > 0 && r != val {
				t.Line = r.Line
			}
			d.s.Thresholds = append(d.s.Thresholds, t)
		}
	}
}
