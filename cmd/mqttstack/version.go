package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
)

func init() {
	register("version", "print the version of mqttstack", func(_ context.Context, _ []string, stdout, _ io.Writer) error {
		fmt.Fprintf(stdout, "mqttstack dev (%s %s/%s)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	})
}
