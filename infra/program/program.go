// Package program is the mqttstack Pulumi program: it validates the stack
// configuration, creates one Broker component and exports the outputs that
// form the target file of `mqttstack run` and `mqttstack security`.
//
// Run is a plain pulumi.RunFunc so that three callers share it: infra/main.go
// (`pulumi up` for users whose CLI has the Go language host), the
// Automation API runner infra/deploy (`mqttstack deploy`, an inline program:
// no language host needed) and the unit tests (pulumi.RunErr with mocks).
package program

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/mqttstack/mqttstack/infra/broker"
	"github.com/mqttstack/mqttstack/infra/outputs"
)

// Project is the Pulumi project name (Pulumi.yaml) and the config namespace.
const Project = namespace

// Default identities; the target names them and certs issues them at init.
const (
	observerID = "observer"
	backendID  = "backend"
)

// Run builds the stack. It returns configuration errors instead of
// panicking, every problem at once.
func Run(ctx *pulumi.Context) error {
	cfg, err := loadConfig(ctx)
	if err != nil {
		return err
	}
	b, err := broker.New(ctx, "mqtt", cfg.brokerArgs())
	if err != nil {
		return err
	}
	exportTarget(ctx, cfg, b)
	return nil
}

// exportTarget exports the target-file fields (see target.Target) under
// the keys of package outputs, which also reads them back. The CA
// certificate is exported as PEM text; `mqttstack deploy up` and
// `mqttstack target from-stack` write it to a file next to the target,
// whose ca_cert field is a path.
func exportTarget(ctx *pulumi.Context, cfg stackConfig, b *broker.Broker) {
	ctx.Export(outputs.Name, pulumi.String(ctx.Stack()))
	ctx.Export(outputs.Provider, pulumi.String(string(cfg.provider)))
	ctx.Export(outputs.Host, b.Host)
	ctx.Export(outputs.ServerName, b.ServerName)
	ctx.Export(outputs.MQTTSPort, b.MQTTSPort)
	ctx.Export(outputs.WSSURL, b.WSSURL)
	ctx.Export(outputs.HTTPSURL, b.HTTPSURL)
	ctx.Export(outputs.CACertPEM, b.CACertPEM)
	ctx.Export(outputs.PKIDir, pulumi.String(cfg.pkiDir))
	ctx.Export(outputs.Observer, pulumi.String(observerID))
	ctx.Export(outputs.Backend, pulumi.String(backendID))
	ctx.Export(outputs.ConfigHash, b.ConfigHash)
	// How to reach the host (the target's ssh section): the key file is
	// the operator's, never exported.
	ctx.Export(outputs.SSHUser, b.SSHUser)
	ctx.Export(outputs.SSHPort, b.SSHPort)
	ctx.Export(outputs.SSHHostKey, b.HostKey)
	ctx.Export(outputs.HostKeyFingerprint, b.HostKeyFingerprint)
	ctx.Export(outputs.MosquittoVersion, b.MosquittoVersion)
	ctx.Export(outputs.NginxVersion, b.NginxVersion)
	if cfg.public {
		ctx.Export(outputs.AcmeStatus, b.AcmeStatus)
	}
}
