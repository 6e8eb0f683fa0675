package scenarios

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The human units of the scenario files. Each parser returns an error whose
// text completes "<path>: " and a Problem adds the fix; they never panic on
// any input (FuzzParse holds them to it).

// parseDuration reads "500ms", "2m", "1h30m". A bare number is refused:
// "5" could mean seconds or milliseconds, and guessing wrong is a test that
// runs a thousand times too long.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil && s != "0" {
		return 0, fmt.Errorf("%q has no unit", s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	return d, nil
}

// formatDuration writes d so that parseDuration reads it back exactly.
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	// "2m0s" reads better as "2m", "1h0m0s" as "1h".
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
		if t, ok := strings.CutSuffix(s, "h0m"); ok {
			s = t + "h"
		}
	}
	return s
}

// rateUnits are the accepted denominators of a rate, in seconds.
var rateUnits = map[string]float64{
	"s": 1, "sec": 1, "second": 1,
	"m": 60, "min": 60, "minute": 60,
	"h": 3600, "hour": 3600,
}

// parseRate reads "800/s", "10/m", "0.5/s" into events per second.
func parseRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	num, unit, ok := strings.Cut(s, "/")
	if !ok {
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return 0, fmt.Errorf("%q has no unit", s)
		}
		return 0, fmt.Errorf("%q is not a rate", s)
	}
	per, ok := rateUnits[strings.TrimSpace(unit)]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit /%s", s, strings.TrimSpace(unit))
	}
	v, err := parseFinite(strings.TrimSpace(num))
	if err != nil {
		return 0, fmt.Errorf("%q is not a rate", s)
	}
	return v / per, nil
}

// formatRate writes a per-second rate so that parseRate reads it back
// exactly.
func formatRate(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64) + "/s"
}

// parseFraction reads "20%" or a plain fraction "0.2" into 0.2. A plain
// number above 1 is refused: "share: 20" is almost surely meant as 20%.
func parseFraction(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if num, ok := strings.CutSuffix(s, "%"); ok {
		v, err := parseFinite(strings.TrimSpace(num))
		if err != nil {
			return 0, fmt.Errorf("%q is not a percentage", s)
		}
		return v / 100, nil
	}
	v, err := parseFinite(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a percentage", s)
	}
	if v > 1 || v < 0 {
		return 0, fmt.Errorf("%s is not a fraction between 0 and 1", s)
	}
	return v, nil
}

// formatFraction writes a fraction as a percentage when that reads back
// exactly, else as the plain fraction.
func formatFraction(v float64) string {
	pct := strconv.FormatFloat(v*100, 'g', -1, 64) + "%"
	if back, err := parseFraction(pct); err == nil && back == v {
		return pct
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// sizeUnits are the accepted size suffixes, longest first so that "KiB"
// is not read as "B".
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"KB", 1000}, {"MB", 1000 * 1000},
	{"kB", 1000}, {"B", 1},
}

// parseSize reads "256", "256B", "1KiB", "1KB".
func parseSize(s string) (int, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	num := s
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	if n > math.MaxInt32/mult || n < -math.MaxInt32/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int(n * mult), nil
}

// formatSize writes a size in bytes, or KiB/MiB when exact.
func formatSize(n int) string {
	switch {
	case n != 0 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n != 0 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n)
}

// parseInt reads a whole number; "5_000" is accepted, as YAML 1.1 did.
func parseInt(s string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%s is out of range", s)
	}
	if err != nil || strings.HasPrefix(s, "_") {
		if _, ferr := strconv.ParseFloat(s, 64); ferr == nil {
			return 0, fmt.Errorf("%s is not a whole number", s)
		}
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if n > math.MaxInt32 || n < math.MinInt32 {
		return 0, fmt.Errorf("%s is out of range", s)
	}
	return int(n), nil
}

// parseFinite is strconv.ParseFloat without NaN, infinities and hex floats,
// none of which a person means in a scenario.
func parseFinite(s string) (float64, error) {
	if s == "" || strings.ContainsAny(s, "xXpP_") {
		return 0, errors.New("not a number")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, errors.New("not a number")
	}
	return v, nil
}
