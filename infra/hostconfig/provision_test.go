package hostconfig

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// TestProvisionScriptIsIdempotent runs the real provisioning script with
// bash on a VPS stack whose paths live in a temporary directory. The host's
// package manager and service manager are replaced by recorders on PATH
// (this machine must not be reconfigured); everything else (install, base64,
// cmp, chown, stat) is real. It checks what a re-run restarts: nothing when
// nothing changed, only the broker when the ACL changed.
func TestProvisionScriptIsIdempotent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the script chowns files to mosquitto: needs root (CI runs as root)")
	}
	if _, err := user.Lookup("mosquitto"); err != nil {
		t.Fatalf("user mosquitto missing (apt-get install -y mosquitto): %v", err)
	}
	root := t.TempDir()
	s := VPSStack("mqtt.example.com")
	p := s.Paths
	for _, f := range []*string{&p.MosquittoConf, &p.ACLFile, &p.PasswordFile, &p.PasswordDir, &p.MosquittoPID, &p.MosquittoLog,
		&p.CAFile, &p.CRLFile, &p.ServerCert, &p.ServerKey, &p.NginxConf, &p.NginxCert, &p.NginxKey,
		&p.NginxPID, &p.NginxErrorLog, &p.NginxAccessLog, &p.NginxTempDir, &p.WebRoot, &p.ACMERoot,
		&p.SystemdDropins, &p.DeployHook, &p.NftablesConf, &p.ProvisionScript} {
		*f = filepath.Join(root, *f)
	}
	p.PersistenceDir = filepath.Join(root, p.PersistenceDir) + "/"
	s.Paths = p

	bin := filepath.Join(root, "stub-bin")
	calls := filepath.Join(root, "calls.log")
	os.MkdirAll(bin, 0o755)
	for _, name := range []string{"apt-get", "systemctl", "nginx", "nft", "certbot"} {
		stub := fmt.Sprintf("#!/bin/sh\necho \"%s $*\" >>%s\n", name, calls)
		if err := os.WriteFile(filepath.Join(bin, name), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// every package is "installed"
	os.WriteFile(filepath.Join(bin, "dpkg-query"), []byte("#!/bin/sh\nprintf 'install ok installed'\n"), 0o755)

	files := func(acl string) []File {
		fs, err := Render(s)
		if err != nil {
			t.Fatal(err)
		}
		if acl != "" {
			for i := range fs {
				if fs[i].Path == p.ACLFile {
					fs[i].Content = append(fs[i].Content, acl...)
				}
			}
		}
		fs = append(fs, PKIFiles(s, []byte("CA\n"), []byte("CRL\n"), []byte("CERT\n"), []byte("KEY\n"))...)
		return append(fs, PasswordFileEntry(s, []byte("observer:$7$x\n")))
	}
	run := func(fs []File) []string {
		t.Helper()
		script, err := ProvisionScript(s, fs)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(calls)
		cmd := exec.Command("bash", "-s")
		cmd.Stdin = strings.NewReader(string(script))
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("provision script: %v\n%s", err, out)
		}
		b, _ := os.ReadFile(calls)
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	has := func(got []string, want string) bool {
		for _, g := range got {
			if g == want {
				return true
			}
		}
		return false
	}

	first := run(files(""))
	for _, want := range []string{
		"systemctl daemon-reload", "nft -f " + p.NftablesConf, "nginx -t -q -c " + p.NginxConf,
		"systemctl restart mosquitto", "systemctl restart nginx",
	} {
		if !has(first, want) {
			t.Errorf("first run lacks %q; calls: %q", want, first)
		}
	}
	for path, want := range map[string]string{
		p.ServerKey: "600 mosquitto:mosquitto", p.ACLFile: "640 root:mosquitto", p.PasswordFile: "640 root:mosquitto",
		p.NginxKey: "600 root:root", p.MosquittoConf: "644 root:root",
		s.IdentityPasswordFile("observer"): "640 root:mosquitto", s.IdentityPasswordFile("backend-8"): "640 root:mosquitto",
	} {
		out, err := exec.Command("stat", "-c", "%a %U:%G", path).Output()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("%s: %q (%v), want %q", path, strings.TrimSpace(string(out)), err, want)
		}
	}

	// each WSS identity's listener reads a file with only its own line
	// (derived from the shared password file by ProvisionScript)
	if b, err := os.ReadFile(s.IdentityPasswordFile("observer")); err != nil || string(b) != "observer:$7$x\n" {
		t.Errorf("observer's password file: %q %v, want only observer's line", b, err)
	}
	if b, err := os.ReadFile(s.IdentityPasswordFile("backend")); err != nil || len(b) != 0 {
		t.Errorf("backend's password file (no hash in the shared file): %q %v, want empty", b, err)
	}

	second := run(files(""))
	for _, bad := range []string{"systemctl daemon-reload", "systemctl restart mosquitto", "systemctl restart nginx", "systemctl reload-or-restart nginx", "nft -f " + p.NftablesConf} {
		if has(second, bad) {
			t.Errorf("re-run with nothing changed did %q; calls: %q", bad, second)
		}
	}
	if !has(second, "systemctl start mosquitto") || !has(second, "systemctl start nginx") {
		t.Errorf("re-run does not make sure both services run; calls: %q", second)
	}

	third := run(files("\nuser extra\ntopic read devices/x/#\n"))
	if !has(third, "systemctl restart mosquitto") || has(third, "systemctl restart nginx") || has(third, "systemctl reload-or-restart nginx") {
		t.Errorf("an ACL change should restart only mosquitto; calls: %q", third)
	}
	acl, _ := os.ReadFile(p.ACLFile)
	if !strings.Contains(string(acl), "user extra") {
		t.Error("changed ACL not written")
	}
}
