package deploy

import (
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/mqttstack/mqttstack/infra/program"
	"github.com/mqttstack/mqttstack/internal/atomicfile"
	"github.com/mqttstack/mqttstack/target"
)

// Output names the program exports (package program) that the target reads.
const (
	outSSHUser    = "sshUser"
	outSSHPort    = "sshPort"
	outSSHHostKey = "sshHostKey"
)

// companions are the files written beside a target: the CA certificate
// and the SSH private key (0600).
func companions(targetPath string) (ca, key string) {
	stem := strings.TrimSuffix(filepath.Base(targetPath), filepath.Ext(targetPath))
	dir := filepath.Dir(targetPath)
	return filepath.Join(dir, stem+"-ca.crt"), filepath.Join(dir, stem+"-ssh.key")
}

// writeTarget writes the target of the deployed stack, its CA certificate
// and, when the program exported the host key, the ssh section with the
// SSH key taken from the stack configuration (mode 0600).
func writeTarget(s *setup, cfg auto.ConfigMap, outs map[string]any) error {
	t, caPEM, err := targetFromOutputs(outs, s.dir)
	if err != nil {
		return err
	}
	caPath, keyPath := companions(s.targetPath)
	if err := os.MkdirAll(filepath.Dir(s.targetPath), 0o700); err != nil {
		return err
	}
	if err := atomicfile.Write(caPath, caPEM, 0o644); err != nil {
		return err
	}
	t.CACert = filepath.Base(caPath)
	if hk := str(outs[outSSHHostKey]); hk != "" {
		key := cfg[program.Project+":ssh.privateKey"].Value
		if blk, _ := pem.Decode([]byte(key)); blk == nil {
			return errors.New("mqttstack:ssh.privateKey is not a PEM key: the ssh section needs it")
		}
		if err := atomicfile.Write(keyPath, []byte(key), 0o600); err != nil {
			return err
		}
		t.SSH = &target.SSH{
			Host:    t.Host,
			Port:    num(outs[outSSHPort]),
			User:    str(outs[outSSHUser]),
			KeyFile: filepath.Base(keyPath),
			HostKey: hk,
		}
		if t.SSH.User == "" {
			t.SSH.User = "root"
		}
	}
	// Validate as a reader would: with paths resolved.
	check := *t
	check.CACert = caPath
	if t.SSH != nil {
		sc := *t.SSH
		sc.KeyFile = keyPath
		check.SSH = &sc
	}
	if err := check.Validate(); err != nil {
		return fmt.Errorf("target from the stack outputs: %w", err)
	}
	return t.Save(s.targetPath)
}

// removeTarget removes what writeTarget wrote (after destroy).
func removeTarget(s *setup) {
	ca, key := companions(s.targetPath)
	for _, p := range []string{s.targetPath, ca, key} {
		_ = os.Remove(p)
	}
}

// targetFromOutputs maps the program's outputs to a target. pkiDir is
// relative to the project directory.
func targetFromOutputs(o map[string]any, dir string) (*target.Target, []byte, error) {
	var errs []error
	caPEM := []byte(str(o["caCertPem"]))
	if blk, _ := pem.Decode(caPEM); blk == nil || blk.Type != "CERTIFICATE" {
		errs = append(errs, errors.New("output caCertPem: missing or not a PEM certificate (is this the mqttstack program?)"))
	}
	pki := str(o["pkiDir"])
	if pki != "" && !filepath.IsAbs(pki) {
		pki = filepath.Join(dir, pki)
	}
	t := &target.Target{
		Name:       str(o["name"]),
		Host:       str(o["host"]),
		ServerName: str(o["serverName"]),
		MQTTSPort:  num(o["mqttsPort"]),
		WSSURL:     str(o["wssUrl"]),
		HTTPSURL:   str(o["httpsUrl"]),
		CACert:     "ca.crt",
		PKIDir:     pki,
		Observer:   str(o["observer"]),
		Backend:    str(o["backend"]),
	}
	if err := t.Validate(); err != nil {
		errs = append(errs, err)
	}
	return t, caPEM, errors.Join(errs...)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) int {
	switch n := v.(type) {
	case float64:
		return int(n)
	case int:
		return n
	}
	return 0
}
