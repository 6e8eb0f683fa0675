package hostconfig

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// This file is the one reader of the broker's rendered configuration: a
// mosquitto.conf with its include_dir files in the order Mosquitto 2.0.11
// reads them, and the ACL files it names. The linter (lint.go), the local
// stack, the security checks and the tests all read through it, from any
// Source: this machine's files, an fs.FS, or a host.Host over SSH.

// Source is where configuration files are read from. A host.Host is one;
// FS adapts an fs.FS.
type Source interface {
	ReadFile(ctx context.Context, path string) ([]byte, error)
}

// DirSource is a Source that can also list a directory (names only, any
// order): needed to follow include_dir. infra/local's and host/sshhost's
// hosts implement it.
type DirSource interface {
	Source
	ReadDir(ctx context.Context, dir string) ([]string, error)
}

// FS reads absolute paths from fsys, rooted at "/" (os.DirFS("/") for this
// machine, an fstest.MapFS in tests).
func FS(fsys fs.FS) DirSource { return fsSource{fsys} }

type fsSource struct{ fsys fs.FS }

func (s fsSource) name(p string) string {
	p = strings.TrimPrefix(path.Clean(p), "/")
	if p == "" {
		return "."
	}
	return p
}

func (s fsSource) ReadFile(ctx context.Context, p string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return fs.ReadFile(s.fsys, s.name(p))
}

