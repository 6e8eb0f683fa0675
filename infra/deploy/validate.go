package deploy

import (
	"errors"
	"regexp"
	"strings"

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
	err := pulumi.RunErr(program.Run, pulumi.WithMocks(program.Project, stack, m), func(ri *pulumi.RunInfo) {
		ri.Config = cfg
		ri.ConfigSecretKeys = secret
		ri.DryRun = true
		ri.RootDirectory = rootDir
	})
	return plainErrors(err)
}

// plainErrors drops the SDK's multierror framing ("1 error occurred:",
// "\t* ") and keeps one problem per line.
func plainErrors(err error) error {
	if err == nil {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimSpace(l)
		l = strings.TrimPrefix(l, "* ")
		if l == "" || occurredRE.MatchString(l) {
			continue
		}
		lines = append(lines, "  "+l)
	}
	return errors.New("\n" + strings.Join(lines, "\n"))
}

var occurredRE = regexp.MustCompile(`^\d+ errors? occurred:$`)
