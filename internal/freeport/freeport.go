// Package freeport chooses loopback ports for the daemons tests start
// (Mosquitto, nginx, sshd). A port is probed free, released, then bound by
// the daemon a moment later; in between, anything else on the machine may
// take it. Ports are therefore chosen below the kernel's ephemeral range
// (32768-60999 by default), from which every outgoing connection takes its
// local port: the load tests beside these make thousands of connections.
// No port is returned twice in one process, so two daemons of one test
// never get the same one.
package freeport

import (
	"fmt"
	mrand "math/rand/v2"
	"net"
	"strconv"
	"sync"
)

// Lo and Hi bound the ports Take chooses from.
const Lo, Hi = 20000, 32000

// attempts bounds the probes per port (and per block).
const attempts = 200

var given struct {
	sync.Mutex
	ports map[int]bool
}

// Take returns n distinct loopback ports and the first of a block of
// `block` consecutive ports (0 when block is 0), all free a moment ago.
// Every port is held until all are chosen, then released for the caller's
// daemons. (The broker's WebSocket listeners need such a block, one per
// WSS identity.)
func Take(n, block int) (ports []int, blockBase int, err error) {
	given.Lock()
	defer given.Unlock()
	if given.ports == nil {
		given.ports = map[int]bool{}
	}
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	// hold tries to hold p..p+k-1, all or none.
	hold := func(p, k int) bool {
		var ls []net.Listener
		for q := p; q < p+k; q++ {
			var l net.Listener
			err := fmt.Errorf("port %d: returned before", q)
			if !given.ports[q] {
				l, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(q)))
			}
			if err != nil {
				for _, l := range ls {
					l.Close()
				}
				return false
			}
			ls = append(ls, l)
		}
		held = append(held, ls...)
		return true
	}
	if block > 0 {
		for a := 0; blockBase == 0; a++ {
			if a == attempts {
				return nil, 0, fmt.Errorf("no %d consecutive free loopback ports in %d-%d after %d attempts", block, Lo, Hi, a)
			}
			if p := Lo + mrand.IntN(Hi-Lo-block); hold(p, block) {
				blockBase = p
			}
		}
	}
	for a := 0; len(ports) < n; a++ {
		if a == attempts*n {
			return nil, 0, fmt.Errorf("no %d free loopback ports in %d-%d after %d attempts", n, Lo, Hi, a)
		}
		if p := Lo + mrand.IntN(Hi-Lo); hold(p, 1) {
			ports = append(ports, p)
		}
	}
	for _, p := range ports {
		given.ports[p] = true
	}
	for q := blockBase; block > 0 && q < blockBase+block; q++ {
		given.ports[q] = true
	}
	return ports, blockBase, nil
}

// One is one port from Take, or the test fails.
func One(t interface {
	Helper()
	Fatal(args ...any)
}) int {
	t.Helper()
	ps, _, err := Take(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ps[0]
}
