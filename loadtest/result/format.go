package result

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// FormatMicros writes a latency in microseconds with three significant
// digits and a unit a person reads at a glance: 812µs, 1.25ms, 12.3ms, 1.23s.
func FormatMicros(us float64) string {
	switch {
	case us < 1000:
		return sig3(us) + "µs"
	case us < 1e6:
		return sig3(us/1e3) + "ms"
	case us < 60e6:
		return sig3(us/1e6) + "s"
	default:
		return (time.Duration(us) * time.Microsecond).Round(time.Second).String()
	}
}

// sig3 formats v with three significant digits, without trailing zeros.
func sig3(v float64) string {
	if v == 0 {
		return "0"
	}
	d := 2 - int(math.Floor(math.Log10(math.Abs(v))))
	if d < 0 {
		d = 0
	}
	s := strconv.FormatFloat(v, 'f', d, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// FormatValue writes a threshold value in its unit ("ms", "%", "/s", "").
func FormatValue(v float64, unit string) string {
	switch unit {
	case "ms":
		return FormatMicros(v * 1000)
	case "%":
		return pct(v)
	case "/s":
		return sig3(v) + "/s"
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return sig3(v)
}

// pct writes a percentage with enough digits that 99.95% is not rounded to
// 100%.
func pct(v float64) string {
	s := strconv.FormatFloat(v, 'f', 2, 64)
	if v > 99 && v < 100 {
		s = strconv.FormatFloat(math.Floor(v*1000)/1000, 'f', 3, 64)
	}
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}

// FormatBytes writes a byte count in binary units.
func FormatBytes(b float64) string {
	const k = 1024
	switch {
	case b < k:
		return sig3(b) + " B"
	case b < k*k:
		return sig3(b/k) + " KiB"
	case b < k*k*k:
		return sig3(b/k/k) + " MiB"
	}
	return sig3(b/k/k/k) + " GiB"
}

// formatSeconds writes a phase length: 20s, 1m30s, 2.5s.
func formatSeconds(s float64) string {
	if s < 10 {
		return sig3(s) + "s"
	}
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

// formatCount writes an integer with thin thousands separators for reading.
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// ratio writes a/b as a percentage, or "–" without data.
func ratio(a, b int64) string {
	if b == 0 {
		return "–"
	}
	return pct(100 * float64(a) / float64(b))
}

// rate writes n/secs per second.
func rate(n int64, secs float64) string {
	if secs <= 0 {
		return "–"
	}
	return sig3(float64(n)/secs) + "/s"
}

// fmtErr keeps the first write error, so reporters write straight through
// and check once.
type fmtErr struct {
	w   interface{ Write([]byte) (int, error) }
	err error
}

func (f *fmtErr) printf(format string, a ...any) {
	if f.err == nil {
		_, f.err = fmt.Fprintf(f.w, format, a...)
	}
}
