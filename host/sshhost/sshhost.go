// Package sshhost is host.Host over SSH (package internal/sshconn, host key
// pinned): a deployed stack's machine as the security and load packages see
// it. It runs plain POSIX tools that a Debian host has: cat for files,
// `ss -Htlnp` for listeners (with the process owning each socket), systemctl
// or a verified kill -HUP for reloads, and /proc for costs, parsed by
// package host/procfs exactly as the local stack parses its own /proc.
//
// Which process is which daemon comes from the pid files in the rendered
// configuration (hostconfig.Paths), never from a process name: a machine
// may run other brokers (this repository's tests do).
package sshhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mqttstack/mqttstack/host"
	"github.com/mqttstack/mqttstack/host/procfs"
	"github.com/mqttstack/mqttstack/infra/hostconfig"
	"github.com/mqttstack/mqttstack/internal/sshconn"
	"github.com/mqttstack/mqttstack/target"
)

// Host is a machine reached over SSH. Safe for concurrent use (every call
// is its own SSH session).
type Host struct {
	c     *sshconn.Client
	name  string
	paths hostconfig.Paths
	// ReloadTimeout bounds the wait for a daemon's reload log line
	// (default 15 s).
	ReloadTimeout time.Duration
}

var _ host.Host = (*Host)(nil)

// Options configure Dial.
type Options struct {
	// Paths is the layout of the rendered files on the host (default
	// hostconfig.VPSPaths(), what `mqttstack deploy up` provisions).
	Paths *hostconfig.Paths
	// Budget is how long Dial keeps retrying a host that does not answer
	// yet (0 = one attempt).
	Budget time.Duration
}

// Dial connects to the host in a target's ssh section (private key read
// from its key_file, host key pinned) and returns it as a host.Host.
func Dial(ctx context.Context, s *target.SSH, o Options) (*Host, error) {
	if s == nil {
		return nil, errors.New("target has no ssh section (`mqttstack deploy up` writes it)")
	}
	key, err := s.ReadKey()
	if err != nil {
		return nil, err
	}
	c, err := sshconn.Dial(ctx, sshconn.Config{Host: s.Host, Port: s.Port, User: s.User, PrivateKey: key, HostKey: s.HostKey, Budget: o.Budget})
	if err != nil {
		return nil, err
	}
	paths := hostconfig.VPSPaths()
	if o.Paths != nil {
		paths = *o.Paths
	}
	return New(c, s.User, paths), nil
}

// New wraps an open connection; Close closes it. user names the login in
// Name.
func New(c *sshconn.Client, user string, paths hostconfig.Paths) *Host {
	return &Host{c: c, name: "ssh " + user + "@" + c.Addr(), paths: paths}
}

// Name is "ssh user@host:port".
func (h *Host) Name() string { return h.name }

// ConfigPath is the daemon's main config in the host's layout.
func (h *Host) ConfigPath(d host.Daemon) string {
	switch d {
	case host.Mosquitto:
		return h.paths.MosquittoConf
	case host.Nginx:
		return h.paths.NginxConf
	}
	return ""
}

// ReadFile reads path with cat. A missing file wraps fs.ErrNotExist.
func (h *Host) ReadFile(ctx context.Context, path string) ([]byte, error) {
	out, _, err := h.c.Run(ctx, "cat -- "+Quote(path), nil)
	if err != nil {
		var ee *sshconn.ExitError
		if errors.As(err, &ee) && strings.Contains(ee.Stderr, "No such file") {
			return nil, fmt.Errorf("%s: read %s: %w", h.name, path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("%s: read %s: %w", h.name, path, err)
	}
	return out, nil
}

// ReadDir lists the names of the regular files in dir
// (hostconfig.DirSource, for include_dir). Names are NUL-separated on the
// wire, so any file name survives.
func (h *Host) ReadDir(ctx context.Context, dir string) ([]string, error) {
	script := fmt.Sprintf(`cd -- %s && for f in * .[!.]* ..?*; do if [ -f "$f" ]; then printf '%%s\0' "$f"; fi; done`, Quote(dir))
	out, _, err := h.c.Run(ctx, script, nil)
	if err != nil {
		var ee *sshconn.ExitError
		if errors.As(err, &ee) && (strings.Contains(ee.Stderr, "No such file") || strings.Contains(ee.Stderr, "can't cd")) {
			return nil, fmt.Errorf("%s: list %s: %w", h.name, dir, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("%s: list %s: %w", h.name, dir, err)
	}
	var names []string
	for _, n := range strings.Split(string(out), "\x00") {
		if n != "" {
			names = append(names, n)
		}
	}
	return names, nil
}

// Listeners lists every listening TCP socket of the machine (`ss -Htlnp`),
// each with the process holding it; sockets of the stack's daemons (their
// pids from the pid files, nginx's workers by their master) carry the
// daemon's name.
func (h *Host) Listeners(ctx context.Context) ([]host.Listener, error) {
	// one session: the pid files, then ss
	out, _, err := h.c.Run(ctx, h.pidScript()+"; echo '--- ss'; ss -Htlnp", nil)
	if err != nil {
		return nil, fmt.Errorf("%s: ss -Htlnp: %w (is iproute2 installed?)", h.name, err)
	}
	head, table, ok := bytes.Cut(out, []byte("--- ss\n"))
	if !ok {
		return nil, fmt.Errorf("%s: ss -Htlnp: no output", h.name)
	}
	pids, err := parsePids(head)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.name, err)
	}
	ls, err := parseSS(table)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.name, err)
	}
	for i := range ls {
		for _, owner := range ls[i].owners {
			for d, pid := range pids {
				if pid != 0 && owner.pid == pid {
					ls[i].Daemon, ls[i].PID, ls[i].Process = d, pid, owner.name
				}
			}
		}
	}
	res := make([]host.Listener, len(ls))
	for i, l := range ls {
		res[i] = l.Listener
	}
	return res, nil
}

