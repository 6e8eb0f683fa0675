package hostconfig

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mqttstack/mqttstack/certs"
)

// PasswordFile renders mosquitto's password_file: one "user:$7$…" line per
// credential (PBKDF2-SHA512, certs.MosquittoPasswordHash), sorted by user so
// that re-rendering the same identities only changes the salts. The file is
// used by the loopback WebSocket (and ops) listener only; the mTLS listener
// authenticates by certificate.
func PasswordFile(entries []Credential) ([]byte, error) {
	sorted := append([]Credential(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].User < sorted[j].User })
	var b strings.Builder
	seen := map[string]bool{}
	for i, e := range sorted {
		if err := certs.ValidateID(e.User); err != nil {
			return nil, fmt.Errorf("password file entry %d: user %q: %w", i, e.User, err)
		}
		if seen[e.User] {
			return nil, fmt.Errorf("password file: user %q appears twice", e.User)
		}
		seen[e.User] = true
		if e.Password == "" {
			return nil, fmt.Errorf("password file: user %q has an empty password", e.User)
		}
		h, err := certs.MosquittoPasswordHash(e.Password)
		if err != nil {
			return nil, fmt.Errorf("password file: user %q: %w", e.User, err)
		}
		b.WriteString(e.User)
		b.WriteByte(':')
		b.WriteString(h)
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}

// PasswordFileEntry wraps rendered password-file content as the File for
// this stack: 0600 locally (only the broker's own user reads it), 0640
// root:mosquitto on a VPS (the broker reads it after dropping root).
func PasswordFileEntry(s Stack, content []byte) File {
	f := File{Path: s.Paths.PasswordFile, Mode: 0o600, Content: content}
	if !s.Local {
		f.Mode, f.Owner = 0o640, "root:mosquitto"
	}
	return f
}

// PasswordFiles splits a rendered password file of every identity (shared,
// from PasswordFile or certs.MosquittoPasswordFile) into what the broker
// reads: the shared file itself (ops listener, DeviceWSS listener) and one
// file per WSSIdentities entry holding only that identity's line, for its
// own WebSocket listener (WEB-05). An identity without a line in shared
// gets an empty file, which mosquitto loads and which refuses every
// password, so the broker still starts. Modes and owners follow
// PasswordFileEntry.
func PasswordFiles(s Stack, shared []byte) ([]File, error) {
	lines := map[string]string{}
	for i, l := range strings.Split(string(shared), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		user, _, ok := strings.Cut(l, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("password file line %d: not user:hash", i+1)
		}
		if _, dup := lines[user]; dup {
			return nil, fmt.Errorf("password file line %d: user %q appears twice", i+1, user)
		}
		lines[user] = l + "\n"
	}
	base := PasswordFileEntry(s, shared)
	out := []File{base}
	for _, id := range s.WSSIdentities {
		f := base
		f.Path = s.IdentityPasswordFile(id)
		f.Content = []byte(lines[id])
		out = append(out, f)
	}
	return out, nil
}
