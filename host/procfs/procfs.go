// Package procfs parses the few Linux /proc files mqttstack reads: a
// process's stat and status (CPU time, parent, resident and peak memory)
// and the kernel's TCP socket tables (listening sockets by inode). It is
// the one parser of each of these formats: it parses bytes only, so the
// local stack and the load tester (its own cost) read the files with
// os.ReadFile and package host/sshhost reads the same files with cat over
// SSH.
package procfs

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ClockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ). The
// kernel reports them in USER_HZ, which is 100 on every Linux architecture
// we run on, whatever the kernel's internal HZ.
const ClockTick = 10 * time.Millisecond

// Stat is what mqttstack uses of /proc/<pid>/stat.
type Stat struct {
	PID   int
	Comm  string // command name (without the parentheses)
	State byte   // R, S, D, Z, X, …
	PPID  int
	// User and System are the CPU time spent in user mode (utime, field
	// 14) and in the kernel (stime, field 15); CPU is their sum.
	User, System time.Duration
	CPU          time.Duration
	// RSSPages is the resident set in pages (field 24; the same counters
	// as status's VmRSS, in pages of the machine's page size).
	RSSPages int64
}

// ParseStat parses one /proc/<pid>/stat. The command name may contain
// spaces and parentheses, so fields are counted from the last ')'.
func ParseStat(b []byte) (Stat, error) {
	s := strings.TrimSpace(string(b))
	open := strings.IndexByte(s, '(')
	closing := strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return Stat{}, fmt.Errorf("proc stat %.40q: no (comm)", s)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return Stat{}, fmt.Errorf("proc stat %.40q: pid: %w", s, err)
	}
	rest := strings.Fields(s[closing+1:])
	// rest[0] is field 3 (state); utime and stime are fields 14 and 15,
	// rss field 24
	if len(rest) < 22 || len(rest[0]) != 1 {
		return Stat{}, fmt.Errorf("proc stat of pid %d: %d fields after the command name, want at least 22", pid, len(rest))
	}
	ppid, err := strconv.Atoi(rest[1])
	if err != nil {
		return Stat{}, fmt.Errorf("proc stat of pid %d: ppid: %w", pid, err)
	}
	utime, err1 := strconv.ParseInt(rest[11], 10, 64)
	stime, err2 := strconv.ParseInt(rest[12], 10, 64)
	if err1 != nil || err2 != nil {
		return Stat{}, fmt.Errorf("proc stat of pid %d: utime %q stime %q are not numbers", pid, rest[11], rest[12])
	}
	rss, err := strconv.ParseInt(rest[21], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("proc stat of pid %d: rss %q is not a number", pid, rest[21])
	}
	user, system := time.Duration(utime)*ClockTick, time.Duration(stime)*ClockTick
	return Stat{PID: pid, Comm: s[open+1 : closing], State: rest[0][0], PPID: ppid,
		User: user, System: system, CPU: user + system, RSSPages: rss}, nil
}

// Status is what mqttstack uses of /proc/<pid>/status.
type Status struct {
	// RSS is the resident set now (VmRSS) and HWM its peak over the
	// process's life (VmHWM), both in bytes. A line the file lacks reads
	// 0: a kernel thread or a zombie has neither.
	RSS, HWM int64
}

// ParseStatus parses the memory lines of one /proc/<pid>/status (VmRSS,
// VmHWM, each "<n> kB"); other lines are ignored.
func ParseStatus(b []byte) (Status, error) {
	var st Status
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		var dst *int64
		switch {
		case !ok:
			continue
		case k == "VmRSS":
			dst = &st.RSS
		case k == "VmHWM":
			dst = &st.HWM
		default:
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return Status{}, fmt.Errorf("proc status: %s %q: want \"<n> kB\"", k, strings.TrimSpace(v))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return Status{}, fmt.Errorf("proc status: %s %q: want a count of kB", k, f[0])
		}
		*dst = n * 1024
	}
	if err := sc.Err(); err != nil {
		return Status{}, fmt.Errorf("proc status: %w", err)
	}
	return st, nil
}

// Socket is one listening TCP socket from /proc/net/tcp or tcp6.
type Socket struct {
	Addr  netip.AddrPort
	Inode string // the number in the "socket:[N]" link of the owner's fd
}

// ParseListening returns the sockets in state LISTEN (0A) of one
// /proc/<pid>/net/tcp or tcp6 table. Addresses are hex of 32-bit words in
// host byte order (little-endian on the machines we run on); an IPv4-mapped
// IPv6 address is reported as IPv4.
func ParseListening(table []byte) ([]Socket, error) {
	var out []Socket
	sc := bufio.NewScanner(bytes.NewReader(table))
	first := true
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if first {
			first = false
			if len(f) > 0 && f[0] == "sl" {
				continue // header
			}
		}
		if len(f) < 10 {
			continue
		}
		if f[3] != "0A" {
			continue
		}
		a, p, ok := strings.Cut(f[1], ":")
		if !ok {
			return nil, fmt.Errorf("proc net tcp: local address %q: want ADDR:PORT", f[1])
		}
		ip, err := procAddr(a)
		if err != nil {
			return nil, fmt.Errorf("proc net tcp: local address %q: %w", f[1], err)
		}
		port, err := strconv.ParseUint(p, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("proc net tcp: port %q: %w", p, err)
		}
		out = append(out, Socket{Addr: netip.AddrPortFrom(ip.Unmap(), uint16(port)), Inode: f[9]})
	}
	return out, sc.Err()
}

// procAddr decodes /proc/net/tcp{,6} addresses: 4 or 16 bytes, written as
// little-endian 32-bit words.
func procAddr(h string) (netip.Addr, error) {
	b, err := hex.DecodeString(h)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(b) != 4 && len(b) != 16 {
		return netip.Addr{}, fmt.Errorf("%d bytes, want 4 or 16", len(b))
	}
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	ip, _ := netip.AddrFromSlice(b)
	return ip, nil
}

// SocketInode returns N of a "socket:[N]" fd link, ok false for any other
// link (files, pipes, anon inodes).
func SocketInode(link string) (string, bool) {
	if !strings.HasPrefix(link, "socket:[") || !strings.HasSuffix(link, "]") {
		return "", false
	}
	return link[len("socket:[") : len(link)-1], true
}
