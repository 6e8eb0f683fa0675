package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqttstack/mqttstack/internal/atomicfile"
	"github.com/mqttstack/mqttstack/target"
)

func newTargetCmd(a *app) *cobra.Command {
	c := newGroupCmd("target", "Make a target file: from-stack (Pulumi stack outputs)",
		`A target file says where a stack is and which identities to use: host,
ports, server name, CA, PKI directory. 'mqttstack local up' writes the
local stack's; from-stack writes a deployed stack's.`,
		"  pulumi stack output --json --show-secrets | mqttstack target from-stack -o prod.json")
	c.AddCommand(newTargetFromStackCmd(a))
	return c
}

func newTargetFromStackCmd(a *app) *cobra.Command {
	var in, pkiDir, out string
	c := &cobra.Command{
		Use:   "from-stack -o TARGET.json",
		Short: "Turn 'pulumi stack output --json --show-secrets' into a target file",
		Long: `Turns the JSON of 'pulumi stack output --json --show-secrets' into a target
file, and writes the stack's CA certificate next to it (TARGET-ca.crt).
The PKI must be the one the stack was deployed with.

Exit codes: 0 written, 2 bad flags or stack output, 3 could not write.`,
		Example: `  pulumi stack output --json --show-secrets | mqttstack target from-stack -o prod.json
  mqttstack target from-stack --stack-output outputs.json --pki-dir .mqttstack/pki -o prod.json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return targetFromStack(c, a, in, pkiDir, out)
		},
	}
	c.Flags().StringVar(&in, "stack-output", "-", "file holding the output of 'pulumi stack output --json --show-secrets', or - for stdin")
	c.Flags().StringVar(&pkiDir, "pki-dir", "", "PKI directory with the client identities (default: the stack's pkiDir output, which is relative to the Pulumi project root: run from there)")
	c.Flags().StringVarP(&out, "out", "o", "", "target file to write (e.g. prod.json); required")
	return c
}

// stackOutputs are the outputs the Pulumi program (infra/main.go) exports.
type stackOutputs struct {
	Name       string `json:"name"`
	Host       string `json:"host"`
	ServerName string `json:"serverName"`
	MQTTSPort  int    `json:"mqttsPort"`
	WSSURL     string `json:"wssUrl"`
	HTTPSURL   string `json:"httpsUrl"`
	CACertPEM  string `json:"caCertPem"`
	PKIDir     string `json:"pkiDir"`
	Observer   string `json:"observer"`
	Backend    string `json:"backend"`
}

func targetFromStack(c *cobra.Command, a *app, in, pkiDir, out string) error {
	if out == "" {
		return usageErrorf(c, "--out is required (e.g. -o prod.json)")
	}
	var raw []byte
	var err error
	if in == "-" {
		raw, err = io.ReadAll(a.stdin)
	} else {
		raw, err = os.ReadFile(in)
	}
	if err != nil {
		return badInput(c, fmt.Errorf("read stack output: %w", err))
	}
	t, caPEM, err := targetFromOutputs(raw, pkiDir)
	if err != nil {
		return badInput(c, err)
	}
	caPath, err := writeTarget(t, caPEM, out)
	if err != nil {
		return couldNotRun(c, err)
	}
	_, err = fmt.Fprintf(a.stdout, "wrote %s (host %s, server name %s) and its CA certificate %s\n", out, t.Host, t.ServerName, caPath)
	return err
}

// targetFromOutputs builds the target from the JSON of `pulumi stack output
// --json --show-secrets`. pkiOverride replaces the stack's pkiDir. The CA
// certificate comes back separately: the target holds its path, which only
// the writer knows. Every problem is reported at once.
func targetFromOutputs(raw []byte, pkiOverride string) (*target.Target, []byte, error) {
	var o stackOutputs
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, nil, fmt.Errorf("stack output is not the JSON of `pulumi stack output --json --show-secrets`: %w", err)
	}
	var errs []error
	for k, v := range map[string]string{"host": o.Host, "serverName": o.ServerName, "caCertPem": o.CACertPEM} {
		if v == "[secret]" {
			errs = append(errs, fmt.Errorf("output %s is hidden: run `pulumi stack output --json --show-secrets`", k))
		}
	}
	caPEM := []byte(o.CACertPEM)
	if o.CACertPEM == "" {
		errs = append(errs, errors.New("output caCertPem: missing (is this the mqttstack stack?)"))
	} else if blk, _ := pem.Decode(caPEM); blk == nil || blk.Type != "CERTIFICATE" {
		errs = append(errs, errors.New("output caCertPem: not a PEM certificate"))
	} else if c, err := x509.ParseCertificate(blk.Bytes); err != nil || !c.IsCA {
		errs = append(errs, fmt.Errorf("output caCertPem: not a CA certificate (%v)", err))
	}
	pki := o.PKIDir
	if pkiOverride != "" {
		pki = pkiOverride
	}
	if pki != "" {
		abs, err := filepath.Abs(pki)
		if err != nil {
			errs = append(errs, fmt.Errorf("pki dir %s: %w", pki, err))
		}
		pki = abs
		// The stack must have been deployed with this PKI: devices
		// identities from another CA would all be refused.
		if local, err := os.ReadFile(filepath.Join(pki, "ca.crt")); err != nil {
			errs = append(errs, fmt.Errorf("pki dir %s: %w (give the PKI the stack was deployed with: --pki-dir)", pki, err))
		} else if len(caPEM) > 0 && !bytes.Equal(bytes.TrimSpace(local), bytes.TrimSpace(caPEM)) {
			errs = append(errs, fmt.Errorf("pki dir %s: its ca.crt is not the CA the stack trusts (caCertPem); device certificates from it would be refused", pki))
		}
	}
	name := o.Name
	if name == "" {
		name = "stack"
	}
	t := &target.Target{
		Name:       name,
		Host:       o.Host,
		ServerName: o.ServerName,
		MQTTSPort:  o.MQTTSPort,
		WSSURL:     o.WSSURL,
		HTTPSURL:   o.HTTPSURL,
		CACert:     "ca.crt", // placeholder until the writer places the file
		PKIDir:     pki,
		Observer:   o.Observer,
		Backend:    o.Backend,
	}
	if err := t.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return t, caPEM, nil
}

// writeTarget writes the CA certificate next to the target file as
// <stem>-ca.crt and the target pointing at it (relative, so the pair can
// move together). It returns the CA path.
func writeTarget(t *target.Target, caPEM []byte, path string) (string, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	stem := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	caName := stem + "-ca.crt"
	caPath := filepath.Join(dir, caName)
	if err := atomicfile.Write(caPath, caPEM, 0o644); err != nil {
		return "", err
	}
	t.CACert = caName
	if err := t.Save(path); err != nil {
		return "", err
	}
	return caPath, nil
}
