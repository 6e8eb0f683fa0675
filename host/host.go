// Package host is how mqttstack reaches the machine a stack runs on, whatever
// that machine is: the local stack's daemons on 127.0.0.1 (package
// infra/local implements Host), or a deployed VPS over SSH with a pinned host
// key (package host/sshhost). The target file stays plain data; whoever
// needs to read a config, list listeners, reload a daemon or read what the
// daemons cost asks a Host, and never branches on PIDs or paths itself.
package host

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Daemon names one of the stack's services.
type Daemon string

// The stack's daemons.
const (
	Mosquitto Daemon = "mosquitto"
	Nginx     Daemon = "nginx"
)

// Listener is one listening TCP socket of a daemon.
type Listener struct {
	Daemon Daemon         // which daemon owns it ("" if another process)
	Addr   netip.AddrPort // bound address (0.0.0.0 / :: for every address)
	// PID and Process name the process holding the socket (for nginx the
	// master; 0 and "" when the host cannot tell).
	PID     int
	Process string
}

// Cost is what one daemon process has used so far, read from the host's
// process accounting (/proc). Differences between two readings give the
// broker's CPU per operation.
type Cost struct {
	Daemon Daemon
	PID    int
	CPU    time.Duration // user + system time since the process started
	RSS    int64         // resident memory in bytes now
}

// Host is one machine running a stack. Implementations are safe for
// concurrent use. Every method takes the context that bounds it.
type Host interface {
	// Name says which machine this is, for reports ("local", "ssh root@203.0.113.7").
	Name() string
	// ConfigPath is where the daemon's main configuration file lives on the host.
	ConfigPath(d Daemon) string
	// ReadFile returns the content of a file on the host.
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// Listeners lists the listening TCP sockets of the stack's daemons.
	Listeners(ctx context.Context) ([]Listener, error)
	// Reload makes the daemon re-read its configuration (SIGHUP: Mosquitto
	// re-reads ACL, password file and CRL; nginx its whole config).
	Reload(ctx context.Context, d Daemon) error
	// Costs reads every daemon's CPU time and resident memory now.
	Costs(ctx context.Context) ([]Cost, error)
	// Close releases the connection (a no-op for the local stack).
	Close() error
}

// ErrUnsupported is returned by a Host that cannot do what was asked (say,
// Reload on a read-only connection). Callers report the check as skipped
// with the reason, never as passed.
var ErrUnsupported = errors.New("not supported by this host")
