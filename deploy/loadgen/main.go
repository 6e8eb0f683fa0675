// Command loadgen is the Pulumi program of the deploy/loadgen project: it
// runs one mqttstack scenario as an Indexed Job of shards on the Kubernetes
// cluster of the current kubeconfig context. Everything it does lives in
// package infra/loadgen, where it is tested under Pulumi's mocks; this file
// only hands the program to the Pulumi engine.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/mqttstack/mqttstack/infra/loadgen"
)

func main() {
	pulumi.Run(loadgen.Program)
}
