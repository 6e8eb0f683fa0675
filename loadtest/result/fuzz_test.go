package result

import (
	"testing"
)

// FuzzUnmarshal: a result file from anywhere (edited, truncated, another
// tool's) gives an error, never a panic, and what is accepted renders.
//
//	go test ./loadtest/result -run '^$' -fuzz FuzzUnmarshal -fuzztime 30s
func FuzzUnmarshal(f *testing.F) {
	good, err := Marshal(synthetic(f, 0, 1, 0, 10))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"schema": "mqttstack.result/v1"}`))
	f.Add([]byte(`{"schema": "mqttstack.result/v1", "total": {"latency": [{"metric": "tcp", "count": 0, "histogram": "AA=="}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Unmarshal(data)
		if err != nil {
			return
		}
		if err := WriteConsole(discard{}, r, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := Merge(r); err != nil {
			return
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
