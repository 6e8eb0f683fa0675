// Package outputs is the one list of the Pulumi stack outputs that the
// mqttstack program exports (infra/program writes them) and the one reader
// that turns them back into a target (`mqttstack deploy up` through
// infra/deploy, `mqttstack target from-stack` from `pulumi stack output
// --json --show-secrets`). It imports no Pulumi package: the outputs come
// in as the map that JSON decoding or the Automation API gives.
package outputs

import (
	"encoding/pem"
	"errors"
	"fmt"
	"sort"

	"github.com/mqttstack/mqttstack/target"
)

// The stack output keys.
const (
	Name       = "name"       // the stack's name
	Provider   = "provider"   // hcloud, digitalocean or ssh
	Host       = "host"       // address devices dial
	ServerName = "serverName" // TLS server name
	MQTTSPort  = "mqttsPort"
	WSSURL     = "wssUrl"
	HTTPSURL   = "httpsUrl"
	CACertPEM  = "caCertPem" // the private CA certificate, PEM text
	PKIDir     = "pkiDir"    // relative to the Pulumi project directory
	Observer   = "observer"
	Backend    = "backend"
	ConfigHash = "configHash" // hash of the rendered host configuration
	// How to reach the host (the target's ssh section); the private key is
	// the operator's and never exported.
	SSHUser            = "sshUser"
	SSHPort            = "sshPort"
	SSHHostKey         = "sshHostKey" // authorized_keys line
	HostKeyFingerprint = "hostKeyFingerprint"
	MosquittoVersion   = "mosquittoVersion"
	NginxVersion       = "nginxVersion"
	// AcmeStatus (with mqttstack:domain only): "issued", or "failed:
	// <certbot's message>" until an up obtains nginx's Let's Encrypt
	// certificate.
	AcmeStatus = "acmeStatus"
)

// Hidden is how `pulumi stack output --json` prints a secret without
// --show-secrets.
const Hidden = "[secret]"

// String is the string output key of o ("" when absent or not a string).
func String(o map[string]any, key string) string {
	s, _ := o[key].(string)
	return s
}

// Int is the number output key of o (JSON numbers decode as float64).
func Int(o map[string]any, key string) int {
	switch n := o[key].(type) {
	case float64:
		return int(n)
	case int:
		return n
	case int64:
		return int(n)
	}
	return 0
}

// Target reads the target fields from the outputs o. The ssh section is set
// when the program exported a host key (its KeyFile is the caller's to
// fill: the key is never an output). CACert and PKIDir are left as the
// outputs say (PKIDir relative to the project directory, CACert empty):
// the caller writes the CA certificate (returned as PEM) and resolves the
// paths, then calls Validate. Every problem with the outputs is reported
// at once.
func Target(o map[string]any) (*target.Target, []byte, error) {
	var errs []error
	var hidden []string
	for k, v := range o {
		if v == Hidden {
			hidden = append(hidden, k)
		}
	}
	sort.Strings(hidden)
	for _, k := range hidden {
		errs = append(errs, fmt.Errorf("output %s is hidden: run `pulumi stack output --json --show-secrets`", k))
	}
	caPEM := []byte(String(o, CACertPEM))
	if blk, _ := pem.Decode(caPEM); blk == nil || blk.Type != "CERTIFICATE" {
		errs = append(errs, fmt.Errorf("output %s: missing or not a PEM certificate (is this the mqttstack program?)", CACertPEM))
	}
	t := &target.Target{
		Name:       String(o, Name),
		Host:       String(o, Host),
		ServerName: String(o, ServerName),
		MQTTSPort:  Int(o, MQTTSPort),
		WSSURL:     String(o, WSSURL),
		HTTPSURL:   String(o, HTTPSURL),
		PKIDir:     String(o, PKIDir),
		Observer:   String(o, Observer),
		Backend:    String(o, Backend),
	}
	if hk := String(o, SSHHostKey); hk != "" && hk != Hidden {
		t.SSH = &target.SSH{Host: t.Host, Port: Int(o, SSHPort), User: String(o, SSHUser), HostKey: hk}
		if t.SSH.User == "" {
			t.SSH.User = "root"
		}
	}
	return t, caPEM, errors.Join(errs...)
}
