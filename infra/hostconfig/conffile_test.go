package hostconfig

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestMosquittoIncludeOrder(t *testing.T) {
	// the example of mosquitto.conf(5), shuffled
	names := []string{"b.conf", "A.conf", "01.conf", "a.conf", "B.conf", "00.conf"}
	want := []string{"00.conf", "01.conf", "A.conf", "a.conf", "B.conf", "b.conf"}
	got := append([]string(nil), names...)
	for i := range got {
		for j := i + 1; j < len(got); j++ {
			if mosquittoLess(got[j], got[i]) {
				got[i], got[j] = got[j], got[i]
			}
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("order %v, want %v", got, want)
	}
	for _, tt := range []struct {
		a, b string
		less bool
	}{{"a.conf", "ab.conf", true}, {"ab", "a", false}, {"Zeta", "alpha", false}, {"x", "x", false}} {
		if mosquittoLess(tt.a, tt.b) != tt.less {
			t.Errorf("mosquittoLess(%q, %q) = %v", tt.a, tt.b, !tt.less)
		}
	}
}

func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for p, c := range files {
		m[strings.TrimPrefix(p, "/")] = &fstest.MapFile{Data: []byte(c), Mode: 0o644}
	}
	return m
}

func TestReadBrokerConfigFollowsIncludeDir(t *testing.T) {
	src := FS(mapFS(map[string]string{
		"/etc/mosquitto/mosquitto.conf": "# main\nper_listener_settings true\ninclude_dir /etc/mosquitto/conf.d\n\nlistener 8883 127.0.0.1\nallow_anonymous false\n",
		"/etc/mosquitto/conf.d/b.conf":  "max_keepalive 60\n",
		"/etc/mosquitto/conf.d/A.conf":  "# a comment\n\nallow_anonymous true\n",
		"/etc/mosquitto/conf.d/a.conf":  "include_dir /tmp\n",
		"/etc/mosquitto/conf.d/x.txt":   "listener 1\n",
		"/etc/mosquitto/conf.d/.conf":   "listener 2\n",
	}))
	c, err := ReadBrokerConfig(context.Background(), src, "/etc/mosquitto/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := "/etc/mosquitto/mosquitto.conf /etc/mosquitto/conf.d/A.conf /etc/mosquitto/conf.d/a.conf /etc/mosquitto/conf.d/b.conf"
	if got := strings.Join(c.Files, " "); got != wantFiles {
		t.Fatalf("Files = %s\nwant %s", got, wantFiles)
	}
	var at []string
	for _, d := range c.Directives {
		at = append(at, fmt.Sprintf("%s@%s:%d", d.Key, filepath.Base(d.File), d.Line))
	}
	wantAt := "per_listener_settings@mosquitto.conf:2 include_dir@mosquitto.conf:3 allow_anonymous@A.conf:3 max_keepalive@b.conf:1 listener@mosquitto.conf:5 allow_anonymous@mosquitto.conf:6"
	if got := strings.Join(at, " "); got != wantAt {
		t.Fatalf("directives in the broker's order:\n got %s\nwant %s", got, wantAt)
	}
	if len(c.Listeners) != 1 || c.Listeners[0].Port != 8883 || c.Listeners[0].Address != "127.0.0.1" {
		t.Fatalf("Listeners = %+v", c.Listeners)
	}
	if v, _ := c.Listeners[0].Get("allow_anonymous"); v != "false" {
		t.Fatalf("listener allow_anonymous = %q (the included true is before the listener)", v)
	}
	findings := c.Lint()
	for _, want := range []string{
		"/etc/mosquitto/conf.d/A.conf:3: \"allow_anonymous true\" before the first listener",
		"/etc/mosquitto/conf.d/a.conf:1: include_dir is only valid in the main configuration file",
		"/etc/mosquitto/mosquitto.conf:3: include_dir: files in it",
	} {
		found := false
		for _, f := range findings {
			found = found || strings.HasPrefix(f.String(), want)
		}
		if !found {
			t.Errorf("no finding %q in:\n%v", want, findings)
		}
	}
}

// plainSource can read files but not list directories.
type plainSource map[string]string

func (p plainSource) ReadFile(_ context.Context, path string) ([]byte, error) {
	if c, ok := p[path]; ok {
		return []byte(c), nil
	}
	return nil, fs.ErrNotExist
}

func TestReadBrokerConfigErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		src  Source
		want string
	}{
		{"missing main file", plainSource{}, "read /c.conf"},
		{"include_dir without listing", plainSource{"/c.conf": "include_dir /d\n"}, "/c.conf:1: include_dir /d: this source cannot list directories"},
		{"include_dir missing", FS(mapFS(map[string]string{"/c.conf": "\ninclude_dir /nope\n"})), "/c.conf:2: include_dir /nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadBrokerConfig(ctx, tt.src, "/c.conf")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseACLFile(t *testing.T) {
	a := ParseACLFile("/etc/mosquitto/acl", []byte("# acl\npattern readwrite devices/%u/#\n\nuser observer\ntopic read devices/#\ntopic $SYS/broker/load\nuser back end\ntopic deny devices/with space\nbogus line\ntopic read\n"))
	want := []ACLRule{
		{"/etc/mosquitto/acl", 2, "", "pattern", "readwrite", "devices/%u/#"},
		{"/etc/mosquitto/acl", 5, "observer", "topic", "read", "devices/#"},
		{"/etc/mosquitto/acl", 6, "observer", "topic", "readwrite", "$SYS/broker/load"},
		{"/etc/mosquitto/acl", 8, "back end", "topic", "deny", "devices/with space"},
		// "topic read": the topic is "read" with default access, as mosquitto reads it
		{"/etc/mosquitto/acl", 10, "back end", "topic", "readwrite", "read"},
	}
	if len(a.Rules) != len(want) {
		t.Fatalf("Rules = %+v", a.Rules)
	}
	for i := range want {
		if a.Rules[i] != want[i] {
			t.Errorf("rule %d = %+v, want %+v", i, a.Rules[i], want[i])
		}
	}
	if strings.Join(a.Users, ",") != "observer,back end" {
		t.Errorf("Users = %q", a.Users)
	}
	fs := a.Lint()
	if len(fs) != 1 || fs[0].String() != `/etc/mosquitto/acl:9: "bogus line": unknown ACL line (want user, topic or pattern)` {
		t.Errorf("Lint = %v", fs)
	}
}

// TestLintRenderedStacks reads what Render writes, through a file system,
// exactly as Lint reads a host: the shipped configuration has no finding,
// and a broken ACL is reported at its file and line.
func TestLintRenderedStacks(t *testing.T) {
	for name, s := range map[string]Stack{"vps": vpsStack(), "local": localStack()} {
		t.Run(name, func(t *testing.T) {
			files, err := Render(s)
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]string{}
			for _, f := range files {
				m[f.Path] = string(f.Content)
			}
			c, findings, err := Lint(context.Background(), FS(mapFS(m)), s.Paths.MosquittoConf)
			if err != nil {
				t.Fatal(err)
			}
			if len(findings) != 0 {
				t.Fatalf("findings in the rendered config: %v", findings)
			}
			ops := 0
			if s.OpsPort > 0 {
				ops = 1
			}
			if len(c.Listeners) != 1+len(s.WSListeners())+ops {
				t.Errorf("%d listeners, want mqtts + %d websockets + %d ops", len(c.Listeners), len(s.WSListeners()), ops)
			}
			m[s.Paths.ACLFile] += "pattern read $SYS/#\n"
			_, findings, err = Lint(context.Background(), FS(mapFS(m)), s.Paths.MosquittoConf)
			n := strings.Count(m[s.Paths.ACLFile], "\n")
			if err != nil || len(findings) != 1 || findings[0].File != s.Paths.ACLFile || findings[0].Line != n {
				t.Fatalf("findings %v, %v; want one at %s:%d", findings, err, s.Paths.ACLFile, n)
			}
			delete(m, s.Paths.ACLFile)
			_, findings, err = Lint(context.Background(), FS(mapFS(m)), s.Paths.MosquittoConf)
			if err != nil || len(findings) != 1 || !strings.Contains(findings[0].Msg, "does not exist") {
				t.Fatalf("missing acl_file: %v, %v", findings, err)
			}
		})
	}
}

