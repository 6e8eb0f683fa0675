package outputs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/target"
)

func caPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

const hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmLjoxHIBUhQG3rkKId7o46kKpLECmucNs5lkculDhc"

func TestTarget(t *testing.T) {
	ca := caPEM(t)
	// what `pulumi stack output --json --show-secrets` prints
	full := `{"name": "prod", "provider": "hcloud", "host": "203.0.113.7", "serverName": "mqtt.example.com",
	  "mqttsPort": 8883, "wssUrl": "wss://mqtt.example.com/mqtt", "httpsUrl": "https://mqtt.example.com/",
	  "caCertPem": ` + strings.ReplaceAll(string(must(json.Marshal(ca))), "\n", "") + `, "pkiDir": ".mqttstack/pki",
	  "observer": "observer", "backend": "backend", "sshUser": "admin", "sshPort": 2222, "sshHostKey": "` + hostKey + `"}`
	var o map[string]any
	if err := json.Unmarshal([]byte(full), &o); err != nil {
		t.Fatal(err)
	}
	tg, pemBytes, err := Target(o)
	if err != nil {
		t.Fatal(err)
	}
	if string(pemBytes) != ca {
		t.Error("CA PEM not returned as exported")
	}
	if tg.Name != "prod" || tg.Host != "203.0.113.7" || tg.ServerName != "mqtt.example.com" || tg.MQTTSPort != 8883 ||
		tg.WSSURL == "" || tg.HTTPSURL == "" || tg.PKIDir != ".mqttstack/pki" || tg.Observer != "observer" || tg.Backend != "backend" {
		t.Errorf("target %+v", tg)
	}
	if tg.SSH == nil || *tg.SSH != (target.SSH{Host: "203.0.113.7", Port: 2222, User: "admin", HostKey: hostKey}) {
		t.Errorf("ssh %+v", tg.SSH)
	}
	tg.CACert, tg.SSH.KeyFile = "prod-ca.crt", "prod-ssh.key"
	if err := tg.Validate(); err != nil {
		t.Errorf("a target from complete outputs does not validate: %v", err)
	}

	// without --show-secrets, and without the CA: every problem at once
	o[CACertPEM], o[Host] = Hidden, Hidden
	delete(o, SSHUser)
	_, _, err = Target(o)
	for _, want := range []string{"output caCertPem is hidden", "output host is hidden", "output caCertPem: missing or not a PEM"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	delete(o, SSHHostKey)
	if tg, _, _ := Target(o); tg.SSH != nil {
		t.Error("ssh section without a host key output")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
