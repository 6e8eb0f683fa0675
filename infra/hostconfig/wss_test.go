package hostconfig

import (
	"regexp"
	"strings"
	"testing"
)

// TestWSListeners: one listener per WSS identity on consecutive ports, the
// shared device listener last and only with DeviceWSS.
func TestWSListeners(t *testing.T) {
	s := LocalStack("/s", "/p", "")
	s.WSSIdentities = []string{"observer", "backend"}
	ls := s.WSListeners()
	if len(ls) != 2 || ls[0] != (WSListener{"observer", 9001, "/s/mosquitto/passwd.d/observer"}) || ls[1].Port != 9002 {
		t.Fatalf("WSListeners = %+v", ls)
	}
	s.DeviceWSS = true
	ls = s.WSListeners()
	if len(ls) != 3 || ls[2] != (WSListener{"", 9003, "/s/mosquitto/passwd"}) {
		t.Fatalf("WSListeners with DeviceWSS = %+v", ls)
	}
	conf := string(MosquittoConf(s))
	if strings.Count(conf, "protocol websockets") != 3 || !strings.Contains(conf, "does NOT\n# bind the certificate to the username (F8)") {
		t.Errorf("mosquitto.conf lacks the three listeners or the DeviceWSS warning:\n%s", conf)
	}
	if ng := string(NginxConf(s)); !strings.Contains(ng, "default 127.0.0.1:9003;") || !strings.Contains(ng, "does NOT bind the certificate to the username (F8)") {
		t.Errorf("nginx.conf: DeviceWSS default backend or warning missing:\n%s", ng)
	}
	s.DeviceWSS = false
	if ng := string(NginxConf(s)); !strings.Contains(ng, `default "";`) || !strings.Contains(ng, `if ($mqtt_ws_backend = "") { return 403; }`) {
		t.Errorf("nginx.conf without DeviceWSS must map unknown CNs to nothing and refuse them:\n%s", ng)
	}
}

func TestValidateWSPorts(t *testing.T) {
	s := LocalStack("/s", "/p", "")
	s.WSPort = 65530 // 18 listeners do not fit
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "run past port 65535") {
		t.Errorf("WSPort 65530 with %d identities: %v", len(s.WSSIdentities), err)
	}
	s = LocalStack("/s", "/p", "")
	s.HTTPSPort = s.WSPort + 3 // inside the block
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "already used by HTTPSPort") {
		t.Errorf("HTTPSPort inside the WebSocket block: %v", err)
	}
	s = LocalStack("/s", "/p", "")
	s.WSSIdentities = []string{"observer", "observer", "a/b"}
	err := s.Validate()
	if err == nil || !strings.Contains(err.Error(), "appears twice") || !strings.Contains(err.Error(), `"a/b" is not a valid identity`) {
		t.Errorf("duplicate and invalid WSS identities: %v", err)
	}
	s = LocalStack("/s", "/p", "")
	s.WSSIdentities, s.DeviceWSS = nil, false
	if err := s.Validate(); err != nil {
		t.Errorf("a stack without any wss listener is valid: %v", err)
	}
	if c := string(MosquittoConf(s)); strings.Contains(c, "websockets") {
		t.Errorf("no WSS identities, no DeviceWSS: no websockets listener expected:\n%s", c)
	}
}

// TestCNMapAnchored: the map's regexes (PCRE in nginx; the same syntax
// and meaning in Go for these) select exactly one identity from an RFC 2253
// subject, never a prefix of a longer CN.
func TestCNMapAnchored(t *testing.T) {
	s := LocalStack("/s", "/p", "")
	re := regexp.MustCompile(`"~(\(\^\|,\)CN=[^"]+)" 127\.0\.0\.1:(\d+);`)
	type entry struct {
		re   *regexp.Regexp
		port string
	}
	var es []entry
	for _, m := range re.FindAllStringSubmatch(string(NginxConf(s)), -1) {
		es = append(es, entry{regexp.MustCompile(m[1]), m[2]})
	}
	if len(es) != len(s.WSSIdentities) {
		t.Fatalf("%d map entries, want %d", len(es), len(s.WSSIdentities))
	}
	match := func(dn string) []string {
		var out []string
		for _, e := range es {
			if e.re.MatchString(dn) {
				out = append(out, e.port)
			}
		}
		return out
	}
	for dn, want := range map[string]string{
		"CN=observer": "9001", "CN=observer-1": "9002", "CN=backend-8": "9018",
		"CN=observer,O=x": "9001", "O=x,CN=backend": "9010",
	} {
		if got := match(dn); len(got) != 1 || got[0] != want {
			t.Errorf("%q maps to %v, want exactly [%s]", dn, got, want)
		}
	}
	for _, dn := range []string{"CN=observer-10", "CN=dev-00001", "CN=xobserver", "CN=observer-1x", "OU=CN=observer-9"} {
		if got := match(dn); len(got) != 0 {
			t.Errorf("%q maps to %v, want none", dn, got)
		}
	}
}

func TestPasswordFilesSplit(t *testing.T) {
	s := LocalStack("/s", "/p", "")
	s.WSSIdentities = []string{"observer", "backend", "nobody"}
	shared := []byte("backend:$7$b\ndev-1:$7$d\nobserver:$7$o\n")
	fs, err := PasswordFiles(s, shared)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range fs {
		got[f.Path] = string(f.Content)
		if f.Mode != 0o600 {
			t.Errorf("%s: mode %v, want 0600 locally", f.Path, f.Mode)
		}
	}
	want := map[string]string{
		"/s/mosquitto/passwd":            string(shared),
		"/s/mosquitto/passwd.d/observer": "observer:$7$o\n",
		"/s/mosquitto/passwd.d/backend":  "backend:$7$b\n",
		"/s/mosquitto/passwd.d/nobody":   "",
	}
	if len(got) != len(want) {
		t.Errorf("files %v, want %v", got, want)
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s = %q, want %q", p, got[p], w)
		}
	}
	if _, err := PasswordFiles(s, []byte("observer:$7$o\nobserver:$7$p\n")); err == nil {
		t.Error("a duplicate user was accepted")
	}
	if _, err := PasswordFiles(s, []byte("no-colon\n")); err == nil {
		t.Error("a line without ':' was accepted")
	}
}

func TestLintWebsocketPasswordFile(t *testing.T) {
	s := LocalStack("/s", "/p", "")
	conf := strings.Replace(string(MosquittoConf(s)), "password_file /s/mosquitto/passwd.d/observer-3\n", "", 1)
	if err := LintMosquittoConf([]byte(conf)); err == nil || !strings.Contains(err.Error(), "password_file is missing") {
		t.Errorf("lint of a websockets listener without password_file: %v", err)
	}
}
