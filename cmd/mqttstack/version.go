package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

func newVersionCmd(_ *app) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of mqttstack",
		Example: "  mqttstack version",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(c.OutOrStdout(), "mqttstack dev (%s %s/%s)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
