package scenarios

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// builtinFS holds the scenarios shipped in the binary, one file per name.
//
//go:embed builtin/*.yaml
var builtinFS embed.FS

// BuiltinNames lists the built-in scenarios, sorted.
func BuiltinNames() []string {
	entries, err := fs.ReadDir(builtinFS, "builtin")
	if err != nil {
		// The directory is embedded at build time; it cannot be missing.
		panic("scenarios: embedded builtin directory: " + err.Error())
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Builtin parses the built-in scenario name; problems name it "name.yaml".
func Builtin(name string) (*Scenario, error) {
	data, err := BuiltinSource(name)
	if err != nil {
		return nil, err
	}
	return Parse(name+".yaml", data)
}

// BuiltinSource returns the YAML of a built-in scenario, to print or to
// copy as the start of one's own.
func BuiltinSource(name string) ([]byte, error) {
	if !validName(name) || !contains(BuiltinNames(), name) {
		return nil, fmt.Errorf("no built-in scenario %q (built-ins: %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	return builtinFS.ReadFile(path.Join("builtin", name+".yaml"))
}

// Resolve returns the scenario an argument names: a path when it has a
// directory or a .yaml/.yml extension, else a built-in, else an existing
// file of that name.
func Resolve(arg string) (*Scenario, error) {
	file, data, err := ResolveSource(arg)
	if err != nil {
		return nil, err
	}
	return Parse(file, data)
}

// ResolveSource is Resolve without the parse: the file name problems will
// use ("launch.yaml" for a built-in, the path as given for a file) and the
// bytes, for callers that ship the exact scenario elsewhere (a Kubernetes
// ConfigMap) and parse it there.
func ResolveSource(arg string) (file string, data []byte, err error) {
	ext := filepath.Ext(arg)
	isPath := strings.ContainsRune(arg, '/') || strings.ContainsRune(arg, filepath.Separator) || ext == ".yaml" || ext == ".yml"
	if !isPath && contains(BuiltinNames(), arg) {
		data, err := BuiltinSource(arg)
		return arg + ".yaml", data, err
	}
	if !isPath {
		if st, err := os.Stat(arg); err != nil || st.IsDir() {
			return "", nil, fmt.Errorf("%q is neither a built-in scenario (%s) nor a file", arg, strings.Join(BuiltinNames(), ", "))
		}
	}
	data, err = readFile(arg)
	return arg, data, err
}
