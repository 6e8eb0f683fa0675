// Command infra is the mqttstack Pulumi program for `pulumi up`
// (Pulumi.yaml: main: infra/), for users whose Pulumi CLI carries the Go
// language host. `mqttstack deploy` runs the same function inline through
// the Automation API; see package program.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/mqttstack/mqttstack/infra/program"
)

func main() { pulumi.Run(program.Run) }
