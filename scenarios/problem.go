package scenarios

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/go-multierror"
)

// Problem is one thing wrong with a scenario, located as precisely as the
// decoder knows it. Parse, Load and Validate return every problem at once
// as a *multierror.Error whose Errors are *Problem, one per line when
// printed; use Problems to get them back.
type Problem struct {
	File string // as given to Parse or Load; may be empty
	Line int    // 1-based; 0 when unknown (a scenario built in Go)
	Path string // field path, "stages[2].every"; empty for the whole file
	Msg  string // what is wrong
	Fix  string // what to write instead; may be empty

	col int // column, to order problems on one line as they appear
}

// Error formats the problem as "file:line: path: message (fix)", leaving out
// the parts that are unknown.
func (p *Problem) Error() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	if p.Fix != "" {
		b.WriteString(" (")
		b.WriteString(p.Fix)
		b.WriteString(")")
	}
	return b.String()
}

// Problems returns the problems in err (as returned by Parse, Load or
// Validate), or nil when err holds none.
func Problems(err error) []*Problem {
	var out []*Problem
	var me *multierror.Error
	if errors.As(err, &me) {
		for _, e := range me.Errors {
			out = append(out, Problems(e)...)
		}
		return out
	}
	var p *Problem
	if errors.As(err, &p) {
		return []*Problem{p}
	}
	return nil
}

// problemList collects problems and turns them into one error.
type problemList []*Problem

// err sorts the problems by line (problems without a line last, in the
// order found) and returns them as a *multierror.Error printed one per
// line, or nil: ErrorOrNil never yields a typed nil.
func (l problemList) err() error {
	if len(l) == 0 {
		return nil
	}
	sorted := append(problemList(nil), l...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.Line == 0 || b.Line == 0 {
			return a.Line != 0 && b.Line == 0
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.col < b.col
	})
	var me *multierror.Error
	for _, p := range sorted {
		me = multierror.Append(me, p)
	}
	me.ErrorFormat = formatProblems
	return me.ErrorOrNil()
}

// formatProblems prints one problem per line, the form editors and CI logs
// understand (file:line: ...).
func formatProblems(es []error) string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}
