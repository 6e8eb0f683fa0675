package deploy

import (
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
	if err := t.Save(s.targetPath); err != nil {
		return err
	}
	return recordTarget(s)
}

// writtenTargets is the file, in the stack's directory, that lists every
// target file up wrote (one absolute path per line), so that destroy
// removes the ones written with --target too.
func writtenTargets(s *setup) string {
	return filepath.Join(StackDir(s.dir, s.o.Stack), "targets")
}

// readTargets returns the paths writtenTargets lists (none when absent).
func readTargets(s *setup) []string {
	b, err := os.ReadFile(writtenTargets(s))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// recordTarget adds s.targetPath to writtenTargets.
func recordTarget(s *setup) error {
	abs, err := filepath.Abs(s.targetPath)
	if err != nil {
		return err
	}
	paths := readTargets(s)
	if slices.Contains(paths, abs) {
		return nil
	}
	paths = append(paths, abs)
	if err := os.MkdirAll(filepath.Dir(writtenTargets(s)), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(writtenTargets(s), []byte(strings.Join(paths, "\n")+"\n"), 0o600)
}

// removeTarget removes what writeTarget wrote (after destroy): every
// target file up wrote for the stack, with their CA certificate and SSH
// key, then the list of them.
func removeTarget(s *setup) {
	for _, t := range append(readTargets(s), s.targetPath) {
		ca, key := companions(t)
		for _, p := range []string{t, ca, key} {
			_ = os.Remove(p)
		}
	}
	_ = os.Remove(writtenTargets(s))
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
