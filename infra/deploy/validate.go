package deploy

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/mqttstack/mqttstack/infra/broker/brokertest"
	"github.com/mqttstack/mqttstack/infra/program"
)

// ValidateConfig runs the program (program.Run) as a preview under mocks:
// every configuration problem the program would report inside the engine
// is reported here first, all at once, before any state is touched. No
// resource is created and nothing leaves this process.
func ValidateConfig(cfg map[string]string, secret []string, rootDir, stack string) error {
	m := brokertest.New(program.Project, stack)
	return pulumi.RunErr(program.Run, pulumi.WithMocks(program.Project, stack, m), func(ri *pulumi.RunInfo) {
		ri.Config = cfg
		ri.ConfigSecretKeys = secret
		ri.DryRun = true
		ri.RootDirectory = rootDir
	})
}
