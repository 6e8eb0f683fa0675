//go:build tools

// Package tools pins the Pulumi CLI source in its own module, so that the
// CLI's large dependency graph never enters the main module's go.mod. The
// build tag keeps this file out of every build; it exists for `go mod tidy`.
// Build with `make pulumi` (see ../../Makefile), which writes ./bin/pulumi.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
