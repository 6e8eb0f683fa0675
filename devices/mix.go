package devices

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/fleet"
)

// Share is one profile's share of a fleet (a scenario's fleet.profiles).
type Share struct {
	Profile string
	Share   float64
}

// Assign gives every fleet index in [from, to) of a fleet of count devices
// its profile, interleaved by smooth weighted round robin over the whole
// fleet: the ramp mixes the boards as a real fleet would, every prefix of
// the fleet holds each profile within one device of its share, and shards
// (disjoint index ranges) agree on every device. Empty shares give nil.
func Assign(shares []Share, count, from, to int) ([]Profile, error) {
	if len(shares) == 0 {
		return nil, nil
	}
	ps := make([]Profile, len(shares))
	var errs []error
	for i, s := range shares {
		p, err := Lookup(s.Profile)
		if err != nil {
			errs = append(errs, err)
		}
		ps[i] = p
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if from < 0 || to > count || from > to {
		return nil, fmt.Errorf("devices: range [%d, %d) outside a fleet of %d", from, to, count)
	}
	total := 0.0
	for _, s := range shares {
		total += s.Share
	}
	cur := make([]float64, len(shares))
	out := make([]Profile, 0, to-from)
	for i := range to {
		best := 0
		for j, s := range shares {
			cur[j] += s.Share
			if cur[j] > cur[best] {
				best = j
			}
		}
		cur[best] -= total
		if i >= from {
			out = append(out, ps[best])
		}
	}
	return out, nil
}

// IssueFor issues the identities of ids whose profile needs a key other
// than the CA's default (RSA-2048 for modems, BearSSL "less secure", Pico W
// examples) and that are missing or carry another key type. ca issues;
// profiles[i] is the profile of ids[i]. Identities issued here are then
// kept by certs.IssueClients (it keeps any valid identity).
func IssueFor(ctx context.Context, ca *certs.Authority, pkiDir string, ids []string, profiles []Profile) ([]string, error) {
	if len(profiles) == 0 {
		return nil, nil
	}
	var todo []int
	for i, p := range profiles {
		c, err := certs.LoadClient(pkiDir, ids[i])
		switch {
		case err == nil && (KeyTypeOf(&c) == p.ClientKey || p.Native):
			continue // the key the board uses (the Go client takes any)
		case err != nil && (p.ClientKey == KeyType(ca.Key) || p.Native):
			continue // missing, and certs.IssueClients gives it the CA's key type
		}
		todo = append(todo, i)
	}
	issued := make([]bool, len(todo))
	errs := make([]error, len(todo))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				i := todo[k]
				if err := ca.IssueClient(ids[i], certs.ClientOptions{Key: certs.KeyType(profiles[i].ClientKey)}); err != nil {
					errs[k] = err
					continue
				}
				issued[k] = true
			}
		}()
	}
feed:
	for k := range todo {
		select {
		case next <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	var out []string
	for k, ok := range issued {
		if ok {
			out = append(out, ids[todo[k]])
		}
	}
	if err := errors.Join(errs...); err != nil {
		return out, fmt.Errorf("issue identities for device profiles: %w", err)
	}
	return out, ctx.Err()
}

// Apply sets the profile and its handshake on each fleet identity
// (profiles[i] for ids[i]; nil profiles leave the fleet as it is). It
// refuses, in one error naming the fix, identities whose key type is not
// the one their profile's board uses: an RSA-only modem cannot present an
// ECDSA key.
func Apply(ids []fleet.Identity, profiles []Profile, b Board) error {
	if len(profiles) == 0 {
		return nil
	}
	if len(profiles) != len(ids) {
		return fmt.Errorf("devices: %d profiles for %d identities", len(profiles), len(ids))
	}
	type miss struct {
		n     int
		first []string
		has   KeyType
	}
	wrong := map[string]*miss{}
	var order []string
	dialers := map[string]fleet.Handshake{}
	for i := range ids {
		p := profiles[i]
		if ids[i].Cert != nil && !p.Native {
			if k := KeyTypeOf(ids[i].Cert); k != p.ClientKey {
				m := wrong[p.Name]
				if m == nil {
					m = &miss{has: k}
					wrong[p.Name] = m
					order = append(order, p.Name)
				}
				m.n++
				if len(m.first) < 3 {
					m.first = append(m.first, ids[i].ID)
				}
				continue
			}
		}
		ids[i].Profile = p.Name
		if p.Native {
			continue // the fleet's own Go client
		}
		h, ok := dialers[p.Name]
		if !ok {
			h = Dialer(p, b)
			dialers[p.Name] = h
		}
		ids[i].Handshake = h
	}
	if len(order) == 0 {
		return nil
	}
	var msgs []string
	for _, name := range order {
		m := wrong[name]
		p, _ := Lookup(name)
		msgs = append(msgs, fmt.Sprintf("fleet.profiles: %s needs %s client keys, but %d of its devices (%s…) have %s keys", name, p.ClientKey, m.n, strings.Join(m.first, ", "), m.has))
	}
	return fmt.Errorf("%s (fix: run where the CA key is: mqttstack run then issues each device with the key its profile needs; or take the profile out of fleet.profiles)", strings.Join(msgs, "; "))
}
