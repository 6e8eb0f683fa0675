// Command infra is the mqttstack Pulumi program (Pulumi.yaml: main: infra/).
// It validates the stack configuration, creates one Broker component and
// exports the outputs that `mqttstack target from-stack` turns into a
// target file for `mqttstack run` and `mqttstack security`.
//
// The program body is program, a plain function, so that unit tests run it
// under pulumi.RunErr with mocks and so that an Automation API inline
// program can run it where no Go language host is installed.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/mqttstack/mqttstack/infra/broker"
)

// Default identities; the target names them and certs issues them at init.
const (
	observerID = "observer"
	backendID  = "backend"
)

func main() {
	pulumi.Run(program)
}

// program builds the stack. It returns configuration errors instead of
// panicking, every problem at once.
func program(ctx *pulumi.Context) error {
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
// certificate is exported as PEM text; `mqttstack target from-stack` writes
// it to a file next to the target, whose ca_cert field is a path.
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
}
