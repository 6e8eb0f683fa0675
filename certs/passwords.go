package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
)

// RevokedIDs returns which of ids are revoked identities of the PKI in
// pkiDir: identities that hold a client certificate of at least one
// trusted CA generation (<pki>, and during a rollover <pki>/previous and
// <pki>/next) and each of whose certificates is listed, by serial, in its
// generation's revoked.json. Their passwords must not open a password
// listener, so MosquittoPasswordFile leaves them out.
//
// revoked.json is the source of truth, not the identity's files (Revoke
// keeps them: tests still present a revoked certificate), so an identity
// revoked before this rule existed is covered, and one re-issued after its
// revocation (a new serial) or re-issued under the other generation of a
// rollover is not revoked. An id without any certificate is not judged
// here. Only certificates and revoked.json are read, never a CA key
// (infra/broker loads a PKI without it). Sub-CA identities are not judged:
// their passwords never reach the broker's password file.
func RevokedIDs(pkiDir string, ids []string) (map[string]bool, error) {
	type generation struct {
		dir     string
		serials map[string]bool // hex, as big.Int.Text(16) writes it
	}
	var gens []generation
	named := map[string]bool{} // ids some revoked.json names
	for _, d := range []string{filepath.Join(pkiDir, previousDir), pkiDir, filepath.Join(pkiDir, nextDir)} {
		if d != pkiDir {
			if _, err := os.Stat(filepath.Join(d, caCertFile)); errors.Is(err, fs.ErrNotExist) {
				continue
			} else if err != nil {
				return nil, fmt.Errorf("revoked identities: %w", err)
			}
		}
		l, err := readRevokedDir(d)
		if err != nil {
			return nil, fmt.Errorf("revoked identities: %w", err)
		}
		g := generation{dir: d, serials: make(map[string]bool, len(l.Revoked))}
		for _, e := range l.Revoked {
			n, ok := new(big.Int).SetString(e.Serial, 16)
			if !ok {
				return nil, fmt.Errorf("revoked identities: %s: serial %q of %s is not hex (fix or remove the entry)", filepath.Join(d, revokedFile), e.Serial, e.ID)
			}
			g.serials[n.Text(16)] = true
			named[e.ID] = true
		}
		gens = append(gens, g)
	}
	out := map[string]bool{}
	var errs []error
	for _, id := range ids {
		if !named[id] {
			continue // no revoked.json lists it: none of its certificates is revoked
		}
		held, live := 0, 0
		for _, g := range gens {
			c, err := readCertFile(filepath.Join(g.dir, clientsDir, id+".crt"))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("revoked identities: %s: %w (re-issue it: remove the file and run `mqttstack certs issue --id %s`)", id, err, id))
				continue
			}
			held++
			if !g.serials[c.SerialNumber.Text(16)] {
				live++
			}
		}
		if held > 0 && live == 0 {
			out[id] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
