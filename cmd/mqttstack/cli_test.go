package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
)

// runIn runs the CLI in-process with stdin, as main does (minus the
// signals), and returns what a user would see.
func runIn(stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	a := &app{stdin: stdin, stdout: &o, stderr: &e, getenv: os.Getenv}
	code = exitCode(a.execute(context.Background(), args), &e)
	return o.String(), e.String(), code
}

// runCLI runs the CLI with an empty stdin.
func runCLI(args ...string) (stdout, stderr string, code int) {
	return runIn(strings.NewReader(""), args...)
}

// run is runCLI writing into the caller's buffers.
func run(args []string, stdout, stderr io.Writer) int {
	o, e, code := runCLI(args...)
	io.WriteString(stdout, o)
	io.WriteString(stderr, e)
	return code
}
