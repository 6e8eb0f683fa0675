package loadtest

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// procCost is the CPU and memory of one process, read from /proc.
type procCost struct {
	User, System time.Duration
	RSS, HWM     int64 // bytes: resident now, peak resident
}

// clockTick is USER_HZ, the unit of utime/stime in /proc/<pid>/stat: 100 on
// every Linux architecture Go supports.
const clockTick = 100

// readProcCost reads /proc/<pid>/stat (utime, stime) and /proc/<pid>/status
// (VmRSS, VmHWM); pid 0 means this process.
func readProcCost(pid int) (procCost, error) {
	dir := "/proc/self"
	if pid > 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	var c procCost
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return c, err
	}
	// The command name (field 2) may hold spaces: fields count from the
	// last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return c, fmt.Errorf("%s/stat: unexpected format", dir)
	}
	f := strings.Fields(string(stat[i+1:]))
	// After ')': state is field 3, utime field 14, stime field 15.
	if len(f) < 13 {
		return c, fmt.Errorf("%s/stat: %d fields", dir, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return c, fmt.Errorf("%s/stat: utime/stime not numbers", dir)
	}
	c.User = time.Duration(ut) * time.Second / clockTick
	c.System = time.Duration(st) * time.Second / clockTick
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return c, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		if k == "VmRSS" {
			c.RSS = kb << 10
		} else {
			c.HWM = kb << 10
		}
	}
	return c, nil
}
