package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/mqttstack/mqttstack/host"
	"github.com/mqttstack/mqttstack/host/procfs"
)

// Host is the local stack in one state directory seen as a host.Host: files
// are read from this machine, listeners and costs come from /proc of the
// daemons infra/local started (pids verified through /proc/<pid>/cmdline,
// never found by name), and Reload is SIGHUP followed by the daemon's log
// line that proves it acted. Pids are read anew on every call, so a daemon
// restarted by Start (crash tests) is followed.
type Host struct {
	stateDir string
	conf     map[Daemon]string
}

var _ host.Host = (*Host)(nil)

// OpenHost returns the Host of the local stack in stateDir (its target file
// must exist: `mqttstack local up`).
func OpenHost(stateDir string) (*Host, error) {
	t, err := loadTarget(stateDir)
	if err != nil {
		return nil, err
	}
	return &Host{
		stateDir: t.Local.StateDir,
		conf:     map[Daemon]string{Mosquitto: t.Local.MosquittoConf, Nginx: t.Local.NginxConf},
	}, nil
}

// RefreshPasswords rewrites the broker's password files from the PKI and
// makes mosquitto reload them (RefreshPasswords of the state directory):
// identities issued since `up` gain their line, revoked ones lose it. The
// security suite calls it through an interface check, as only the local
// stack renders its password files on this machine.
func (h *Host) RefreshPasswords(ctx context.Context) error {
	return RefreshPasswords(ctx, h.stateDir)
}

// Name is "local".
func (h *Host) Name() string { return "local" }

// ConfigPath is the rendered main config of d in the state directory.
func (h *Host) ConfigPath(d Daemon) string { return h.conf[d] }

// ReadFile reads path on this machine.
func (h *Host) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// ReadDir lists the names of the files in dir (hostconfig.DirSource, for
// include_dir).
func (h *Host) ReadDir(ctx context.Context, dir string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Listeners lists the listening TCP sockets held by the running daemons of
// the stack (a daemon that is not running has none), sorted by daemon and
// address. A socket is matched to its owner by the inode of one of the
// owner's file descriptors, in the owner's own network namespace.
func (h *Host) Listeners(ctx context.Context) ([]host.Listener, error) {
	var out []host.Listener
	err := h.eachRunning(ctx, func(d Daemon, pid int) error {
		socks, err := processListeners(pid)
		if err != nil {
			return err
		}
		for _, s := range socks {
			out = append(out, host.Listener{Daemon: d, Addr: s.Addr, PID: pid, Process: string(d)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachRunning calls fn with the pid of each running daemon of the stack,
// mosquitto first; a daemon that is not running is passed over. It stops
// at the end of ctx or at the first error, which names the daemon and pid.
func (h *Host) eachRunning(ctx context.Context, fn func(d Daemon, pid int) error) error {
	for _, d := range []Daemon{Mosquitto, Nginx} {
		if err := ctx.Err(); err != nil {
			return err
		}
		pid, err := h.pid(d)
		if err != nil {
			return err
		}
		if pid == 0 {
			continue
		}
		if err := fn(d, pid); err != nil {
			return fmt.Errorf("%s (pid %d): %w", d, pid, err)
		}
	}
	return nil
}

// processListeners returns the listening sockets whose inode is one of
// pid's file descriptors.
func processListeners(pid int) ([]procfs.Socket, error) {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, e := range ents {
		if link, err := os.Readlink(filepath.Join(fdDir, e.Name())); err == nil {
			if ino, ok := procfs.SocketInode(link); ok {
				inodes[ino] = true
			}
		}
	}
	var out []procfs.Socket
	for _, tbl := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, tbl))
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6 in this kernel
		}
		if err != nil {
			return nil, err
		}
		socks, err := procfs.ParseListening(b)
		if err != nil {
			return nil, err
		}
		for _, s := range socks {
			if inodes[s.Inode] {
				out = append(out, s)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Compare(out[j].Addr) < 0 })
	return out, nil
}

// Reload sends SIGHUP to d and waits until its log shows the reload (see
// package-level Reload).
func (h *Host) Reload(ctx context.Context, d Daemon) error {
	return Reload(ctx, h.stateDir, d)
}

// Costs reads each running daemon's CPU time and resident memory: the
// process infra/local started plus its children (nginx's workers do
// nginx's work), summed, with PID the started process.
func (h *Host) Costs(ctx context.Context) ([]host.Cost, error) {
	var out []host.Cost
	err := h.eachRunning(ctx, func(d Daemon, pid int) error {
		c, err := processCost(pid)
		if err != nil {
			return err
		}
		c.Daemon = d
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// processCost sums /proc stat and status of pid and of its children.
func processCost(pid int) (host.Cost, error) {
	c := host.Cost{PID: pid}
	pids := append([]int{pid}, children(pid)...)
	for i, p := range pids {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			if i > 0 {
				continue // a worker that just exited
			}
			return c, err
		}
		s, err := procfs.ParseStat(st)
		if err != nil {
			return c, err
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil && i > 0 {
			continue
		}
		if err != nil {
			return c, err
		}
		mem, err := procfs.ParseStatus(status)
		if err != nil {
			return c, err
		}
		c.CPU += s.CPU
		c.RSS += mem.RSS
	}
	return c, nil
}

// children lists the pids whose parent is pid. The kernel lists each
// thread's children in /proc/<pid>/task/<tid>/children: a few small reads,
// where a pass over /proc reads every process's stat (this runs once a
// second during a load run, and the pass was most of the tool's CPU while
// it waited). Without those files (a kernel built without
// CONFIG_PROC_CHILDREN) it falls back to the pass.
func children(pid int) []int {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err == nil && len(tasks) > 0 {
		var out []int
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue // a thread that just exited
			}
			for _, f := range strings.Fields(string(b)) {
				if p, err := strconv.Atoi(f); err == nil {
					out = append(out, p)
				}
			}
		}
		return out
	}
	return scanChildren(pid)
}

// scanChildren is children by one pass over /proc.
func scanChildren(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		var p int
		if _, err := fmt.Sscanf(e.Name(), "%d", &p); err != nil || p == pid {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if s, err := procfs.ParseStat(b); err == nil && s.PPID == pid {
			out = append(out, p)
		}
	}
	return out
}

// Close does nothing: the local host holds no connection.
func (h *Host) Close() error { return nil }

// pid is d's pid, 0 when it is not running.
func (h *Host) pid(d Daemon) (int, error) {
	pid, ok, err := readPID(h.stateDir, d, h.conf[d])
	if err != nil || !ok {
		return 0, err
	}
	return pid, nil
}
