// Package target describes how a run finds a stack: the one JSON file that
// `mqttstack local up` and the Pulumi stack outputs both produce, and that
// `mqttstack run` and `mqttstack security` read. It imports neither Pulumi nor
// paho, so every side of the project can depend on it.
package target

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mqttstack/mqttstack/internal/atomicfile"
)

// Target is the address book of one deployed or local stack. Relative paths
// are resolved against the directory of the file they were loaded from.
type Target struct {
	Name       string `json:"name"`
	Host       string `json:"host"`        // address devices dial
	ServerName string `json:"server_name"` // TLS server name to verify
	MQTTSPort  int    `json:"mqtts_port"`
	WSSURL     string `json:"wss_url,omitempty"`
	HTTPSURL   string `json:"https_url,omitempty"`
	CACert     string `json:"ca_cert"` // path of the private CA certificate
	PKIDir     string `json:"pki_dir"` // where client identities live (see package certs)
	Observer   string `json:"observer"`
	Backend    string `json:"backend"`
	// WSSDevices says device certificates may use WSSURL (the local stack's
	// opt-in DeviceWSS mode, `mqttstack local up --wss-devices`). Without
	// it only the observer and backend identities have wss listeners;
	// devices connect on MQTTSPort (nginx answers 403 to a device
	// certificate on /mqtt).
	WSSDevices bool `json:"wss_devices"`
	// DeviceProfiles names, comma-separated, the device TLS profiles
	// (docs/DEVICES.md) this stack must serve: `mqttstack devices compat`
	// requires them (exit 1 when one is refused). Optional, written by
	// hand. A string, so that Target stays comparable.
	DeviceProfiles string `json:"device_profiles,omitempty"`
	// Local is set only for a stack started by `mqttstack local up`; floods
	// and restarts are allowed without --allow-load only when it is set.
	Local *Local `json:"local,omitempty"`
	// SSH says how to reach the machine of a deployed stack (written by
	// `mqttstack deploy up`); security and load read that machine through a
	// host.Host opened from it (package host/sshhost).
	SSH *SSH `json:"ssh,omitempty"`
}

// SSH is how to log in to a deployed stack's host, with its host key pinned.
type SSH struct {
	Host    string `json:"host"`     // address or name of the machine
	Port    int    `json:"port"`     // 0 means 22
	User    string `json:"user"`     // login name (e.g. "root")
	KeyFile string `json:"key_file"` // private key path, mode 0600; relative to the target file
	HostKey string `json:"host_key"` // the host's public key as an authorized_keys line, pinned
}

// Addr is host:port of the SSH server (port 22 when Port is 0).
func (s *SSH) Addr() string {
	p := s.Port
	if p == 0 {
		p = 22
	}
	return net.JoinHostPort(s.Host, strconv.Itoa(p))
}

