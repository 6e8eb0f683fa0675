package target

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmLjoxHIBUhQG3rkKId7o46kKpLECmucNs5lkculDhc"

func validTarget() *Target {
	return &Target{Host: "127.0.0.1", ServerName: "mqtt.local.test", MQTTSPort: 8883, CACert: "pki/ca.crt", PKIDir: "pki", Observer: "observer"}
}

func TestValidateSSH(t *testing.T) {
	tests := []struct {
		name string
		ssh  *SSH
		want []string // substrings of the error; none = valid
	}{
		{name: "absent", ssh: nil},
		{name: "valid", ssh: &SSH{Host: "203.0.113.7", Port: 22, User: "root", KeyFile: "ssh/id", HostKey: testHostKey}},
		{name: "port 0 means 22", ssh: &SSH{Host: "vps.example", User: "root", KeyFile: "ssh/id", HostKey: testHostKey + " comment"}},
		{name: "every problem at once", ssh: &SSH{Port: 70000},
			want: []string{"ssh.host:", "ssh.port: 70000", "ssh.user:", "ssh.key_file: required", "ssh.host_key: required"}},
		{name: "user@host in host", ssh: &SSH{Host: "root@203.0.113.7", User: "root", KeyFile: "k", HostKey: testHostKey},
			want: []string{`ssh.host: "root@203.0.113.7"`}},
		{name: "host key not base64", ssh: &SSH{Host: "h", User: "root", KeyFile: "k", HostKey: "ssh-ed25519 !!!"},
			want: []string{"ssh.host_key: key of type ssh-ed25519 is not base64"}},
		{name: "host key type mismatch", ssh: &SSH{Host: "h", User: "root", KeyFile: "k", HostKey: "ssh-rsa " + strings.Fields(testHostKey)[1]},
			want: []string{"ssh.host_key: key blob does not start with its type ssh-rsa"}},
		{name: "host key with host name first", ssh: &SSH{Host: "h", User: "root", KeyFile: "k", HostKey: "203.0.113.7 " + testHostKey},
			want: []string{"ssh.host_key:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := validTarget()
			tg.SSH = tt.ssh
			err := tg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestSSHAddr(t *testing.T) {
	for _, tt := range []struct {
		s    SSH
		want string
	}{
		{SSH{Host: "203.0.113.7"}, "203.0.113.7:22"},
		{SSH{Host: "::1", Port: 2222}, "[::1]:2222"},
	} {
		if got := tt.s.Addr(); got != tt.want {
			t.Errorf("Addr(%+v) = %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestLoadResolvesKeyFileAndReadKeyChecksMode(t *testing.T) {
	dir := t.TempDir()
	tg := validTarget()
	tg.SSH = &SSH{Host: "203.0.113.7", User: "root", KeyFile: "ssh/id", HostKey: testHostKey}
	path := filepath.Join(dir, "target.json")
	if err := tg.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "ssh", "id")
	if got.SSH.KeyFile != key {
		t.Fatalf("KeyFile = %q, want %q", got.SSH.KeyFile, key)
	}
	if _, err := got.SSH.ReadKey(); err == nil || !strings.Contains(err.Error(), "ssh.key_file") {
		t.Fatalf("ReadKey of a missing file: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := got.SSH.ReadKey(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("ReadKey of a 0644 key: %v, want a chmod 600 hint", err)
	}
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := got.SSH.ReadKey()
	if err != nil || string(b) != "secret" {
		t.Fatalf("ReadKey = %q, %v", b, err)
	}
}
