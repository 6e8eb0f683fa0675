package security

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// sysValue reads a retained $SYS topic through the watcher: re-subscribing
// makes the broker replay the retained value at once.
func (e *Env) sysValue(ctx context.Context, topic string) (string, error) {
	tap := e.watch.tap(func(m Msg) bool { return m.Topic == topic })
	defer e.watch.untap(tap)
	if _, err := e.watch.c.subscribe(ctx, topic); err != nil {
		return "", fmt.Errorf("subscribe %s: %w", topic, err)
	}
	m, ok := tap.waitFor(ctx, 3*time.Second, func(Msg) bool { return true })
	if !ok {
		return "", fmt.Errorf("no %s within 3s (watcher lacks `topic read $SYS/#`?)", topic)
	}
	return string(m.Payload), nil
}

var versionRE = regexp.MustCompile(`(\d+)\.(\d+)\.(\d+)`)

// brokerVersion returns major, minor, patch of "$SYS/broker/version".
func brokerVersion(s string) (int, int, int, bool) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, 0, false
	}
	var a, b, c int
	fmt.Sscan(m[1], &a)
	fmt.Sscan(m[2], &b)
	fmt.Sscan(m[3], &c)
	return a, b, c, true
}

// debianFloor is the patch level with every backported CVE fix of §1.
const debianFloor = "2.0.11-1.2+deb12u2"

func opsChecks() []Check {
	return []Check{
		{
			ID: "OPS-01", Tier: 1, Title: "Broker patch level at or above the floor",
			Attack: "read $SYS/broker/version as the watcher; locally also dpkg-query mosquitto/libmosquitto1 against 2.0.11-1.2+deb12u2",
			Fix:    "apt-get install --only-upgrade mosquitto libmosquitto1 (>= 2.0.11-1.2+deb12u2: CVE-2023-0809, -3592, -28366, CVE-2024-8376, -3935, -10525)",
			Proves: "the broker reports 2.0.11 or later and, where dpkg can tell, mosquitto and libmosquitto1 are at least 2.0.11-1.2+deb12u2",
			Gaps:   "the Debian revision is only readable on the host",
			Guards: "CVE-2023-0809, -3592, -28366, CVE-2024-8376, -3935, -10525",
			Run:    runOPS01,
		},
		{
			ID: "OPS-02", Host: true, Standalone: true, Tier: 1, Title: "Config lint of the rendered mosquitto.conf and ACL",
			Attack: "static: per_listener_settings first, no listener option before the first listener (F1), explicit listener addresses, socket_domain on websockets (F2), ACL without %c or broad grants, cafile = private CA only, 0600 keys, no http_dir, no inline comments",
			Fix:    "render the config with infra/hostconfig (docs/SECURITY.md §5) and fix each finding listed",
			Proves: "the broker's effective configuration (read on the host) and its ACLs pass the lint: listener options inside listeners, explicit addresses, socket_domain on websockets, no %c, no broad grants, private CA only, keys 0600 (local), no inline comments, no http_dir",
			Gaps:   "2.0.11 keeps an inline '# comment' as part of the value",
			Guards: "F1, F2, F6, CVE-2018-12550",
			Run:    runOPS02,
		},
	}
}

// lintMosquitto returns the findings of OPS-02 and a summary of what was
// checked (the positive control: a lint that read nothing proves nothing).
// The rules are hostconfig's one linter, run on what the host holds; the
// suite adds what only it can judge: the cafile holds exactly the target's
// private CA, no capath, and (on this machine) key and password files 0600.
func (e *Env) lintMosquitto(ctx context.Context) ([]string, string, error) {
	c, fs, err := e.hostLint(ctx)
	if err != nil {
		return nil, "", err
	}
	var findings []string
	for _, f := range fs {
		findings = append(findings, f.String())
	}
	add := func(f string, a ...any) { findings = append(findings, fmt.Sprintf(f, a...)) }
	var keys []string
	for _, d := range c.Directives {
		switch d.Key {
		case "keyfile", "password_file":
			keys = append(keys, d.Value)
		case "cafile":
			if msg := e.lintCAFile(ctx, d.Value); msg != "" {
				add("%s %s", d.At(), msg)
			}
		case "capath":
			add("%s capath set: every CA in it can mint usernames (CRT-02)", d.At())
		}
	}
	modes := "key/password file modes not checkable through the host interface"
	if e.T.Local != nil {
		// the local stack's files are on this machine
		for _, k := range dedup(keys) {
			st, err := os.Stat(k)
			if err != nil {
				add("%s: %v", k, err)
				continue
			}
			if st.Mode().Perm()&0o077 != 0 {
				add("%s mode %o (want 0600)", k, st.Mode().Perm())
			}
		}
		modes = fmt.Sprintf("%d key/password files 0600", len(dedup(keys)))
	}
	var listeners []string
	for _, l := range c.Listeners {
		listeners = append(listeners, l.Value)
	}
	summary := fmt.Sprintf("%s: %d directives in %d file(s), %d listeners (%s … %s), ACL %s, %s: clean",
		e.host.Name(), len(c.Directives), len(c.Files), len(listeners), first(listeners), last(listeners), strings.Join(dedup(c.Values("acl_file")), ","), modes)
	return findings, summary, nil
}

