package devices

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/mqttstack/mqttstack/certs"
)

// IdentityPrefix starts the ids of the matrix's own identities:
// compat-ecdsa and compat-rsa2048 (one per client key type, used one
// profile at a time, so two never share a session).
const IdentityPrefix = "compat-"

// KeyTypeOf names the key type of a certificate's key ("" if neither).
func KeyTypeOf(c *tls.Certificate) KeyType {
	switch c.PrivateKey.(type) {
	case *ecdsa.PrivateKey:
		return KeyECDSA
	case *rsa.PrivateKey:
		return KeyRSA
	}
	return ""
}

// PKIIdentities returns an Options.Identity that loads compat-<key type>
// from the PKI directory, issuing it with the profile's key type when it
// is missing or has another key type and ca (the PKI's CA, nil when its
// key is not here) can. Safe for concurrent use.
func PKIIdentities(pkiDir string, ca *certs.Authority) func(Profile) (*tls.Certificate, string, error) {
	var mu sync.Mutex
	cache := map[KeyType]*tls.Certificate{}
	return func(p Profile) (*tls.Certificate, string, error) {
		mu.Lock()
		defer mu.Unlock()
		id := IdentityPrefix + string(p.ClientKey)
		if c := cache[p.ClientKey]; c != nil {
			return c, id, nil
		}
		c, err := certs.LoadClient(pkiDir, id)
		if err == nil && KeyTypeOf(&c) == p.ClientKey {
			cache[p.ClientKey] = &c
			return &c, id, nil
		}
		if ca == nil {
			why := "it is missing"
			if err == nil {
				why = fmt.Sprintf("it has a %s key", KeyTypeOf(&c))
			} else if !errors.Is(err, fs.ErrNotExist) {
				why = err.Error()
			}
			return nil, id, fmt.Errorf("profile %s needs a %s client identity %s, and %s; the CA key is not in %s to issue it (fix: run the matrix once where the CA key is, it issues %s itself)", p.Name, p.ClientKey, id, why, pkiDir, id)
		}
		if err := ca.IssueClient(id, certs.ClientOptions{Key: certs.KeyType(p.ClientKey)}); err != nil {
			return nil, id, fmt.Errorf("profile %s: issue %s: %w", p.Name, id, err)
		}
		c, err = certs.LoadClient(pkiDir, id)
		if err != nil {
			return nil, id, err
		}
		if c.Leaf == nil && len(c.Certificate) > 0 {
			c.Leaf, _ = x509.ParseCertificate(c.Certificate[0])
		}
		cache[p.ClientKey] = &c
		return &c, id, nil
	}
}
