// Command mqttstack provisions, load-tests and guards a small MQTT stack
// (Mosquitto + nginx + a private device CA). main is one call: it builds a
// signal-aware context, dispatches to a subcommand and turns the returned
// error into an exit code in exactly one place.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := dispatch(ctx, args, stdout, stderr)
	return exitCode(err, stderr)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return usageErrorf("no command given")
		}
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return usageErrorf("unknown command %q (see the list above)", args[0])
	}
	return c.run(ctx, args[1:], stdout, stderr)
}
