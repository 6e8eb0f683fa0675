package security

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// directive is one line of an effective mosquitto configuration.
type directive struct {
	key, value string
	file       string
	line       int
}

// readConf reads a mosquitto.conf and the include_dir files in the order
// the broker reads them (the included files are sorted by name and read at
// the point of the include_dir line). Comments must be whole lines in
// 2.0.11, so a '#' only starts a comment at the start of a line.
func readConf(path string) ([]directive, error) {
	var out []directive
	if err := readConfInto(path, &out, 0); err != nil {
		return nil, err
	}
	return out, nil
}

func readConfInto(path string, out *[]directive, depth int) error {
	if depth > 4 {
		return fmt.Errorf("%s: include_dir nesting too deep", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	return directiveLines(f, func(n int, _, k, v string) error {
		d := directive{key: k, value: v, file: path, line: n}
		*out = append(*out, d)
		if k == "include_dir" {
			ents, err := os.ReadDir(d.value)
			if err != nil {
				return fmt.Errorf("%s:%d include_dir: %w", path, n, err)
			}
			var names []string
			for _, en := range ents {
				if !en.IsDir() && strings.HasSuffix(en.Name(), ".conf") {
					names = append(names, en.Name())
				}
			}
			sort.Strings(names)
			for _, nm := range names {
				if err := readConfInto(filepath.Join(d.value, nm), out, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// directiveLines calls fn for every directive of a mosquitto config or ACL
// file in order, with its line number, the trimmed line, the key and the
// trimmed value; blank lines and lines starting with '#' are skipped. It
// stops at fn's first error and returns it, else the scanner's.
func directiveLines(r io.Reader, fn func(n int, line, key, value string) error) error {
	s := bufio.NewScanner(r)
	n := 0
	for s.Scan() {
		n++
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		if err := fn(n, line, k, strings.TrimSpace(v)); err != nil {
			return err
		}
	}
	return s.Err()
}

// listenerScoped are the options that, before the first `listener` line,
// configure Mosquitto's implicit default listener (F1): on 2.0.11 that
// listener binds 0.0.0.0:1883 and [::]:1883 with anonymous access.
var listenerScoped = map[string]bool{
	"cafile": true, "capath": true, "certfile": true, "keyfile": true, "ciphers": true, "ciphers_tls1.3": true,
	"crlfile": true, "dhparamfile": true, "require_certificate": true, "tls_version": true, "tls_engine": true,
	"tls_keyform": true, "tls_engine_kpass_sha1": true, "use_identity_as_username": true, "use_subject_as_username": true,
	"use_username_as_clientid": true, "password_file": true, "acl_file": true, "allow_anonymous": true,
	"allow_zero_length_clientid": true, "auto_id_prefix": true, "psk_file": true, "psk_hint": true,
	"max_connections": true, "protocol": true, "mount_point": true, "bind_interface": true, "socket_domain": true,
	"http_dir": true, "port": true, "bind_address": true, "websockets_log_level": true, "max_topic_alias": true,
	"auth_plugin": true, "plugin": true, "max_qos": true,
}

// socket is one listening TCP socket.
type socket struct {
	addr net.IP
	port int
}

func (s socket) String() string { return net.JoinHostPort(s.addr.String(), strconv.Itoa(s.port)) }

// listeningSockets returns the TCP sockets in LISTEN state owned by pid,
// from /proc (no `ss` needed, same user as the daemon).
func listeningSockets(pid int) ([]socket, error) {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w (is pid %d running, and ours?)", fdDir, err, pid)
	}
	inodes := map[string]bool{}
	for _, en := range ents {
		l, err := os.Readlink(filepath.Join(fdDir, en.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []socket
	for _, tbl := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(tbl)
		if err != nil {
			continue
		}
		s := bufio.NewScanner(f)
		s.Scan() // header
		for s.Scan() {
			fs := strings.Fields(s.Text())
			if len(fs) < 10 || fs[3] != "0A" || !inodes[fs[9]] {
				continue
			}
			a, p, _ := strings.Cut(fs[1], ":")
			ip, err := procIP(a)
			if err != nil {
				continue
			}
			port, _ := strconv.ParseUint(p, 16, 16)
			out = append(out, socket{addr: ip, port: int(port)})
		}
		f.Close()
	}
	return out, nil
}

// procIP decodes /proc/net/tcp{,6} addresses (little-endian 32-bit words).
func procIP(h string) (net.IP, error) {
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, err
	}
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return net.IP(b), nil
}

// brokerPID returns the local target's mosquitto pid after checking that
// the process really is that broker (its command line names mosquitto and
// the target's config): a stale target file must never make the suite
// signal an unrelated process.
func (e *Env) brokerPID() (int, error) {
	if e.T.Local == nil || e.T.Local.MosquittoPID <= 0 {
		return 0, fmt.Errorf("target has no local mosquitto pid")
	}
	pid := e.T.Local.MosquittoPID
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0, fmt.Errorf("mosquitto pid %d: %w (is the local stack running? `mqttstack local up`)", pid, err)
	}
	cmd := strings.ReplaceAll(string(b), "\x00", " ")
	if !strings.Contains(cmd, "mosquitto") || (e.T.Local.MosquittoConf != "" && !strings.Contains(cmd, e.T.Local.MosquittoConf)) {
		return 0, fmt.Errorf("pid %d is %q, not the target's mosquitto (stale target file?)", pid, cmd)
	}
	return pid, nil
}
