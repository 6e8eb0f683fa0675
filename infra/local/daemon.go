package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mqttstack/mqttstack/host"
	"github.com/mqttstack/mqttstack/host/procfs"
	"github.com/mqttstack/mqttstack/internal/atomicfile"
)

// Daemon names one of the two processes of the local stack (host.Daemon,
// so a local.Daemon is what a host.Host takes).
type Daemon = host.Daemon

// The daemons, by the name of their binary.
const (
	Mosquitto = host.Mosquitto
	Nginx     = host.Nginx
)

// Default binaries: Debian's packages.
const (
	MosquittoBin = "/usr/sbin/mosquitto"
	NginxBin     = "/usr/sbin/nginx"
)

// pidPath is the pid file infra/local writes for d right after starting it
// (the daemons write the same pid to the paths in their own configs too,
// but only once they are up; this one exists from the first instant).
func pidPath(stateDir string, d Daemon) string {
	return filepath.Join(stateDir, string(d)+".pid")
}

func outPath(stateDir string, d Daemon) string {
	return filepath.Join(stateDir, string(d), "stderr.log")
}

// readPID returns the pid in d's pid file and whether that process is alive
// and is d running our config (checked through /proc/<pid>/cmdline, so a
// recycled pid never counts). A stale file (dead or foreign pid) is removed.
func readPID(stateDir string, d Daemon, conf string) (pid int, alive bool, err error) {
	b, err := os.ReadFile(pidPath(stateDir, d))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		os.Remove(pidPath(stateDir, d))
		return 0, false, nil
	}
	if ours(pid, d, conf) {
		return pid, true, nil
	}
	os.Remove(pidPath(stateDir, d))
	return pid, false, nil
}

// ours reports whether pid is alive (not a zombie) and runs d with conf.
func ours(pid int, d Daemon, conf string) bool {
	if !alive(pid) {
		return false
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	// nginx rewrites its argv to one string, "nginx: master process
	// /usr/sbin/nginx -c …", so compare words rather than argv[0].
	words := strings.Fields(strings.ReplaceAll(string(cmd), "\x00", " "))
	if len(words) == 0 {
		return false
	}
	first := strings.TrimSuffix(filepath.Base(words[0]), ":")
	if first != string(d) {
		return false
	}
	for _, w := range words {
		if w == conf {
			return true
		}
	}
	return false
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s, err := procfs.ParseStat(b)
	return err == nil && s.State != 'Z' && s.State != 'X'
}

// raiseNoFile lifts this process's RLIMIT_NOFILE soft limit to the hard
// limit, so the children inherit it: the broker must hold ~19,000
// connections. Calling Setrlimit also stops Go from restoring the original
// soft limit in children it starts.
func raiseNoFile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	return rl.Max, nil
}

// startDaemon starts d detached (own session, so a terminal's Ctrl-C or the
// end of `mqttstack local up` does not reach it) with stdout/stderr in the
// state dir, writes its pid file and reaps it in the background when it
// exits while this process lives (no zombies in long test binaries). exited
// is closed when the process ends.
//
// tied sets the parent-death signal. Linux sends it when the thread that
// started the child exits; Go threads only exit when a goroutine locked to
// one ends, which nothing here does, so in practice it means "when this
// process dies".
func startDaemon(stateDir string, d Daemon, bin string, args []string, tied bool) (pid int, exited <-chan struct{}, err error) {
	if _, err := raiseNoFile(); err != nil {
		return 0, nil, fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(outPath(stateDir, d)), 0o755); err != nil {
		return 0, nil, err
	}
	out, err := os.OpenFile(outPath(stateDir, d), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, nil, err
	}
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Dir = stateDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if tied {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	}
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("start %s: %w", bin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	pid = cmd.Process.Pid
	if err := atomicfile.Write(pidPath(stateDir, d), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		syscall.Kill(-pid, syscall.SIGKILL)
		return 0, nil, err
	}
	return pid, done, nil
}

// stopPID sends SIGTERM to pid, waits up to grace for it to go, then kills
// its whole process group (nginx's workers share the master's group, and a
// SIGKILLed master would otherwise leave them holding the ports).
func stopPID(ctx context.Context, pid int, grace time.Duration) error {
	if !alive(pid) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("SIGTERM %d: %w", pid, err)
	}
	if waitGone(ctx, pid, grace) {
		// a TERMed nginx master takes its workers with it; make sure
		syscall.Kill(-pid, syscall.SIGKILL)
		return nil
	}
	syscall.Kill(-pid, syscall.SIGKILL)
	syscall.Kill(pid, syscall.SIGKILL)
	if !waitGone(context.Background(), pid, 5*time.Second) {
		return fmt.Errorf("pid %d survived SIGKILL", pid)
	}
	return nil
}

// waitGone polls until pid is gone or the bound passes. Polling (10 ms) is
// the only portable way to wait for a process that is not our child.
func waitGone(ctx context.Context, pid int, bound time.Duration) bool {
	deadline := time.Now().Add(bound)
	for {
		if !alive(pid) {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tail returns the last n lines of the file at path, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// EnsureDaemons checks that mosquitto and nginx are installed. When they
// are not and we are root, it installs them from Debian's packages
// (apt-get update first if the plain install fails); otherwise it returns an
// error with the exact command to run.
func EnsureDaemons(ctx context.Context, log io.Writer) error {
	var missing []string
	for pkg, bin := range map[string]string{"mosquitto": MosquittoBin, "nginx": NginxBin} {
		if _, err := os.Stat(bin); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if len(missing) == 2 {
		missing = []string{"mosquitto", "nginx"}
	}
	install := "apt-get install -y " + strings.Join(missing, " ")
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s not installed: run `sudo apt-get update && sudo %s`", strings.Join(missing, " and "), install)
	}
	fmt.Fprintf(log, "installing %s from Debian's packages\n", strings.Join(missing, ", "))
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = log, log
		return cmd.Run()
	}
	args := append([]string{"apt-get", "install", "-y"}, missing...)
	if err := run(args...); err != nil {
		if err := run("apt-get", "update"); err != nil {
			return fmt.Errorf("apt-get update: %w (run `apt-get update && %s` by hand)", err, install)
		}
		if err := run(args...); err != nil {
			return fmt.Errorf("%s: %w", install, err)
		}
	}
	// Debian starts the packaged services on install; the local stack
	// runs its own instances, so stop them to free 1883/80.
	for _, svc := range missing {
		exec.CommandContext(ctx, "systemctl", "stop", svc).Run()
	}
	return nil
}
