// Command pulumi-resource-mqttstack is mqttstack's Pulumi resource provider
// plugin (resource mqttstack:index:HostConfig, implemented in
// infra/hostprovider). The Pulumi engine starts it; install a build with
//
//	pulumi plugin install resource mqttstack 0.1.0 --file bin/pulumi-resource-mqttstack
package main

import (
	"context"
	"fmt"
	"os"

	p "github.com/pulumi/pulumi-go-provider"

	"github.com/mqttstack/mqttstack/infra/hostprovider"
	"github.com/mqttstack/mqttstack/infra/hostres"
)

func main() {
	prov, err := hostprovider.Provider()
	if err == nil {
		err = p.RunProvider(context.Background(), hostres.PluginName, hostres.PluginVersion, prov)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-%s: %v\n", hostres.PluginName, err)
		os.Exit(1)
	}
}