func (s fsSource) ReadDir(ctx context.Context, dir string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := fs.ReadDir(s.fsys, s.name(dir))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Finding is one lint result, located in a file. Line 0 means the file as a
// whole (something missing).
type Finding struct {
	File string
	Line int
	Msg  string
}

func (f Finding) String() string {
	if f.Line == 0 {
		return f.File + ": " + f.Msg
	}
	return f.File + ":" + strconv.Itoa(f.Line) + ": " + f.Msg
}

// Directive is one option line of a mosquitto configuration.
type Directive struct {
	Key   string
	Value string // the rest of the line, trimmed (2.0.11 keeps a trailing "# x" in it)
	File  string
	Line  int
	// Listener is the index in BrokerConfig.Listeners of the listener
	// block the line is in, -1 before the first listener.
	Listener int
}

// Args is Value split on blanks.
func (d Directive) Args() []string { return strings.Fields(d.Value) }

// At is "file:line" of the directive.
func (d Directive) At() string { return d.File + ":" + strconv.Itoa(d.Line) }

// Listener is one `listener PORT [ADDRESS]` block.
type Listener struct {
	Directive             // the listener line
	Port      int         // -1 if not a number
	Address   string      // "" when the line names none
	Options   []Directive // the lines that follow it up to the next listener
}

// Get returns the last value of key in the listener's block (the one the
// broker keeps) and whether it is set.
func (l Listener) Get(key string) (string, bool) {
	v, ok := "", false
	for _, d := range l.Options {
		if d.Key == key {
			v, ok = d.Value, true
		}
	}
	return v, ok
}

// Protocol is the listener's protocol ("mqtt" unless set).
func (l Listener) Protocol() string {
	if v, ok := l.Get("protocol"); ok {
		return v
	}
	return "mqtt"
}

// MosquittoConf is a broker configuration as Mosquitto reads it.
type BrokerConfig struct {
	Path string // the main file
	// Files are the main file, then every include_dir file in the
	// broker's order.
	Files      []string
	Directives []Directive // in the broker's order
	Listeners  []Listener
	// problems are what the reader found that the broker would refuse or
	// misread (reported by Lint).
	problems []Finding
}

// Values returns every value of key in order.
func (c *BrokerConfig) Values(key string) []string {
	var out []string
	for _, d := range c.Directives {
		if d.Key == key {
			out = append(out, d.Value)
		}
	}
	return out
}

// Find returns every directive with key, in order.
func (c *BrokerConfig) Find(key string) []Directive {
	var out []Directive
	for _, d := range c.Directives {
		if d.Key == key {
			out = append(out, d)
		}
	}
	return out
}

// ParseBrokerConfig parses one file without following include_dir (an
// include_dir line stays a directive and is reported by Lint).
func ParseBrokerConfig(file string, b []byte) *BrokerConfig {
	c := &BrokerConfig{Path: file, Files: []string{file}}
	for _, d := range directivesOf(file, b) {
		c.addDirective(d)
	}
	return c
}

// ReadBrokerConfig reads the main file at path from src and, for each
// include_dir line in it, the directory's *.conf files at that point, in
// Mosquitto's order (case-insensitive by character, upper case first on a
// tie: 00.conf 01.conf A.conf a.conf B.conf b.conf). include_dir inside an
// included file is not followed (the broker refuses it; Lint says so).
// Following include_dir needs a DirSource.
func ReadBrokerConfig(ctx context.Context, src Source, file string) (*BrokerConfig, error) {
	b, err := src.ReadFile(ctx, file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	c := &BrokerConfig{Path: file, Files: []string{file}}
	for _, d := range directivesOf(file, b) {
		if d.Key != "include_dir" {
			c.addDirective(d)
			continue
		}
		c.addDirective(d)
		ds, ok := src.(DirSource)
		if !ok {
			return nil, fmt.Errorf("%s: include_dir %s: this source cannot list directories", d.At(), d.Value)
		}
		names, err := ds.ReadDir(ctx, d.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: include_dir %s: %w", d.At(), d.Value, err)
		}
		var confs []string
		for _, n := range names {
			if len(n) > len(".conf") && strings.HasSuffix(n, ".conf") {
				confs = append(confs, n)
			}
		}
		sort.Slice(confs, func(i, j int) bool { return mosquittoLess(confs[i], confs[j]) })
		for _, n := range confs {
			p := path.Join(d.Value, n)
			if p == file {
				c.problems = append(c.problems, Finding{d.File, d.Line, fmt.Sprintf("include_dir %s holds the main file itself", d.Value)})
				continue
			}
			b, err := src.ReadFile(ctx, p)
			if err != nil {
				return nil, fmt.Errorf("%s: include_dir: read %s: %w", d.At(), p, err)
			}
			c.Files = append(c.Files, p)
			for _, inc := range directivesOf(p, b) {
				if inc.Key == "include_dir" {
					c.problems = append(c.problems, Finding{inc.File, inc.Line, "include_dir is only valid in the main configuration file: mosquitto refuses to start"})
					continue
				}
				c.addDirective(inc)
			}
		}
	}
	return c, nil
}

// addDirective appends d, opening a listener block on a listener line.
func (c *BrokerConfig) addDirective(d Directive) {
	if d.Key == "listener" {
		f := d.Args()
		l := Listener{Port: -1}
		if len(f) > 0 {
			if p, err := strconv.Atoi(f[0]); err == nil {
				l.Port = p
			}
		}
		if len(f) > 1 {
			l.Address = f[1]
		}
		d.Listener = len(c.Listeners)
		l.Directive = d
		c.Listeners = append(c.Listeners, l)
		c.Directives = append(c.Directives, d)
		return
	}
	d.Listener = len(c.Listeners) - 1
	if d.Listener >= 0 {
		c.Listeners[d.Listener].Options = append(c.Listeners[d.Listener].Options, d)
	}
	c.Directives = append(c.Directives, d)
}

// directivesOf splits one file into option lines. A comment is a line
// whose first non-blank character is '#'; 2.0.11 has no inline comments.
func directivesOf(file string, b []byte) []Directive {
	var out []Directive
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(key, '\t'); i >= 0 {
			key, val = line[:i], line[i+1:]
		}
		out = append(out, Directive{Key: key, Value: strings.TrimSpace(val), File: file, Line: n, Listener: -1})
	}
	return out
}

// mosquittoLess is the include_dir order of Mosquitto 2.0.11: character by
// character, case-insensitively first, then upper case before lower case
// of the same letter; a prefix sorts first.
func mosquittoLess(a, b string) bool {
	up := func(c byte) byte {
		if 'a' <= c && c <= 'z' {
			return c - 'a' + 'A'
		}
		return c
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		if ua, ub := up(a[i]), up(b[i]); ua != ub {
			return ua < ub
		}
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

// ACLRule is one rule line of a Mosquitto acl_file.
type ACLRule struct {
	File string
	Line int
	// User is the `user` section the rule is in, "" for the rules before
	// any user line (they apply to every client).
	User   string
	Kind   string // "topic" or "pattern"
	Access string // "read", "write", "readwrite" or "deny"
	Topic  string
}

// ACL is a parsed acl_file.
type ACLFile struct {
	Path  string
	Rules []ACLRule
	// Users lists the user sections in order.
	Users    []string
	problems []Finding
}

// ParseACL parses an acl_file as Mosquitto 2.0.11 does: `user NAME` opens a
// section, `topic [ACCESS] TOPIC` and `pattern [ACCESS] TOPIC` are rules
// (ACCESS defaults to readwrite; TOPIC is the rest of the line).
func ParseACLFile(file string, b []byte) *ACLFile {
	a := &ACLFile{Path: file}
	user := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch key {
		case "user":
			user = rest
			a.Users = append(a.Users, user)
		case "topic", "pattern":
			r := ACLRule{File: file, Line: n, User: user, Kind: key, Access: "readwrite", Topic: rest}
			if acc, t, ok := strings.Cut(rest, " "); ok {
				switch acc {
				case "read", "write", "readwrite", "deny":
					r.Access, r.Topic = acc, strings.TrimSpace(t)
				}
			}
			if r.Topic == "" {
				a.problems = append(a.problems, Finding{file, n, fmt.Sprintf("%q: no topic", line)})
				continue
			}
			a.Rules = append(a.Rules, r)
		default:
			a.problems = append(a.problems, Finding{file, n, fmt.Sprintf("%q: unknown ACL line (want user, topic or pattern)", line)})
		}
	}
	return a
}

// ReadACL reads and parses the acl_file at path from src.
func ReadACLFile(ctx context.Context, src Source, file string) (*ACLFile, error) {
	b, err := src.ReadFile(ctx, file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return ParseACLFile(file, b), nil
}

// Lint reads the broker's configuration at confPath from src (include_dir
// followed when src can list directories) and every acl_file it names,
// and returns the findings of LintConf and LintRules in the broker's order.
// The error is for what could not be read, never for a finding.
func Lint(ctx context.Context, src Source, confPath string) (*BrokerConfig, []Finding, error) {
	c, err := ReadBrokerConfig(ctx, src, confPath)
	if err != nil {
		return nil, nil, err
	}
	findings := c.Lint()
	seen := map[string]bool{}
	for _, d := range c.Find("acl_file") {
		if seen[d.Value] {
			continue
		}
		seen[d.Value] = true
		a, err := ReadACLFile(ctx, src, d.Value)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				findings = append(findings, Finding{d.File, d.Line, fmt.Sprintf("acl_file %s does not exist: mosquitto refuses to start", d.Value)})
				continue
			}
			return c, findings, fmt.Errorf("%s: %w", d.At(), err)
		}
		findings = append(findings, a.Lint()...)
	}
	return c, findings, nil
}
