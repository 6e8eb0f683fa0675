package result

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/mqttstack/mqttstack/internal/atomicfile"
)

// WriteJSON writes r to path atomically (a reader never sees half a file).
func WriteJSON(path string, r *Result) error {
	data, err := Marshal(r)
	if err != nil {
		return fmt.Errorf("result %s: %w", path, err)
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("writing result %s: %w", path, err)
	}
	return nil
}

// Marshal encodes r as indented JSON with a trailing newline.
func Marshal(r *Result) ([]byte, error) {
	if r.Schema == "" {
		r.Schema = Schema
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// ReadJSON reads a Result written by WriteJSON. It refuses unknown fields,
// other schema versions and histograms that do not decode, naming the file.
func ReadJSON(path string) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading result: %w", err)
	}
	r, err := Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("result %s: %w", path, err)
	}
	r.source = path
	return r, nil
}

// Unmarshal decodes and checks a Result.
func Unmarshal(data []byte) (*Result, error) {
	var probe struct {
		Schema *string `json:"schema"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("not a result file (invalid JSON: %v); give the JSON file `mqttstack run` wrote", err)
	}
	switch {
	case probe.Schema == nil:
		return nil, errors.New(`no "schema" field: not an mqttstack result file; give the JSON file ` + "`mqttstack run`" + ` wrote`)
	case *probe.Schema != Schema:
		return nil, fmt.Errorf("schema %q is not supported (this mqttstack reads %q); read it with the mqttstack version that wrote it, or re-run the scenario", *probe.Schema, Schema)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	r := &Result{}
	if err := dec.Decode(r); err != nil {
		return nil, fmt.Errorf("malformed result: %v; the file was edited or written by another version: re-run the scenario", err)
	}
	if err := r.decodeHistograms(); err != nil {
		return nil, err
	}
	if err := checkShard("meta.shard", r.Meta.Shard); err != nil {
		return nil, err
	}
	for i, src := range r.Meta.Merged {
		if err := checkShard(fmt.Sprintf("meta.merged[%d].shard", i), src.Shard); err != nil {
			return nil, err
		}
	}
	for i := 1; i < len(r.Series); i++ {
		if r.Series[i].T != r.Series[i-1].T+1 {
			return nil, fmt.Errorf("series[%d]: second %d follows %d; the series has one point per second: the file was edited, re-run the scenario",
				i, r.Series[i].T, r.Series[i-1].T)
		}
	}
	if len(r.Series) > maxSeriesSpan {
		return nil, fmt.Errorf("series spans %d seconds, more than a week: the file was edited", len(r.Series))
	}
	return r, nil
}

// maxShards bounds the shard count a result may claim.
const maxShards = 100_000

func checkShard(where string, s Shard) error {
	if s.Count < 1 || s.Count > maxShards || s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("%s: shard index %d of %d is impossible (want 0 <= index < count <= %d): the file was edited", where, s.Index, s.Count, maxShards)
	}
	return nil
}

// decodeHistograms decodes and checks every encoded histogram once, so that
// merge and plots can use them.
func (r *Result) decodeHistograms() error {
	check := func(where string, p *Phase) error {
		for i := range p.Latency {
			s := &p.Latency[i]
			if _, ok := ParseMetric(s.Metric); !ok {
				return fmt.Errorf("%s: unknown latency metric %q", where, s.Metric)
			}
			h, err := decodeHistogram(s.Histogram)
			if err != nil {
				return fmt.Errorf("%s %s: histogram does not decode (%v); the file is damaged: re-run the scenario", where, s.Metric, err)
			}
			if h.LowestTrackableValue() != histLowest || h.HighestTrackableValue() != histHighest || h.SignificantFigures() != histDigits {
				return fmt.Errorf("%s %s: histogram range %d–%dµs/%d digits, want %d–%dµs/%d digits (written by another version?)",
					where, s.Metric, h.LowestTrackableValue(), h.HighestTrackableValue(), h.SignificantFigures(), histLowest, histHighest, histDigits)
			}
			if h.TotalCount() != s.Count {
				return fmt.Errorf("%s %s: histogram holds %d values but count says %d; the file was edited: re-run the scenario", where, s.Metric, h.TotalCount(), s.Count)
			}
			s.h = h
		}
		return nil
	}
	for i := range r.Phases {
		if err := check(fmt.Sprintf("phase %q", r.Phases[i].Name), &r.Phases[i]); err != nil {
			return err
		}
	}
	return check("total", &r.Total)
}

// histogram returns the decoded histogram of s.
func (s *Summary) histogram() (*hdrhistogram.Histogram, error) {
	if s.h != nil {
		return s.h, nil
	}
	h, err := decodeHistogram(s.Histogram)
	if err != nil {
		return nil, err
	}
	s.h = h
	return h, nil
}

// decodeHistogram decodes HdrHistogram's base64 compressed form. The
// library slices its input without checking lengths, so a damaged file
// would panic: that becomes an error here.
func decodeHistogram(enc string) (h *hdrhistogram.Histogram, err error) {
	defer func() {
		if e := recover(); e != nil {
			h, err = nil, fmt.Errorf("damaged encoding (%v)", e)
		}
	}()
	return hdrhistogram.Decode([]byte(enc))
}
