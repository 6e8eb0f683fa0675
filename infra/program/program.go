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

// exportTarget exports the target-file fields (see target.Target). The CA
// certificate is exported as PEM text; `mqttstack deploy up` and
// `mqttstack target from-stack` write it to a file next to the target,
// whose ca_cert field is a path.
func exportTarget(ctx *pulumi.Context, cfg stackConfig, b *broker.Broker) {
	ctx.Export("name", pulumi.String(ctx.Stack()))
	ctx.Export("provider", pulumi.String(string(cfg.provider)))
	ctx.Export("host", b.Host)
	ctx.Export("serverName", b.ServerName)
	ctx.Export("mqttsPort", b.MQTTSPort)
	ctx.Export("wssUrl", b.WSSURL)
	ctx.Export("httpsUrl", b.HTTPSURL)
	ctx.Export("caCertPem", b.CACertPEM)
	ctx.Export("pkiDir", pulumi.String(cfg.pkiDir))
	ctx.Export("observer", pulumi.String(observerID))
	ctx.Export("backend", pulumi.String(backendID))
	ctx.Export("configHash", b.ConfigHash)
	// How to reach the host (the target's ssh section): the key file is
	// the operator's, never exported.
	ctx.Export("sshUser", b.SSHUser)
	ctx.Export("sshPort", b.SSHPort)
	ctx.Export("sshHostKey", b.HostKey)
	ctx.Export("hostKeyFingerprint", b.HostKeyFingerprint)
	ctx.Export("mosquittoVersion", b.MosquittoVersion)
	ctx.Export("nginxVersion", b.NginxVersion)
}