// TestIncludeOrderMatchesMosquitto starts the real broker on a config whose
// listeners are spread over include_dir files and compares the order in
// which it opens them with the order ReadBrokerConfig reports.
func TestIncludeOrderMatchesMosquitto(t *testing.T) {
	const bin = "/usr/sbin/mosquitto"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s missing: apt-get install -y mosquitto", bin)
	}
	dir := t.TempDir()
	inc := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(inc, 0o755); err != nil {
		t.Fatal(err)
	}
	// free ports, one per file; names in the man page's example
	names := []string{"b.conf", "A.conf", "01.conf", "a.conf", "B.conf", "00.conf"}
	var ls []net.Listener
	for _, n := range names {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		port := l.Addr().(*net.TCPAddr).Port
		if err := os.WriteFile(filepath.Join(inc, n), fmt.Appendf(nil, "listener %d 127.0.0.1\nallow_anonymous false\n", port), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range ls {
		l.Close()
	}
	main := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(main, []byte("per_listener_settings true\nlog_dest stderr\nlog_type all\ninclude_dir "+inc+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := ReadBrokerConfig(context.Background(), FS(os.DirFS("/")), main)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range c.Listeners {
		want = append(want, fmt.Sprintf("port %d", l.Port))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-c", main)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var got []string
	sc := bufio.NewScanner(stderr)
	for len(got) < len(want) && sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "Opening ipv4 listen socket on port "); i >= 0 {
			got = append(got, "port "+strings.TrimSuffix(line[i+len("Opening ipv4 listen socket on port "):], "."))
		}
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("mosquitto opened listeners in the order\n %v\nReadBrokerConfig says\n %v", got, want)
	}
}
