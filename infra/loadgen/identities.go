package loadgen

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/mqttstack/mqttstack/certs"
)

// shardPlan is what one shard's Secret will hold.
type shardPlan struct {
	index    int
	from, to int // fleet indices [from, to), see ShardRange
	// data maps Secret keys (file names under <pki>/clients/) to contents.
	data map[string]string
	// bytes counts keys and values, the way secretBudget is defined.
	bytes int
}

// identityFS reads client identities from a PKI directory laid out as in
// docs/CONTRACTS.md (<pki>/clients/<id>.crt, .key, .pass).
type identityFS struct {
	pki fs.FS
	// passwords: the .pass file is required (wss transport) rather than
	// copied when present.
	passwords bool
	missing   []string
}

// add copies the files of identity id into data and returns the bytes
// added. Missing required files are remembered, not returned, so that one
// deploy reports all of them.
func (r *identityFS) add(data map[string]string, id string) int {
	n := 0
	for _, ext := range []string{".crt", ".key", ".pass"} {
		name := id + ext
		b, err := fs.ReadFile(r.pki, path.Join("clients", name))
		if err != nil {
			if ext == ".pass" && !r.passwords && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			r.missing = append(r.missing, "clients/"+name)
			continue
		}
		data[name] = string(b)
		n += len(name) + len(b)
	}
	return n
}

// planInput is what planShards needs to know about the run.
type planInput struct {
	pki      fs.FS
	prefix   string
	devices  int
	shards   int
	observer string
	// backend is shipped whenever the target names one: `mqttstack run`
	// checks for the shard's backend identity even when the scenario
	// sends no commands.
	backend   string
	passwords bool
}

// planShards reads every shard's identities and checks each shard's Secret
// against the size limit. All problems come back in one error: every
// missing file (the first few, and a count), every shard that is too large,
// and the smallest shard count that would fit.
func planShards(in planInput) ([]shardPlan, error) {
	r := &identityFS{pki: in.pki, passwords: in.passwords}
	plans := make([]shardPlan, in.shards)
	// deviceBytes[j] is the size of device j's files, for the suggestion.
	deviceBytes := make([]int, in.devices)
	maxExtra := 0
	for i := range plans {
		from, to := ShardRange(in.devices, i, in.shards)
		p := shardPlan{index: i, from: from, to: to, data: map[string]string{}}
		// The padding width comes from the whole fleet so that every
		// shard names its devices as the unsharded fleet would.
		for j, id := range certs.DeviceIDsWidth(in.prefix, from+1, to-from, in.devices) {
			b := r.add(p.data, id)
			deviceBytes[from+j] = b
			p.bytes += b
		}
		extra := r.add(p.data, ShardIdentity(in.observer, i, in.shards))
		if in.backend != "" {
			extra += r.add(p.data, ShardIdentity(in.backend, i, in.shards))
		}
		maxExtra = max(maxExtra, extra)
		p.bytes += extra
		plans[i] = p
	}

	var errs []error
	if len(r.missing) > 0 {
		errs = append(errs, missingError(r.missing, in))
	}
	var tooBig []string
	for _, p := range plans {
		if p.bytes > secretBudget {
			tooBig = append(tooBig, fmt.Sprintf("shard %d (%d devices) needs %s", p.index, p.to-p.from, formatBytes(p.bytes)))
		}
	}
	if len(tooBig) > 0 {
		msg := fmt.Sprintf("shards: %d is too few: a shard's identities must fit one Kubernetes Secret (we allow %s of its 1 MiB limit): %s",
			in.shards, formatBytes(secretBudget), strings.Join(tooBig, "; "))
		if n := minShards(deviceBytes, maxExtra, in.shards); n > 0 {
			msg += fmt.Sprintf("; use at least %d shards (pulumi config set shards %d)", n, n)
		} else {
			msg += "; even one device per shard does not fit: are these really client certificates?"
		}
		errs = append(errs, errors.New(msg))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return plans, nil
}

// minShards is the smallest shard count above have whose every shard fits
// secretBudget, assuming each shard adds extra bytes of observer/backend
// identities; 0 when none does.
func minShards(deviceBytes []int, extra, have int) int {
	total := len(deviceBytes)
	prefix := make([]int, total+1)
	for j, b := range deviceBytes {
		prefix[j+1] = prefix[j] + b
	}
	// A lower bound first, so that a fleet of a million does not try every
	// count from have+1.
	start := have + 1
	if budget := secretBudget - extra; budget > 0 {
		start = max(start, (prefix[total]+budget-1)/budget)
	}
	for n := start; n <= total; n++ {
		fits := true
		for i := 0; i < n && fits; i++ {
			from, to := ShardRange(total, i, n)
			fits = prefix[to]-prefix[from]+extra <= secretBudget
		}
		if fits {
			return n
		}
	}
	return 0
}

func missingError(missing []string, in planInput) error {
	sort.Strings(missing)
	const show = 5
	list := strings.Join(missing[:min(show, len(missing))], ", ")
	if len(missing) > show {
		list += fmt.Sprintf(" and %d more", len(missing)-show)
	}
	// Say how to issue what is missing: devices by count, the shards'
	// observer/backend identities by name (those also need the broker's
	// ACL to list them).
	devices := false
	var others []string
	for _, m := range missing {
		id := strings.TrimSuffix(path.Base(m), path.Ext(m))
		if strings.HasPrefix(id, in.prefix) {
			devices = true
		} else if !slices.Contains(others, id) {
			others = append(others, id)
		}
	}
	var hints []string
	if devices {
		hints = append(hints, fmt.Sprintf("mqttstack certs issue --count %d --prefix %s", in.devices, in.prefix))
	}
	if len(others) > 0 {
		hints = append(hints, fmt.Sprintf("mqttstack certs issue --id %s, and add them to the stack's observers/backends so the broker's ACL lets them in (shard k of n>1 connects as <observer>-<k+1>)", strings.Join(others, ",")))
	}
	return fmt.Errorf("pkiDir: %d identity files are missing: %s (issue them: %s)", len(missing), list, strings.Join(hints, "; "))
}

func formatBytes(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
