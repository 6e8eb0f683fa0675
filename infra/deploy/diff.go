package deploy

import (
	"reflect"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
)

type apiStep = apitype.StepEventMetadata

// stepDiffs names what a step changes: the engine's detailed diff (the
// provider's per-file diff for HostConfig), else its changed keys; for a
// refresh, the outputs that differ between the state and what the host
// holds now (drift). Values are never shown: some are secrets.
func stepDiffs(m apiStep) []string {
	var out []string
	if m.Op == "refresh" {
		// What the host holds now against what the state held: drift only.
		if m.Old != nil && m.New != nil {
			out = outputDrift("", m.Old.Outputs, m.New.Outputs)
		}
	} else if len(m.DetailedDiff) > 0 {
		for k, d := range m.DetailedDiff {
			out = append(out, diffName(k)+kindSuffix(d.Kind))
		}
	} else if len(m.Diffs) > 0 {
		for _, k := range m.Diffs {
			out = append(out, diffName(k))
		}
	} else if m.Op == "update" && m.Old != nil && m.New != nil {
		out = outputDrift("", m.Old.Outputs, m.New.Outputs)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// outputDrift lists the paths whose values differ, one level into maps
// (a map of file path to hash names each file).
func outputDrift(prefix string, old, new map[string]any) []string {
	var out []string
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range new {
		keys[k] = true
	}
	for k := range keys {
		if strings.HasPrefix(k, "__") {
			continue
		}
		o, n := old[k], new[k]
		if reflect.DeepEqual(o, n) {
			continue
		}
		om, ok1 := o.(map[string]any)
		nm, ok2 := n.(map[string]any)
		if ok1 && ok2 && prefix == "" {
			out = append(out, outputDrift(k+".", om, nm)...)
			continue
		}
		out = append(out, diffName(prefix+k))
	}
	return out
}

// diffName makes a property path readable: files["/etc/mosquitto/acl"]
// and files./etc/mosquitto/acl both become /etc/mosquitto/acl (file).
func diffName(k string) string {
	if rest, ok := strings.CutPrefix(k, "secretFiles"); ok {
		if n := diffName("files" + rest); n != "files"+rest {
			return n + " (secret)"
		}
	}
	for _, p := range []string{"files", "fileHashes", "hashes"} {
		if rest, ok := strings.CutPrefix(k, p); ok {
			rest = strings.TrimPrefix(rest, ".")
			rest = strings.TrimPrefix(rest, "[\"")
			rest = strings.TrimSuffix(rest, "\"]")
			if strings.HasPrefix(rest, "/") {
				if i := strings.Index(rest, "\"]"); i >= 0 { // files["/x"].content
					rest = rest[:i]
				}
				return rest
			}
		}
	}
	return k
}

func kindSuffix(k apitype.DiffKind) string {
	switch k {
	case apitype.DiffAdd:
		return " (new)"
	case apitype.DiffDelete:
		return " (removed)"
	case apitype.DiffAddReplace, apitype.DiffDeleteReplace, apitype.DiffUpdateReplace:
		return " (replaces the resource)"
	}
	return ""
}

type (
	apiPropertyDiff = apitype.PropertyDiff
	apiState        = apitype.StepEventStateMetadata
)
