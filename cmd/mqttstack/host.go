package main

import (
	"context"
	"fmt"
	"time"

	"github.com/mqttstack/mqttstack/host"
	"github.com/mqttstack/mqttstack/host/sshhost"
	"github.com/mqttstack/mqttstack/infra/local"
	"github.com/mqttstack/mqttstack/target"
)

// sshBudget is how long opening a deployed host keeps retrying SSH.
const sshBudget = 15 * time.Second

// openHost opens the machine a target's stack runs on: the local stack's
// state directory when the target has a "local" section, the host in its
// "ssh" section otherwise. A target with neither gives nil: no host
// access, which the packages report as skipped checks, never as passed.
// A host the target names but that cannot be opened is an error: the
// caller cannot do what the target says it can. The caller closes the
// host.
func openHost(ctx context.Context, t *target.Target) (host.Host, error) {
	switch {
	case t.Local != nil:
		h, err := local.OpenHost(t.Local.StateDir)
		if err != nil {
			return nil, fmt.Errorf("local stack of target %s: %w", t.Name, err)
		}
		return h, nil
	case t.SSH != nil:
		h, err := sshhost.Dial(ctx, t.SSH, sshhost.Options{Budget: sshBudget})
		if err != nil {
			return nil, fmt.Errorf("host of target %s over ssh: %w", t.Name, err)
		}
		return h, nil
	}
	return nil, nil
}
