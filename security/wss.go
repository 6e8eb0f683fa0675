package security

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// wsListener is one of the broker's WebSocket listeners on a local
// target, read from its mosquitto.conf: since WEB-05 was closed there is one
// per WSS identity (its password file holds only that identity, named
// after it) and, in the opt-in DeviceWSS mode, a shared device listener.
type wsListener struct {
	port         int
	address      string
	passwordFile string
}

// wsListeners are the websockets listeners of the broker's configuration,
// read once through the Host by Prepare; nil without host access (then
// Local.WSPort alone stands for them on a local target).
func (e *Env) wsListeners() []wsListener { return e.wsLs }

// readWSListeners picks the websockets listeners out of conf.
func readWSListeners(conf []directive) []wsListener {
	var out []wsListener
	var cur *wsListener
	ws := false
	flush := func() {
		if cur != nil && ws {
			out = append(out, *cur)
		}
	}
	for _, d := range conf {
		switch d.key {
		case "listener":
			flush()
			port, addr := d.value, ""
			if i := indexSpace(d.value); i >= 0 {
				port, addr = d.value[:i], d.value[i+1:]
			}
			p, _ := strconv.Atoi(port)
			cur, ws = &wsListener{port: p, address: addr}, false
		case "protocol":
			ws = d.value == "websockets"
		case "password_file":
			if cur != nil {
				cur.passwordFile = d.value
			}
		}
	}
	flush()
	return out
}

func indexSpace(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == '\t' {
			return i
		}
	}
	return -1
}

// wsPortOf is the local WebSocket listener through which identity id logs
// in: its own (password file named after it), else the shared device
// listener of DeviceWSS, else Local.WSPort.
func (e *Env) wsPortOf(id string) int {
	if e.T.Local == nil {
		return 0 // loopback on a remote host: not reachable from here
	}
	ls := e.wsListeners()
	for _, l := range ls {
		if filepath.Base(l.passwordFile) == id {
			return l.port
		}
	}
	if e.T.WSSDevices && len(ls) > 0 {
		return ls[len(ls)-1].port
	}
	return e.T.Local.WSPort
}

// sharedWSPasswordFiles warns about websockets listeners whose password
// file holds more than one identity (the DeviceWSS mode): behind nginx such
// a listener cannot bind the certificate to the username (F8).
func (e *Env) sharedWSPasswordFiles(ctx context.Context) []string {
	var out []string
	for _, l := range e.wsListeners() {
		b, err := e.hostFile(ctx, l.passwordFile)
		if err != nil {
			continue
		}
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(line) != "" {
				n++
			}
		}
		if n > 1 {
			out = append(out, fmt.Sprintf("websockets listener 127.0.0.1:%d reads a password file of %d identities: certificate not bound to username (F8, DeviceWSS)", l.port, n))
		}
	}
	return out
}
