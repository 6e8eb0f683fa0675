// Command mqttstack provisions, load-tests and guards a small MQTT stack
// (Mosquitto + nginx + a private device CA). main is one call: it builds a
// signal-aware context, runs the command tree (root.go) and turns the
// returned error into an exit code in exactly one place (errors.go).
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(a.main(os.Args[1:]))
}

// app is what the commands may touch of the process: the standard streams
// and the environment. Commands take it instead of reaching for os.Stdout
// or os.Getenv, so tests run the whole tree in-process with buffers.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// main runs args and returns the process exit code.
func (a *app) main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return exitCode(a.execute(ctx, args), a.stderr)
}

// execute builds a fresh command tree and runs args through it.
func (a *app) execute(ctx context.Context, args []string) error {
	root := newRootCmd(a)
	root.SetArgs(singleDashLongFlags(root, args))
	return root.ExecuteContext(ctx)
}
