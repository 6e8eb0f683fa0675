package deploy

import (
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/mqttstack/mqttstack/infra/outputs"
	"github.com/mqttstack/mqttstack/infra/program"
	"github.com/mqttstack/mqttstack/internal/atomicfile"
	"github.com/mqttstack/mqttstack/target"
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
	if t.SSH != nil {
		key := cfg[program.Project+":ssh.privateKey"].Value
		if blk, _ := pem.Decode([]byte(key)); blk == nil {
			return errors.New("mqttstack:ssh.privateKey is not a PEM key: the ssh section needs it")
		}
		if err := atomicfile.Write(keyPath, []byte(key), 0o600); err != nil {
			return err
		}
		t.SSH.KeyFile = filepath.Base(keyPath)
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

// targetFromOutputs maps the program's outputs to a target (package
// outputs reads them; the ssh section is there when the program exported a
// host key). pkiDir is relative to the project directory.
func targetFromOutputs(o map[string]any, dir string) (*target.Target, []byte, error) {
	t, caPEM, err := outputs.Target(o)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if t.PKIDir != "" && !filepath.IsAbs(t.PKIDir) {
		t.PKIDir = filepath.Join(dir, t.PKIDir)
	}
	t.CACert = "ca.crt"
	// the ssh section is checked once writeTarget has its key file
	check := *t
	check.SSH = nil
	if err := check.Validate(); err != nil {
		errs = append(errs, err)
	}
	return t, caPEM, errors.Join(errs...)
}
