package certs

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// LoadClient loads the identity id from pkiDir/clients for a TLS client.
// The certificate file may hold a chain (leaf first, as a sub-CA writes
// it); all of it is presented. Leaf is set, so callers never parse again:
// the fleet loads tens of thousands of these.
//
// During a CA rollover, after promote, an id not yet re-issued under the
// new CA is loaded from <pki>/previous/clients (still trusted).
func LoadClient(pkiDir, id string) (tls.Certificate, error) {
	base := filepath.Join(pkiDir, clientsDir, id)
	crt, err := os.ReadFile(base + ".crt")
	if errors.Is(err, fs.ErrNotExist) {
		prev := filepath.Join(pkiDir, previousDir, clientsDir, id)
		if c, perr := os.ReadFile(prev + ".crt"); perr == nil {
			base, crt, err = prev, c, nil
		}
	}
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load client %s: %w (issue it with `mqttstack certs issue --dir %s --id %s`)", id, err, pkiDir, id)
	}
	key, err := os.ReadFile(base + ".key")
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load client %s: %w (re-issue it: remove %s.crt and run `mqttstack certs issue --dir %s --id %s`)", id, err, base, pkiDir, id)
	}
	// Parsed here rather than by tls.X509KeyPair, which tries PKCS#1
	// before PKCS#8 and parses the leaf a second time: this is the fleet's
	// start-up cost per device.
	var c tls.Certificate
	for {
		var b *pem.Block
		b, crt = pem.Decode(crt)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			c.Certificate = append(c.Certificate, b.Bytes)
		}
	}
	if len(c.Certificate) == 0 {
		return tls.Certificate{}, fmt.Errorf("load client %s: %s.crt holds no certificate (remove it and issue %s again)", id, base, id)
	}
	if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
		return tls.Certificate{}, fmt.Errorf("load client %s: %s.crt: %w", id, base, err)
	}
	signer, err := parseKeyPEM(key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load client %s: %s.key: %w", id, base, err)
	}
	if !publicKeysEqual(signer.Public(), c.Leaf.PublicKey) {
		return tls.Certificate{}, fmt.Errorf("load client %s: %s.key does not match %s.crt (remove both and issue %s again)", id, base, base, id)
	}
	c.PrivateKey = signer
	return c, nil
}

