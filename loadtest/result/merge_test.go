package result

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestMergeEqualsOneRecorder is the contract of Merge: shards recorded
// separately and merged give the same histograms, percentiles, counters,
// series and errors as one Recorder that saw every event.
func TestMergeEqualsOneRecorder(t *testing.T) {
	const devices = 400
	whole := synthetic(t, 0, 1, 0, devices)
	for _, n := range []int{1, 2, 3, 7} {
		t.Run(fmt.Sprintf("shards=%d", n), func(t *testing.T) {
			var shards []*Result
			for k := range n {
				from, to := k*devices/n, (k+1)*devices/n
				res := synthetic(t, k, n, from, to)
				// Through JSON, as the CLI does: histograms come back from
				// their encoded form.
				path := filepath.Join(t.TempDir(), "shard.json")
				if err := WriteJSON(path, res); err != nil {
					t.Fatal(err)
				}
				back, err := ReadJSON(path)
				if err != nil {
					t.Fatal(err)
				}
				shards = append(shards, back)
			}
			merged, err := Merge(shards...)
			if err != nil {
				t.Fatal(err)
			}
			// The tool's own CPU and memory are per process: shards sum
			// them (checked below), a single process would not.
			var shardCPU float64
			for _, s := range shards {
				shardCPU += s.Total.CPUSeconds
			}
			if d := merged.Total.CPUSeconds - shardCPU; d > 1e-9 || d < -1e-9 || shardCPU == 0 {
				t.Errorf("merged CPU %v, want the shards' sum %v", merged.Total.CPUSeconds, shardCPU)
			}
			same(t, "phases", withoutCost(merged).Phases, withoutCost(whole).Phases)
			same(t, "total", withoutCost(merged).Total, withoutCost(whole).Total)
			same(t, "series", withoutCost(merged).Series, withoutCost(whole).Series)
			same(t, "errors", merged.Errors, whole.Errors)
			if merged.Meta.Start != whole.Meta.Start || merged.Meta.End != whole.Meta.End || len(merged.Meta.Merged) != n {
				t.Errorf("meta = %+v", merged.Meta)
			}
			var sum Delivery
			for _, s := range shards {
				sum.Expected += s.Delivery.Expected
				sum.Lost += s.Delivery.Lost
				sum.Received += s.Delivery.Received
			}
			if !reflect.DeepEqual(merged.Delivery, sum) {
				t.Errorf("delivery = %+v, want the sum %+v", merged.Delivery, sum)
			}
			if got, want := merged.Meta.Devices, (Devices{Prefix: "dev-", From: 0, To: devices, Count: devices}); got != want {
				t.Errorf("devices = %+v, want %+v", got, want)
			}
		})
	}
}

// withoutCost returns a copy of r without the tool's per-process usage.
func withoutCost(r *Result) *Result {
	c := *r
	c.Phases = append([]Phase(nil), r.Phases...)
	c.Series = append([]Second(nil), r.Series...)
	for i := range c.Phases {
		c.Phases[i].CPUSeconds = 0
	}
	c.Total.CPUSeconds = 0
	for i := range c.Series {
		c.Series[i].CPUSeconds, c.Series[i].RSSBytes = 0, 0
	}
	return &c
}

func same(t *testing.T, what string, got, want any) {
	t.Helper()
	a, _ := json.MarshalIndent(got, "", " ")
	b, _ := json.MarshalIndent(want, "", " ")
	if string(a) != string(b) {
		t.Errorf("merged %s differ from one recorder's:\n%s", what, firstDiff(string(a), string(b)))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n  got:  %s\n  want: %s", i+1, al[i], bl[i])
		}
	}
	return "lengths differ"
}

// TestMergeShardsEndingApart: a shard that finished earlier keeps its
// connected devices in the merged series, as one Recorder would.
func TestMergeShardsEndingApart(t *testing.T) {
	record := func(from, to int, end float64) *Result {
		r := NewRecorder(syntheticMeta(0, 1, from, to))
		feed(r, from, to)
		return r.Finish(at(end), Final{})
	}
	whole := record(0, 200, 57)
	a := record(0, 100, 50)
	b := record(100, 200, 57)
	a.Meta.Shard, b.Meta.Shard = Shard{Index: 0, Count: 2}, Shard{Index: 1, Count: 2}
	merged, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "series", withoutCost(merged).Series, withoutCost(whole).Series)
	same(t, "phases", withoutCost(merged).Phases, withoutCost(whole).Phases)
	if last := merged.Series[len(merged.Series)-1]; last.Active == 0 || last.T != at(57).Unix() {
		t.Errorf("last merged second = %+v", last)
	}
}

func TestMergeRefuses(t *testing.T) {
	a := synthetic(t, 0, 2, 0, 50)
	a.source = "a.json"
	tests := []struct {
		name string
		b    func() *Result
		want string
	}{
		{"other scenario", func() *Result {
			b := synthetic(t, 1, 2, 50, 100)
			b.Meta.ScenarioHash = "sha256:other"
			return b
		}, "hash"},
		{"same shard twice", func() *Result { return synthetic(t, 0, 2, 50, 100) }, "both shard 1/2"},
		{"overlapping devices", func() *Result { return synthetic(t, 1, 2, 40, 100) }, "dev-40 … dev-49"},
		{"different shard counts", func() *Result { return synthetic(t, 1, 3, 50, 100) }, "one of 2 shards"},
		{"same device list", func() *Result {
			b := synthetic(t, 1, 2, 50, 100)
			b.Meta.Devices = Devices{ListHash: "h1", Count: 50}
			return b
		}, "identical device lists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b()
			b.source = "b.json"
			if tt.name == "same device list" {
				a2 := *a
				a2.Meta.Devices = Devices{ListHash: "h1", Count: 50}
				a = &a2
				defer func() { a = synthetic(t, 0, 2, 0, 50); a.source = "a.json" }()
			}
			_, err := Merge(a, b)
			if err == nil {
				t.Fatalf("Merge succeeded, want an error mentioning %q", tt.want)
			}
			for _, s := range []string{"a.json", "b.json", tt.want} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
	if _, err := Merge(); err == nil {
		t.Error("Merge() of nothing succeeded")
	}
}

func TestMergeOfMergedRefusesItsOwnShards(t *testing.T) {
	a, b := synthetic(t, 0, 2, 0, 50), synthetic(t, 1, 2, 50, 100)
	ab, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(ab, b); err == nil || !strings.Contains(err.Error(), "shard 2/2") {
		t.Errorf("merging a merged result with one of its shards: err = %v", err)
	}
}
