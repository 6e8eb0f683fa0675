// Package target describes how a run finds a stack: the one JSON file that
// `mqttstack local up` and the Pulumi stack outputs both produce, and that
// `mqttstack run` and `mqttstack security` read. It imports neither Pulumi nor
// paho, so every side of the project can depend on it.
package target

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/mqttstack/mqttstack/internal/atomicfile"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	// Local is set only for a stack started by `mqttstack local up`; floods
	// and restarts are allowed without --allow-load only when it is set.
	Local *Local `json:"local,omitempty"`
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
