package hostconfig

import (
	"bytes"
	"encoding/base64"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mqttstack/mqttstack/certs"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current renderers")

// vpsStack exercises every optional part: ops listener, public domain,
// admin CIDR, status allow-list, IPv6.
func vpsStack() Stack {
	s := VPSStack("mqtt.example.com")
	s.OpsPort = 1884
	s.PublicDomain = true
	s.ACMEEmail = "ops@example.com"
	s.AdminCIDR = "203.0.113.0/24"
	s.StatusAllow = []string{"203.0.113.0/24"}
	s.IPv6 = true
	return s
}

func localStack() Stack {
	s := LocalStack("/var/tmp/mqttstack/local", "/var/tmp/mqttstack/pki", "tester")
	s.ServerAliases = []string{"mqtt.local.test"}
	return s
}

// golden compares got with testdata/<name>.golden (or rewrites it).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run `go test ./infra/hostconfig -update` to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (run with -update if the change is intended):\n%s", name, p, diff(string(want), string(got)))
	}
}

// diff shows the first differing line, enough to see what changed.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl
		}
	}
	return "(no line differs)"
}

func goldenName(prefix, path string) string {
	return prefix + "/" + strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", "_")
}

// localDeviceWSSStack is the opt-in mode for wss load tests: a shared
// device listener after the WSS identities' own listeners.
func localDeviceWSSStack() Stack {
	s := localStack()
	s.WSSIdentities = []string{"observer", "backend"}
	s.DeviceWSS = true
	return s
}

func TestGolden(t *testing.T) {
	for name, s := range map[string]Stack{"vps": vpsStack(), "local": localStack(), "local-devicewss": localDeviceWSSStack()} {
		t.Run(name, func(t *testing.T) {
			files, err := Render(s)
			if err != nil {
				t.Fatal(err)
			}
			var listing strings.Builder
			for _, f := range files {
				golden(t, goldenName(name, f.Path), f.Content)
				listing.WriteString(f.Mode.String() + " " + f.Owner + " " + f.Path + "\n")
			}
			golden(t, name+"/files", []byte(listing.String()))
		})
	}
	t.Run("vps/provision", func(t *testing.T) {
		s := vpsStack()
		files, err := Render(s)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, PKIFiles(s, []byte("CA\n"), []byte("CRL\n"), []byte("CERT\n"), []byte("KEY\n"))...)
		files = append(files, PasswordFileEntry(s, []byte("observer:$7$fixed\n")))
		script, err := ProvisionScript(s, files)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "vps/provision.sh", script)
	})
}

func TestRenderedConfigPassesLint(t *testing.T) {
	for name, s := range map[string]Stack{"vps": vpsStack(), "local": localStack(), "vps-default": VPSStack("mqtt.example.com")} {
		t.Run(name, func(t *testing.T) {
			if err := LintMosquittoConf(MosquittoConf(s)); err != nil {
				t.Errorf("mosquitto.conf:\n%v", err)
			}
			if err := LintACL(ACL(s)); err != nil {
				t.Errorf("acl:\n%v", err)
			}
		})
	}
}

