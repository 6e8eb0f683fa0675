// Package security is the security regression catalog (docs/SECURITY.md,
// written from Catalog() by WriteCatalog): a set of named checks, each an attack against a running stack (local or
// deployed) whose verdict is decided by what the broker actually delivers,
// never by what it acknowledges. Mosquitto 2.0.11 grants denied SUBSCRIBEs and
// PUBACKs denied 3.1.1 PUBLISHes, so every isolation check proves
// non-delivery with a canary and a barrier seen by an independent watcher.
//
// Every check carries a positive control. When the control fails (the
// barrier never arrives, the legitimate client cannot connect) the outcome is
// Inconclusive, which fails a run exactly like Fail: a check never passes
// because nothing worked.
package security

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Status is the verdict of one check.
type Status int

const (
	// Pass: the attack was made, the positive control worked, and the
	// broker did not do the insecure thing.
	Pass Status = iota
	// Fail: the attack succeeded (a canary was delivered, a weak handshake
	// completed, a hardening directive is missing).
	Fail
	// Inconclusive: the positive control failed, so nothing was proven. It
	// fails the run.
	Inconclusive
	// Skipped: the check does not apply to this target (a host-side check
	// against a remote target, a flood without --allow-load). Never a pass.
	Skipped
)

func (s Status) String() string {
	switch s {
	case Pass:
		return "PASS"
	case Fail:
		return "FAIL"
	case Inconclusive:
		return "INCONCLUSIVE"
	case Skipped:
		return "SKIPPED"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// MarshalText makes Status readable in JSON.
func (s Status) MarshalText() ([]byte, error) { return []byte(strings.ToLower(s.String())), nil }

// UnmarshalText reads what MarshalText wrote.
func (s *Status) UnmarshalText(b []byte) error {
	for _, v := range []Status{Pass, Fail, Inconclusive, Skipped} {
		if strings.EqualFold(string(b), v.String()) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("unknown status %q", b)
}

// Outcome is what one run of one check found. Evidence is one line.
type Outcome struct {
	Status   Status
	Evidence string
	Duration time.Duration
}

// Check is one named attack of the catalog.
type Check struct {
	ID     string // e.g. "ACL-03"
	Tier   int    // 1: every CI run; 2: staging/nightly
	Title  string
	Attack string // what the check does, one sentence
	Fix    string // the directive that makes it pass
	// Proves says what a PASS proves (the catalog document prints it).
	Proves string
	// Gaps are the known gaps of Mosquitto 2.0.11 around this check ("":
	// none known).
	Gaps string
	// Guards names the finding (F1…F10 of the catalog) or CVE the check
	// guards against ("": general hardening).
	Guards string
	// Host says the check reads the stack's host (configuration, ACL,
	// sockets, CRL files) through host.Host: without host access it is
	// skipped, or for NET-01/02 limited to what it sees from outside.
	Host bool
	// Actors are the roles of the client identities the check uses
	// ("a", "b", ...); Env.Actor(ID, role) names them and Prepare issues
	// them. Each check has its own, so checks can run concurrently without
	// kicking each other (use_username_as_clientid makes the CN the id).
	Actors []string
	// Negative lists the CI-only negative identities the check needs
	// (see NegativeKind); Prepare issues them under the CI sub-CA (those of
	// the broker's password file under the root CA).
	Negative []NegativeKind
	// Standalone checks do not use the watcher; they still run when the
	// watcher cannot connect (e.g. a broker that no longer asks for client
	// certificates), every other check is then Inconclusive.
	Standalone bool
	// Exclusive checks run alone, after all the others.
	Exclusive bool
	// Timeout bounds Run (default 60 s).
	Timeout time.Duration
	// Run performs the attack. A nil Run means "catalogued, not
	// implemented": the runner reports Skipped, never Pass.
	Run func(ctx context.Context, e *Env) Outcome
}

func pass(format string, a ...any) Outcome {
	return Outcome{Status: Pass, Evidence: oneLine(fmt.Sprintf(format, a...))}
}
func fail(format string, a ...any) Outcome {
	return Outcome{Status: Fail, Evidence: oneLine(fmt.Sprintf(format, a...))}
}
func inconclusive(format string, a ...any) Outcome {
	return Outcome{Status: Inconclusive, Evidence: oneLine(fmt.Sprintf(format, a...))}
}
func skipped(format string, a ...any) Outcome {
	return Outcome{Status: Skipped, Evidence: oneLine(fmt.Sprintf(format, a...))}
}

// oneLine keeps evidence to one line so the table, JUnit and logs stay tidy.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:397] + "..."
	}
	return s
}

// Catalog returns every check, tier 1 and tier 2, sorted by id.
func Catalog() []Check {
	var all []Check
	for _, group := range [][]Check{
		netChecks(), tlsChecks(), crtChecks(), authChecks(), aclChecks(),
		sesChecks(), proChecks(), dosChecks(), webChecks(), opsChecks(),
	} {
		all = append(all, group...)
	}
	sort.Slice(all, func(i, j int) bool { return idLess(all[i].ID, all[j].ID) })
	return all
}

var familyOrder = map[string]int{"NET": 0, "TLS": 1, "CRT": 2, "AUTH": 3, "ACL": 4, "SES": 5, "PRO": 6, "DOS": 7, "WEB": 8, "OPS": 9}

func idLess(a, b string) bool {
	fa, na, _ := strings.Cut(a, "-")
	fb, nb, _ := strings.Cut(b, "-")
	if fa != fb {
		return familyOrder[fa] < familyOrder[fb]
	}
	return na < nb
}

// Select returns the checks with Tier <= tier, restricted to only when it is
// non-empty. Unknown ids in only are an error listing all of them.
func Select(all []Check, tier int, only []string) ([]Check, error) {
	want := map[string]bool{}
	for _, id := range only {
		id = strings.ToUpper(strings.TrimSpace(id))
		if id != "" {
			want[id] = true
		}
	}
	known := map[string]bool{}
	var out []Check
	for _, c := range all {
		known[c.ID] = true
		if len(want) > 0 {
			if want[c.ID] {
				out = append(out, c)
			}
			continue
		}
		if c.Tier <= tier {
			out = append(out, c)
		}
	}
	var unknown []string
	for id := range want {
		if !known[id] {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("unknown check ids: %s", strings.Join(unknown, ", "))
	}
	return out, nil
}