func first(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[0]
}

func last(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[len(ss)-1]
}

// lintCAFile requires the broker's cafile to hold exactly the target's
// private CA.
func (e *Env) lintCAFile(ctx context.Context, path string) string {
	got, err := e.hostFile(ctx, path)
	if err != nil {
		return fmt.Sprintf("cafile: %v", err)
	}
	want, err := os.ReadFile(e.T.CACert)
	if err != nil {
		return fmt.Sprintf("target CA %s: %v", e.T.CACert, err)
	}
	// During a CA rollover the target's CA file is the trust bundle of
	// both generations (certs ca next … retire): each is the private CA.
	var cas [][]byte
	for rest := want; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		cas = append(cas, blk.Bytes)
	}
	if len(cas) == 0 {
		return fmt.Sprintf("target CA %s holds no PEM", e.T.CACert)
	}
	n := 0
	for rest := got; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		n++
		if !slices.ContainsFunc(cas, func(c []byte) bool { return bytes.Equal(blk.Bytes, c) }) {
			return fmt.Sprintf("cafile %s holds a certificate other than the private device CA (certificate #%d)", path, n)
		}
	}
	if n == 0 {
		return fmt.Sprintf("cafile %s holds no certificate", path)
	}
	return ""
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// runOPS01 runs OPS-01 (its catalog entry is in this file).
func runOPS01(ctx context.Context, e *Env) Outcome {
	v, err := e.sysValue(ctx, "$SYS/broker/version")
	if err != nil {
		return inconclusive("%v", err)
	}
	a, b, c, ok := brokerVersion(v)
	if !ok {
		return inconclusive("unparseable $SYS/broker/version %q", v)
	}
	if a < 2 || (a == 2 && b == 0 && c < 11) {
		return fail("broker reports %q, below 2.0.11", v)
	}
	if e.T.Local == nil {
		return pass("broker reports %q; Debian revision not checkable remotely", v)
	}
	var parts []string
	for _, pkg := range []string{"mosquitto", "libmosquitto1"} {
		have := dpkgVersion(ctx, pkg)
		if have == "" {
			parts = append(parts, pkg+" not a dpkg package here")
			continue
		}
		if !debAtLeast(ctx, have, debianFloor) {
			return fail("%s %s is below %s (lacks the deb12u1/u2 CVE backports); broker reports %q", pkg, have, debianFloor, v)
		}
		parts = append(parts, pkg+" "+have)
	}
	if a == 2 && b == 0 && c == 11 && dpkgVersion(ctx, "mosquitto") == "" {
		return inconclusive("broker reports %q but is not a Debian package: cannot tell whether the deb12u1/u2 CVE backports are in", v)
	}
	return pass("broker reports %q; %s (>= %s)", v, strings.Join(parts, ", "), debianFloor)
}

// runOPS02 runs OPS-02 (its catalog entry is in this file).
func runOPS02(ctx context.Context, e *Env) Outcome {
	if e.host == nil {
		return needsHost("the lint of the broker's configuration and ACL")
	}
	findings, summary, err := e.lintMosquitto(ctx)
	if err != nil {
		return inconclusive("%v", err)
	}
	if len(findings) > 0 {
		return fail("%d finding(s): %s", len(findings), strings.Join(findings, "; "))
	}
	if w := e.sharedWSPasswordFiles(ctx); len(w) > 0 {
		// a warning, not a finding of this lint: WEB-05 judges
		// the binding by what logs in
		// (first: evidence is cut at 400 characters)
		summary = "warning: " + strings.Join(w, "; ") + "; " + summary
	}
	return pass("%s", summary)
}
