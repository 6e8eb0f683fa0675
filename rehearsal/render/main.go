// Command render writes what the Broker component would send to an
// existing host (provider ssh): the remote command, the provisioning script
// for its stdin, and the stack outputs the Pulumi program would export, for
// `mqttstack target from-stack`. rehearsal/run.sh runs these against a
// chrooted Debian in a network namespace, so the rehearsal exercises the
// bytes a VPS receives, produced by the same function (broker.Provisioning).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/mqttstack/mqttstack/infra/broker"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	pki := fs.String("pki", "", "PKI directory (mqttstack certs init)")
	host := fs.String("host", "", "the host's address")
	serverName := fs.String("server-name", "", "TLS server name (a SAN of the server certificate)")
	adminCIDR := fs.String("admin-cidr", "", "network allowed to SSH")
	scriptPath := fs.String("script", "", "write the provisioning script here (0600: it carries the server key)")
	commandPath := fs.String("command", "", "write the remote command here")
	outputsPath := fs.String("outputs", "", "write the stack outputs (JSON) here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pki == "" || *host == "" || *serverName == "" || *adminCIDR == "" || *scriptPath == "" || *commandPath == "" || *outputsPath == "" {
		return errors.New("all of -pki -host -server-name -admin-cidr -script -command -outputs are required")
	}
	p, err := broker.LoadPKI(*pki, *serverName)
	if err != nil {
		return err
	}
	s := hostconfig.VPSStack(*serverName)
	s.AdminCIDR = *adminCIDR
	a := broker.Args{Provider: broker.SSH, Stack: s, PKI: p, Connection: broker.Connection{Host: *host}}
	command, script, err := broker.Provisioning(a)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*scriptPath, script, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(*commandPath, []byte(command+"\n"), 0o644); err != nil {
		return err
	}
	// The outputs infra/main.go exports for this stack (provider ssh: the
	// host is the configured address).
	out, err := json.MarshalIndent(map[string]any{
		"name":       "rehearsal",
		"provider":   string(broker.SSH),
		"host":       *host,
		"serverName": *serverName,
		"mqttsPort":  s.MQTTSPort,
		"wssUrl":     fmt.Sprintf("wss://%s/mqtt", *serverName),
		"httpsUrl":   fmt.Sprintf("https://%s/", *serverName),
		"caCertPem":  string(p.CACert),
		"pkiDir":     *pki,
		"observer":   "observer",
		"backend":    "backend",
	}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*outputsPath, out, 0o644)
}
