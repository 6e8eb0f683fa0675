package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mqttstack/mqttstack/internal/atomicfile"
	"github.com/mqttstack/mqttstack/target"
)

func init() {
	register("target", "make a target file: from-stack (Pulumi stack outputs)", runTarget)
}

const targetUsage = `usage: mqttstack target <subcommand> [flags]

subcommands:
  from-stack [--stack-output FILE|-] [--pki-dir DIR] -o TARGET.json
      turns ` + "`pulumi stack output --json --show-secrets`" + ` into a target file, and
      writes the stack's CA certificate next to it (TARGET-ca.crt). Example:
        pulumi stack output --json --show-secrets | mqttstack target from-stack -o prod.json
`

func runTarget(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, targetUsage)
		return usageErrorf("target: no subcommand given (see the list above)")
	}
	switch args[0] {
	case "from-stack":
		return targetFromStack(args[1:], os.Stdin, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, targetUsage)
		return nil
	}
	fmt.Fprint(stderr, targetUsage)
	return usageErrorf("target: unknown subcommand %q", args[0])
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

func targetFromStack(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("target from-stack", stderr)
	in := fs.String("stack-output", "-", "file holding `pulumi stack output --json --show-secrets`, or - for stdin")
	pkiDir := fs.String("pki-dir", "", "PKI directory with the client identities (default: the stack's pkiDir output, which is relative to the Pulumi project root: run from there)")
	out := fs.String("o", "", "target file to write (e.g. prod.json); required")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("target from-stack: unexpected arguments %q", fs.Args())
	}
	if *out == "" {
		return usageErrorf("target from-stack: -o is required (e.g. -o prod.json)")
	}
	var raw []byte
	var err error
	if *in == "-" {
		raw, err = io.ReadAll(stdin)
	} else {
		raw, err = os.ReadFile(*in)
	}
	if err != nil {
		return usageErrorf("target from-stack: read stack output: %v", err)
	}
	t, caPEM, err := targetFromOutputs(raw, *pkiDir)
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("target from-stack: %w", err))
	}
	caPath, err := writeTarget(t, caPEM, *out)
	if err != nil {
		return withCode(exitCouldNotRun, fmt.Errorf("target from-stack: %w", err))
	}
	fmt.Fprintf(stdout, "wrote %s (host %s, server name %s) and its CA certificate %s\n", *out, t.Host, t.ServerName, caPath)
	return nil
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