// TestLintCatchesEachRemovedHardening removes or misplaces one directive at
// a time and expects the lint to name it: a lint that passes everything
// proves nothing.
func TestLintCatchesEachRemovedHardening(t *testing.T) {
	conf := string(MosquittoConf(localStack()))
	cases := []struct {
		name   string
		mutate func(string) string
		want   string
	}{
		{"option before first listener", func(c string) string {
			return strings.Replace(c, "per_listener_settings true\n", "per_listener_settings true\nallow_zero_length_clientid false\n", 1)
		}, "before the first listener"},
		{"listener without address", func(c string) string {
			return strings.Replace(c, "listener 8883 127.0.0.1", "listener 8883", 1)
		}, "explicit address"},
		{"no require_certificate", func(c string) string {
			return strings.Replace(c, "require_certificate true\n", "", 1)
		}, "require_certificate"},
		{"no use_username_as_clientid", func(c string) string {
			return strings.Replace(c, "use_username_as_clientid true\n", "", 1)
		}, "use_username_as_clientid"},
		{"no tls_version", func(c string) string {
			return strings.Replace(c, "tls_version tlsv1.2\n", "", 1)
		}, "tls_version"},
		{"anonymous allowed", func(c string) string {
			return strings.Replace(c, "allow_anonymous false\n", "allow_anonymous true\n", 1)
		}, "allow_anonymous false"},
		{"inline comment", func(c string) string {
			return strings.Replace(c, "crlfile /", "crlfile /x # note /", 1)
		}, "becomes part of it"},
		{"no set_tcp_nodelay", func(c string) string {
			return strings.Replace(c, "set_tcp_nodelay true\n", "", 1)
		}, "set_tcp_nodelay"},
		{"include_dir", func(c string) string { return c + "include_dir /etc/mosquitto/conf.d\n" }, "include_dir"},
		{"no crlfile", func(c string) string {
			i := strings.Index(c, "crlfile ")
			j := strings.Index(c[i:], "\n")
			return c[:i] + c[i+j+1:]
		}, "crlfile"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := LintMosquittoConf([]byte(tc.mutate(conf)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("lint = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	t.Run("websockets without socket_domain", func(t *testing.T) {
		ws := strings.Index(conf, "listener 9001 127.0.0.1")
		rest := strings.Replace(conf[ws:], "socket_domain ipv4\n", "", 1)
		err := LintMosquittoConf([]byte(conf[:ws] + rest))
		if err == nil || !strings.Contains(err.Error(), "F2") {
			t.Fatalf("lint = %v, want the F2 error", err)
		}
	})
	for name, acl := range map[string]string{
		"%c pattern":   "pattern readwrite devices/%c/#\n",
		"no pattern":   "user observer\ntopic read devices/#\n",
		"$SYS pattern": "pattern readwrite devices/%u/#\npattern read $SYS/#\n",
		"write all":    "pattern readwrite devices/%u/#\nuser x\ntopic readwrite #\n",
	} {
		t.Run("acl "+name, func(t *testing.T) {
			if err := LintACL([]byte(acl)); err == nil {
				t.Fatalf("lint accepted %q", acl)
			}
		})
	}
}

func TestValidateReportsEverything(t *testing.T) {
	s := VPSStack("bad name!")
	s.BindAddress = "::"
	s.MQTTSPort = 0
	s.WSPort = 443 // clashes with HTTPSPort
	s.Paths.ACLFile = "relative/acl"
	s.Paths.CAFile = "/etc/my ca.pem"
	s.Observers = []string{"observer", "bad/name"}
	s.Backends = []string{"observer"}
	s.Limits.MaxInflightMessages = 0
	s.PublicDomain = true
	s.StatusAllow = []string{"10.0.0.0/33"}
	err := s.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken stack")
	}
	for _, want := range []string{
		"ServerName:", "BindAddress:", "MQTTSPort: 0", "HTTPSPort: port 443 is already used by WSPort",
		"Paths.ACLFile:", "Paths.CAFile:", "Observers[1]:", "Backends[0]:", "Limits.MaxInflightMessages:",
		"ACMEEmail:", "StatusAllow[0]:",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q:\n%v", want, err)
		}
	}
	if _, err := Render(s); err == nil {
		t.Error("Render accepted an invalid stack")
	}
	if err := VPSStack("mqtt.example.com").Validate(); err != nil {
		t.Errorf("default VPS stack invalid: %v", err)
	}
	local := LocalStack("/tmp/s", "/tmp/p", "root")
	local.BindAddress = "0.0.0.0"
	if err := local.Validate(); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("local stack on 0.0.0.0: %v", err)
	}
}