// pidScript prints the daemons' pids from their pid files, mosquitto then
// nginx, one a line (0 for a daemon whose file is absent or whose pid is
// not alive).
func (h *Host) pidScript() string {
	return fmt.Sprintf(`for f in %s %s; do p=$(cat "$f" 2>/dev/null || true); if [ -n "$p" ] && [ -e "/proc/$p" ]; then echo "$p"; else echo 0; fi; done`,
		Quote(h.paths.MosquittoPID), Quote(h.paths.NginxPID))
}

// parsePids reads pidScript's output.
func parsePids(out []byte) (map[host.Daemon]int, error) {
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return nil, fmt.Errorf("read pid files: got %q, want two pids", out)
	}
	m := map[host.Daemon]int{}
	for i, d := range []host.Daemon{host.Mosquitto, host.Nginx} {
		p, err := strconv.Atoi(f[i])
		if err != nil {
			return nil, fmt.Errorf("pid file of %s holds %q", d, f[i])
		}
		m[d] = p
	}
	return m, nil
}

// reloadMarkers are the log lines that prove a reload was acted on (the
// same as infra/local's): mosquitto logs before it re-reads, nginx's old
// workers when they stop accepting.
var reloadMarkers = map[host.Daemon]string{
	host.Mosquitto: "Reloading config.",
	host.Nginx:     "gracefully shutting down",
}