// LoadClients loads many identities in parallel (GOMAXPROCS workers), in
// the order of ids; the first error stops nothing but is returned.
func LoadClients(pkiDir string, ids []string) ([]tls.Certificate, error) {
	out := make([]tls.Certificate, len(ids))
	errs := make([]error, len(ids))
	forEachParallel(len(ids), func(i int) {
		out[i], errs[i] = LoadClient(pkiDir, ids[i])
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// forEachParallel calls fn(i) for every i in [0, n) on GOMAXPROCS
// goroutines and returns when all calls have returned. fn writes only to
// its own index of the caller's slices, so nothing needs a lock.
func forEachParallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// LoadCAPool returns a pool holding every certificate in the PEM file at
// caPath (normally <pki>/ca.crt).
func LoadCAPool(caPath string) (*x509.CertPool, error) {
	data, err := os.ReadFile(caPath)
	if err != nil {
		return nil, fmt.Errorf("load CA %s: %w (point at the PKI's ca.crt, e.g. .mqttstack/pki/ca.crt)", caPath, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("load CA %s: no PEM certificate in the file (is it the CA certificate?)", caPath)
	}
	return pool, nil
}

// ClientPassword returns the password of id for the password-authenticated
// loopback WebSocket listener (pkiDir/clients/<id>.pass).
func ClientPassword(pkiDir, id string) (string, error) {
	p := filepath.Join(pkiDir, clientsDir, id+".pass")
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		// not yet re-issued under the promoted CA (see LoadClient)
		if d, perr := os.ReadFile(filepath.Join(pkiDir, previousDir, clientsDir, id+".pass")); perr == nil {
			data, err = d, nil
		}
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("password of %s: %s does not exist (issue the identity with `mqttstack certs issue --dir %s --id %s`)", id, p, pkiDir, id)
		}
		return "", fmt.Errorf("password of %s: %w", id, err)
	}
	pw := strings.TrimSpace(string(data))
	if pw == "" {
		return "", fmt.Errorf("password of %s: %s is empty (remove %s.crt and issue %s again)", id, p, filepath.Join(pkiDir, clientsDir, id), id)
	}
	return pw, nil
}

// Mosquitto 2.0's password file format for PBKDF2-SHA512, as
// mosquitto_passwd writes it: $7$<iterations>$<base64 salt>$<base64 hash>,
// standard base64 with padding.
const (
	mosquittoIterations = 101
	mosquittoSaltLen    = 12
	mosquittoHashLen    = 64
)

// MosquittoPasswordHash returns the password-file hash of password in
// Mosquitto 2.0's "$7$" format (the part after "user:").
func MosquittoPasswordHash(password string) (string, error) {
	salt := make([]byte, mosquittoSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("mosquitto password hash: salt: %w", err)
	}
	return mosquittoHash(password, salt, mosquittoIterations)
}

// MosquittoSaltLen is the salt length mosquitto_passwd uses for "$7$".
const MosquittoSaltLen = mosquittoSaltLen

// MosquittoPasswordHashSalt is MosquittoPasswordHash with a caller-chosen
// salt (MosquittoSaltLen bytes), for callers that need the same file on
// every render, such as the Pulumi program (a random salt would show a
// change on every preview and re-provision the host for nothing).
func MosquittoPasswordHashSalt(password string, salt []byte) (string, error) {
	if len(salt) != mosquittoSaltLen {
		return "", fmt.Errorf("mosquitto password hash: salt is %d bytes, want %d", len(salt), mosquittoSaltLen)
	}
	return mosquittoHash(password, salt, mosquittoIterations)
}

func mosquittoHash(password string, salt []byte, iterations int) (string, error) {
	sum, err := pbkdf2.Key(sha512.New, password, salt, iterations, mosquittoHashLen)
	if err != nil {
		return "", fmt.Errorf("mosquitto password hash: %w", err)
	}
	return "$7$" + strconv.Itoa(iterations) + "$" +
		base64.StdEncoding.EncodeToString(salt) + "$" +
		base64.StdEncoding.EncodeToString(sum), nil
}

// MosquittoPasswordFile returns a Mosquitto password file ("id:$7$…"
// lines, in the order of ids) for the given identities, with each
// password read from pkiDir/clients/<id>.pass. Hashing runs in parallel.
// Revoked identities (RevokedIDs: every certificate they hold is revoked)
// get no line: the CRL keeps a revoked certificate out of mTLS and nginx's
// wss path, and this keeps its password out of the password listeners
// (the ops listener, the WebSocket listeners) that read this file.
func MosquittoPasswordFile(pkiDir string, ids []string) ([]byte, error) {
	revoked, err := RevokedIDs(pkiDir, ids)
	if err != nil {
		return nil, fmt.Errorf("mosquitto password file: %w", err)
	}
	lines := make([]string, len(ids))
	errs := make([]error, len(ids))
	forEachParallel(len(ids), func(i int) {
		// The id is the user name before ':' in the file.
		if err := ValidateID(ids[i]); err != nil {
			errs[i] = err
			return
		}
		if revoked[ids[i]] {
			return
		}
		pw, err := ClientPassword(pkiDir, ids[i])
		if err == nil {
			var h string
			if h, err = MosquittoPasswordHash(pw); err == nil {
				lines[i] = ids[i] + ":" + h + "\n"
			}
		}
		errs[i] = err
	})
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("mosquitto password file: %w", err)
	}
	return []byte(strings.Join(lines, "")), nil
}
