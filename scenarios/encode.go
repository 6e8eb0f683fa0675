package scenarios

import (
	"bytes"
	"strconv"

	"gopkg.in/yaml.v3"
)

// MarshalYAML writes the scenario in its canonical form: every default
// spelled out, human units, one flow mapping per stage. Parse reads the
// output back to an equal scenario (the tests and FuzzParse hold it to
// that), so `mqttstack validate --print` shows exactly what would run.
func (s *Scenario) MarshalYAML() (any, error) {
	root := mapNode()
	add(root, "name", str(s.Name))
	if s.Description != "" {
		add(root, "description", str(s.Description))
	}

	f := s.Fleet
	fleet := flow(mapNode())
	add(fleet, "count", plain(strconv.Itoa(f.Count)))
	add(fleet, "prefix", str(f.Prefix))
	add(fleet, "transport", str(string(f.Transport)))
	add(fleet, "keepalive", plain(formatDuration(f.KeepAlive)))
	add(fleet, "clean_session", plain(strconv.FormatBool(f.CleanSession)))
	add(fleet, "qos", plain(strconv.Itoa(int(f.QoS))))
	if f.Protocol != "" && f.Protocol != Protocol311 {
		// Left out for 3.1.1, so that the hash of a scenario written
		// before protocols existed stays what it was.
		add(fleet, "protocol", plain(string(f.Protocol)))
		add(fleet, "session_expiry", plain(formatDuration(f.SessionExpiry)))
		if f.TopicAliases {
			add(fleet, "topic_aliases", plain("true"))
		}
	}
	if len(f.SourceAddrs) > 0 {
		addrs := flow(&yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"})
		for _, a := range f.SourceAddrs {
			addrs.Content = append(addrs.Content, str(a))
		}
		add(fleet, "source_addrs", addrs)
	}
	if len(f.Profiles) > 0 {
		ps := flow(mapNode())
		for _, p := range f.Profiles {
			add(ps, p.Profile, plain(formatFraction(p.Share)))
		}
		add(fleet, "profiles", ps)
	}
	add(root, "fleet", fleet)

	c := s.Connect
	conn := mapNode()
	add(conn, "rate", plain(formatRate(c.Rate)))
	add(conn, "max_in_flight", plain(strconv.Itoa(c.MaxInFlight)))
	add(conn, "timeout", plain(formatDuration(c.Timeout)))
	backoff := flow(mapNode())
	add(backoff, "min", plain(formatDuration(c.Backoff.Min)))
	add(backoff, "max", plain(formatDuration(c.Backoff.Max)))
	add(backoff, "jitter", str(formatFraction(c.Backoff.Jitter)))
	add(conn, "backoff", backoff)
	add(root, "connect", conn)

	stages := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, st := range s.Stages {
		stages.Content = append(stages.Content, stageNode(st))
	}
	add(root, "stages", stages)

	if s.Commands != nil {
		cmd := flow(mapNode())
		add(cmd, "rate", plain(formatRate(s.Commands.Rate)))
		add(cmd, "payload", str(string(s.Commands.Payload)))
		add(root, "commands", cmd)
	}

	if len(s.Thresholds) > 0 {
		th := mapNode()
		// One key per metric, its conditions as a list when there are
		// several: the file form has no duplicate keys.
		byMetric := map[string]*yaml.Node{}
		for _, t := range s.Thresholds {
			expr := t.Raw
			if expr == "" {
				expr = t.Op + " " + strconv.FormatFloat(t.Value, 'g', -1, 64) + t.Unit
			}
			prev, seen := byMetric[t.Metric]
			switch {
			case !seen:
				n := quoted(expr)
				byMetric[t.Metric] = n
				add(th, t.Metric, n)
			case prev.Kind == yaml.ScalarNode:
				first := *prev
				*prev = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle, Content: []*yaml.Node{&first, quoted(expr)}}
			default:
				prev.Content = append(prev.Content, quoted(expr))
			}
		}
		add(root, "thresholds", th)
	}
	return root, nil
}

// Format returns the canonical YAML of the scenario (see MarshalYAML),
// indented by two spaces like the built-ins.
func (s *Scenario) Format() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// stageNode writes the fields a stage of its kind takes, defaults included,
// so that re-reading never applies a different default.
func stageNode(st Stage) *yaml.Node {
	n := flow(mapNode())
	add(n, "kind", str(string(st.Kind)))
	add(n, "name", str(st.Name))
	if st.Kind == StageRamp {
		return n
	}
	if st.Duration != 0 || st.Kind != StageReconnectStorm && st.Kind != StageBurst {
		add(n, "duration", plain(formatDuration(st.Duration)))
	}
	switch st.Kind {
	case StageReconnectStorm:
		add(n, "share", str(formatFraction(st.Share)))
		add(n, "within", plain(formatDuration(st.Within)))
	case StageBurst:
		add(n, "count", plain(strconv.Itoa(st.Count)))
		add(n, "within", plain(formatDuration(st.Within)))
	}
	if st.Every != 0 {
		add(n, "every", plain(formatDuration(st.Every)))
	}
	if st.Rate != 0 {
		add(n, "rate", plain(formatRate(st.Rate)))
	}
	if st.Payload != "" {
		add(n, "payload", str(string(st.Payload)))
	}
	if st.Size != 0 {
		add(n, "size", plain(formatSize(st.Size)))
	}
	return n
}

func mapNode() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"} }

func flow(n *yaml.Node) *yaml.Node { n.Style = yaml.FlowStyle; return n }

// str is a string scalar; yaml.v3 quotes it when it would read as
// something else.
func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// quoted is a double-quoted string scalar, the way thresholds are written.
func quoted(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
}

// plain is a scalar written as is (numbers, booleans, units like 5s).
func plain(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }

func add(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, str(key), v)
}