// Reload reloads d: `systemctl reload` where systemd runs, otherwise
// SIGHUP to the pid in d's pid file after checking /proc/<pid>/comm names
// d. It then waits (ReloadTimeout, ctx) until d's log shows the reload.
func (h *Host) Reload(ctx context.Context, d host.Daemon) error {
	var pidFile, logFile string
	switch d {
	case host.Mosquitto:
		pidFile, logFile = h.paths.MosquittoPID, h.paths.MosquittoLog
	case host.Nginx:
		pidFile, logFile = h.paths.NginxPID, h.paths.NginxErrorLog
	default:
		return fmt.Errorf("reload: unknown daemon %q: %w", d, host.ErrUnsupported)
	}
	marker := reloadMarkers[d]
	count := func() (int, error) {
		out, _, err := h.c.Run(ctx, fmt.Sprintf("grep -c -F -- %s %s || true", Quote(marker), Quote(logFile)), nil)
		if err != nil {
			return 0, fmt.Errorf("%s: read %s: %w", h.name, logFile, err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		return n, nil
	}
	before, err := count()
	if err != nil {
		return err
	}
	script := fmt.Sprintf(`set -e
if [ -d /run/systemd/system ]; then exec systemctl reload %[1]s; fi
p=$(cat %[2]s)
c=$(cat "/proc/$p/comm")
if [ "$c" != %[1]s ]; then echo "pid $p from %[2]s is $c, not %[1]s" >&2; exit 1; fi
kill -HUP "$p"`, Quote(string(d)), Quote(pidFile))
	if _, _, err := h.c.Run(ctx, script, nil); err != nil {
		return fmt.Errorf("%s: reload %s: %w", h.name, d, err)
	}
	timeout := h.ReloadTimeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		n, err := count()
		if err == nil && n > before {
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("%s: %s did not log %q in %s within %v after the reload", h.name, d, marker, logFile, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Costs reads each running daemon's CPU time and resident memory from
// /proc/<pid>/stat (utime + stime; rss pages times the page size): the
// process in its pid file plus its children (nginx's workers), summed. A
// daemon that is not running is left out.
func (h *Host) Costs(ctx context.Context) ([]host.Cost, error) {
	// one session and two forks: the pid files, the page size, and every
	// process's stat (CPU, parent, resident pages)
	out, _, err := h.c.Run(ctx, h.pidScript()+"; echo '--- pagesize'; getconf PAGESIZE; echo '--- stat'; cat /proc/[0-9]*/stat 2>/dev/null || true", nil)
	if err != nil {
		return nil, fmt.Errorf("%s: read /proc: %w", h.name, err)
	}
	cs, err := costsFrom(out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.name, err)
	}
	return cs, nil
}

// costsFrom computes Costs from the output of the Costs script.
func costsFrom(out []byte) ([]host.Cost, error) {
	head, rest, ok1 := bytes.Cut(out, []byte("--- pagesize\n"))
	page, stats, ok2 := bytes.Cut(rest, []byte("--- stat\n"))
	if !ok1 || !ok2 {
		return nil, errors.New("read /proc: output without its sections")
	}
	pids, err := parsePids(head)
	if err != nil {
		return nil, err
	}
	pageSize, err := strconv.ParseInt(strings.TrimSpace(string(page)), 10, 64)
	if err != nil || pageSize <= 0 {
		return nil, fmt.Errorf("getconf PAGESIZE: %q", page)
	}
	byPID := map[int]procfs.Stat{}
	for _, line := range bytes.Split(stats, []byte("\n")) {
		if s, err := procfs.ParseStat(line); err == nil {
			byPID[s.PID] = s
		}
	}
	var res []host.Cost
	for _, d := range []host.Daemon{host.Mosquitto, host.Nginx} {
		pid := pids[d]
		st, ok := byPID[pid]
		if pid == 0 || !ok {
			continue
		}
		c := host.Cost{Daemon: d, PID: pid, CPU: st.CPU, RSS: st.RSSPages * pageSize}
		for _, s := range byPID {
			if s.PPID == pid {
				c.CPU += s.CPU
				c.RSS += s.RSSPages * pageSize
			}
		}
		res = append(res, c)
	}
	return res, nil
}

// Close closes the SSH connection.
func (h *Host) Close() error { return h.c.Close() }

// Quote quotes s for a POSIX shell.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// ssListener is a listener with every process ss names as holding it.
type ssListener struct {
	host.Listener
	owners []ssOwner
}

type ssOwner struct {
	name string
	pid  int
}

var ssUser = regexp.MustCompile(`\("((?:[^"\\]|\\.)*)",pid=(\d+),fd=\d+\)`)

// parseSS parses `ss -Htlnp` output: State Recv-Q Send-Q Local Peer
// [users:(("name",pid=N,fd=M),…)]. Every line must be a LISTEN socket.
// Listener.PID and Process are the first process ss names. Sorted by
// address.
func parseSS(out []byte) ([]ssListener, error) {
	var res []ssListener
	for i, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 5 || f[0] != "LISTEN" {
			return nil, fmt.Errorf("ss line %d %q: want LISTEN RECV-Q SEND-Q LOCAL PEER [PROCESS]", i+1, line)
		}
		ap, err := parseSSAddr(f[3])
		if err != nil {
			return nil, fmt.Errorf("ss line %d: %w", i+1, err)
		}
		l := ssListener{Listener: host.Listener{Addr: ap}}
		for _, m := range ssUser.FindAllStringSubmatch(strings.Join(f[5:], " "), -1) {
			pid, _ := strconv.Atoi(m[2])
			l.owners = append(l.owners, ssOwner{name: m[1], pid: pid})
		}
		if len(l.owners) > 0 {
			l.PID, l.Process = l.owners[0].pid, l.owners[0].name
		}
		res = append(res, l)
	}
	sort.SliceStable(res, func(i, j int) bool { return res[i].Addr.Compare(res[j].Addr) < 0 })
	return res, nil
}

// parseSSAddr parses ss's local address: 0.0.0.0:80, *:80, [::]:80,
// [::ffff:127.0.0.1]:80, 127.0.0.53%lo:53, [fe80::1]%eth0:22.
func parseSSAddr(s string) (netip.AddrPort, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("address %q has no port", s)
	}
	hostPart, portPart := s[:i], s[i+1:]
	port, err := strconv.ParseUint(portPart, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: port: %w", s, err)
	}
	if strings.HasPrefix(hostPart, "[") {
		if k := strings.IndexByte(hostPart, ']'); k > 0 {
			hostPart = hostPart[1:k] // drops a scope after the bracket: [fe80::1]%eth0
		}
	}
	if k := strings.IndexByte(hostPart, '%'); k >= 0 {
		hostPart = hostPart[:k] // 127.0.0.53%lo, fe80::1%eth0
	}
	if hostPart == "*" {
		return netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(port)), nil
	}
	a, err := netip.ParseAddr(hostPart)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: %w", s, err)
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}
