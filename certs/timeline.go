package certs

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Timeline is the expiry report as data (`certs check --json`), for CI
// alerting: every CA, cross certificate, sub-CA, server certificate and
// CRL with its date and rule, the devices grouped by the month their
// certificates expire, and what is due.
type Timeline struct {
	Generated time.Time `json:"generated"`
	Within    string    `json:"within"`
	// Items are every entry but the client certificates, soonest first.
	Items []Expiry `json:"items"`
	// Devices groups the client certificates by expiry month and CA
	// generation.
	Devices []MonthCount `json:"devices_by_month"`
	// Due is every entry inside its rule's window, clients included.
	Due []Expiry `json:"due"`
	// DueKinds counts Due by kind.
	DueKinds map[string]int `json:"due_kinds"`
}

// MonthCount is the number of client certificates of one generation that
// expire in one month.
type MonthCount struct {
	Month      string `json:"month"` // 2029-12
	Generation string `json:"generation,omitempty"`
	Count      int    `json:"count"`
	First      string `json:"first"` // soonest-expiring id of the group
}

// NewTimeline builds the timeline of Check's entries.
func NewTimeline(es []Expiry, within time.Duration, now time.Time) *Timeline {
	t := &Timeline{Generated: now.UTC(), Within: within.String(), Items: []Expiry{}, Devices: []MonthCount{}, Due: []Expiry{}, DueKinds: map[string]int{}}
	idx := map[string]int{}
	for _, e := range es {
		if e.Inside {
			t.Due = append(t.Due, e)
			t.DueKinds[e.Kind]++
		}
		if e.Kind != "client" {
			t.Items = append(t.Items, e)
			continue
		}
		k := e.NotAfter.UTC().Format("2006-01") + "|" + e.Generation
		i, ok := idx[k]
		if !ok {
			i = len(t.Devices)
			idx[k] = i
			t.Devices = append(t.Devices, MonthCount{Month: e.NotAfter.UTC().Format("2006-01"), Generation: e.Generation, First: e.Subject})
		}
		t.Devices[i].Count++
	}
	sort.SliceStable(t.Devices, func(i, j int) bool {
		if t.Devices[i].Month != t.Devices[j].Month {
			return t.Devices[i].Month < t.Devices[j].Month
		}
		return t.Devices[i].Generation < t.Devices[j].Generation
	})
	return t
}

// WriteJSON writes the timeline as indented JSON.
func (t *Timeline) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(t); err != nil {
		return fmt.Errorf("timeline JSON: %w", err)
	}
	return nil
}

// WriteDevices writes the devices-by-month table.
func (t *Timeline) WriteDevices(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICES EXPIRE IN\tCA\tCOUNT\tFIRST")
	for _, m := range t.Devices {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", m.Month, m.Generation, m.Count, m.First)
	}
	return tw.Flush()
}

// DueSummary names what is due, by kind: every CA, server certificate and
// CRL by name, clients by count with the first ten ids.
func (t *Timeline) DueSummary() string {
	var parts, clients []string
	for _, e := range t.Due {
		switch e.Kind {
		case "client":
			clients = append(clients, e.Subject)
		case "crl":
			parts = append(parts, fmt.Sprintf("CRL of %q (refresh from %s)", e.Subject, e.Due.UTC().Format("2006-01-02")))
		default:
			parts = append(parts, fmt.Sprintf("%s %q (%s)", e.Kind, e.Subject, e.NotAfter.UTC().Format("2006-01-02")))
		}
	}
	if len(clients) > 0 {
		more := ""
		if len(clients) > 10 {
			more = fmt.Sprintf(" … and %d more", len(clients)-10)
			clients = clients[:10]
		}
		parts = append(parts, fmt.Sprintf("%d client certificate(s): %s%s", t.DueKinds["client"], strings.Join(clients, ", "), more))
	}
	return strings.Join(parts, "; ")
}