func TestACLGrantsPerContract(t *testing.T) {
	acl := string(ACL(VPSStack("mqtt.example.com")))
	if !strings.Contains(acl, "\npattern readwrite devices/%u/#\n") {
		t.Error("no device pattern")
	}
	for _, o := range certs.DefaultObservers() {
		if !strings.Contains(acl, "user "+o+"\ntopic read devices/#\ntopic read $SYS/#\n") {
			t.Errorf("observer %s lacks read devices/# and $SYS/#", o)
		}
	}
	for _, b := range certs.DefaultBackends() {
		if !strings.Contains(acl, "user "+b+"\ntopic readwrite devices/#\n") {
			t.Errorf("backend %s lacks readwrite devices/#", b)
		}
	}
}

func TestPasswordFile(t *testing.T) {
	b, err := PasswordFile([]Credential{{"observer", "pw1"}, {"backend", "pw2"}})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "backend:$7$") || !strings.HasPrefix(lines[1], "observer:$7$") {
		t.Fatalf("password file:\n%s", b)
	}
	for _, bad := range [][]Credential{{{"a/b", "x"}}, {{"a", ""}}, {{"a", "x"}, {"a", "y"}}} {
		if _, err := PasswordFile(bad); err == nil {
			t.Errorf("PasswordFile(%v) accepted", bad)
		}
	}
}

func TestProvisionScriptAndCloudInit(t *testing.T) {
	s := vpsStack()
	files, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, PKIFiles(s, []byte("CA"), []byte("CRL"), []byte("CERT"), []byte("KEY"))...)
	if _, err := ProvisionScript(s, files); err == nil || !strings.Contains(err.Error(), "no password file") {
		t.Errorf("ProvisionScript without a password file: %v, want an error naming it (mosquitto would not start)", err)
	}
	files = append(files, PasswordFileEntry(s, []byte("observer:$7$fixed\nbackend:$7$other\n")))
	script, err := ProvisionScript(s, files)
	if err != nil {
		t.Fatal(err)
	}
	// bash parses it
	cmd := exec.Command("bash", "-n")
	cmd.Stdin = bytes.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	if !strings.Contains(string(script), "put_file /etc/mosquitto/certs/server.key 0600 mosquitto:mosquitto") {
		t.Error("server key not written 0600 owned by mosquitto")
	}
	// a path with shell characters is refused rather than quoted
	if _, err := ProvisionScript(s, append(files, File{Path: "/etc/x;rm -rf /", Mode: 0o644})); err == nil {
		t.Error("ProvisionScript accepted a path with shell characters")
	}
	if _, err := ProvisionScript(LocalStack("/tmp/s", "/tmp/p", "root"), files); err == nil {
		t.Error("ProvisionScript accepted a local stack")
	}

	ci, err := CloudInit(s, files)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(ci), "#cloud-config\n") {
		t.Fatalf("cloud-init does not start with #cloud-config:\n%s", ci[:40])
	}
	var doc struct {
		Packages   []string `yaml:"packages"`
		WriteFiles []struct {
			Path        string `yaml:"path"`
			Permissions string `yaml:"permissions"`
			Encoding    string `yaml:"encoding"`
			Content     string `yaml:"content"`
		} `yaml:"write_files"`
		RunCmd [][]string `yaml:"runcmd"`
	}
	if err := yaml.Unmarshal(ci, &doc); err != nil {
		t.Fatalf("cloud-init is not YAML: %v", err)
	}
	if !reflect.DeepEqual(doc.Packages, []string{"mosquitto", "nginx", "certbot", "nftables"}) {
		t.Errorf("packages = %v", doc.Packages)
	}
	if len(doc.WriteFiles) != 1 || doc.WriteFiles[0].Path != s.Paths.ProvisionScript || doc.WriteFiles[0].Permissions != "0700" {
		t.Fatalf("write_files = %+v", doc.WriteFiles)
	}
	got, err := base64.StdEncoding.DecodeString(doc.WriteFiles[0].Content)
	if err != nil || !bytes.Equal(got, script) {
		t.Errorf("cloud-init does not carry the provisioning script (%v)", err)
	}
	if len(doc.RunCmd) != 1 || !reflect.DeepEqual(doc.RunCmd[0], []string{"bash", s.Paths.ProvisionScript}) {
		t.Errorf("runcmd = %v", doc.RunCmd)
	}
}