// ReadKey reads the private key file, refusing one that others can read.
func (s *SSH) ReadKey() ([]byte, error) {
	fi, err := os.Stat(s.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("ssh.key_file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("ssh.key_file %s: mode %04o lets others read the key (fix: chmod 600 %s)", s.KeyFile, fi.Mode().Perm(), s.KeyFile)
	}
	b, err := os.ReadFile(s.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("ssh.key_file: %w", err)
	}
	return b, nil
}

// validate appends one message per missing or malformed field.
func (s *SSH) validate(errs []string) []string {
	if s.Host == "" || strings.ContainsAny(s.Host, " \t/@") {
		errs = append(errs, fmt.Sprintf(`ssh.host: %q is not a host name or address (e.g. "203.0.113.7")`, s.Host))
	}
	if s.Port < 0 || s.Port > 65535 {
		errs = append(errs, fmt.Sprintf("ssh.port: %d is not a port (e.g. 22; 0 means 22)", s.Port))
	}
	if s.User == "" || strings.ContainsAny(s.User, " \t@") {
		errs = append(errs, fmt.Sprintf(`ssh.user: %q is not a login name (e.g. "root")`, s.User))
	}
	if s.KeyFile == "" {
		errs = append(errs, `ssh.key_file: required (path of the private key, mode 0600, e.g. "ssh/id_ed25519")`)
	}
	if err := checkAuthorizedKey(s.HostKey); err != nil {
		errs = append(errs, fmt.Sprintf("ssh.host_key: %v (want one authorized_keys line, e.g. the output of `ssh-keyscan -t ed25519 HOST` without the host name)", err))
	}
	return errs
}

// checkAuthorizedKey checks the shape of an authorized_keys line: a key
// type, then base64 of an SSH wire blob that starts with the same type.
// (The SSH library parses it for real when dialling; target stays free of
// dependencies.)
func checkAuthorizedKey(line string) error {
	f := strings.Fields(line)
	if len(f) < 2 {
		return errors.New("required")
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return fmt.Errorf("key of type %s is not base64", f[0])
	}
	if len(blob) < 4 {
		return fmt.Errorf("key of type %s is truncated", f[0])
	}
	n := binary.BigEndian.Uint32(blob)
	if uint64(n) > uint64(len(blob)-4) || string(blob[4:4+n]) != f[0] {
		return fmt.Errorf("key blob does not start with its type %s", f[0])
	}
	return nil
}

// Local holds what only the local stack knows: where its state lives and
// which processes it started.
type Local struct {
	StateDir      string `json:"state_dir"`
	MosquittoPID  int    `json:"mosquitto_pid"`
	NginxPID      int    `json:"nginx_pid"`
	WSPort        int    `json:"ws_port"`    // mosquitto's loopback websocket listener
	OpsPort       int    `json:"ops_port"`   // mosquitto's loopback password listener, 0 if none
	HTTPPort      int    `json:"http_port"`  // nginx's plain port (ACME + redirect)
	HTTPSPort     int    `json:"https_port"` // nginx's TLS port
	MosquittoConf string `json:"mosquitto_conf"`
	NginxConf     string `json:"nginx_conf"`
}

// MQTTSAddr is host:port of the mTLS listener.
func (t *Target) MQTTSAddr() string {
	return net.JoinHostPort(t.Host, strconv.Itoa(t.MQTTSPort))
}

// Validate reports every missing or malformed field at once.
func (t *Target) Validate() error {
	var errs []string
	if t.Host == "" {
		errs = append(errs, `host: required (e.g. "127.0.0.1")`)
	}
	if t.ServerName == "" {
		errs = append(errs, `server_name: required (e.g. "mqtt.local.test")`)
	}
	if t.MQTTSPort <= 0 || t.MQTTSPort > 65535 {
		errs = append(errs, fmt.Sprintf("mqtts_port: %d is not a port (e.g. 8883)", t.MQTTSPort))
	}
	if t.CACert == "" {
		errs = append(errs, `ca_cert: required (path to the private CA certificate, e.g. "pki/ca.crt")`)
	}
	if t.PKIDir == "" {
		errs = append(errs, `pki_dir: required (e.g. "pki")`)
	}
	if t.Observer == "" {
		errs = append(errs, `observer: required (the read-only identity, e.g. "observer")`)
	}
	if t.SSH != nil {
		errs = t.SSH.validate(errs)
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// Load reads a target file, resolves its relative paths and validates it.
func Load(path string) (*Target, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w (create one with `mqttstack local up` or `mqttstack target from-stack`)", path, err)
	}
	var t Target
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("target %s: %w", path, err)
	}
	base := filepath.Dir(path)
	t.CACert = resolve(base, t.CACert)
	t.PKIDir = resolve(base, t.PKIDir)
	if t.Local != nil {
		t.Local.StateDir = resolve(base, t.Local.StateDir)
	}
	if t.SSH != nil {
		t.SSH.KeyFile = resolve(base, t.SSH.KeyFile)
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("target %s: %w", path, err)
	}
	return &t, nil
}

func resolve(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

// Save writes the target atomically (temp file, then rename).
func (t *Target) Save(path string) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o644)
}

// DefaultPath is where `mqttstack local up` writes the target and where
// commands look when --target is not given (overridden by $MQTTSTACK_TARGET).
func DefaultPath() string {
	if p := os.Getenv("MQTTSTACK_TARGET"); p != "" {
		return p
	}
	return filepath.Join(".mqttstack", "local", "target.json")
}
