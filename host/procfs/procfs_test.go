package procfs

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Stat
		wantErr string
	}{
		{name: "cat", in: "26154 (cat) R 26152 26152 14332 0 -1 4194304 99 0 0 0 7 3 0 0 20 0 1 0 38913 3133440 393 18446744073709551615\n",
			want: Stat{PID: 26154, Comm: "cat", State: 'R', PPID: 26152,
				User: 70 * time.Millisecond, System: 30 * time.Millisecond, CPU: 100 * time.Millisecond, RSSPages: 393}},
		{name: "nginx master with spaces and parens in comm", in: "42 (nginx: (x) y) S 1 42 42 0 -1 0 0 0 0 0 150 50 0 0 20 0 1 0 1 1 7",
			want: Stat{PID: 42, Comm: "nginx: (x) y", State: 'S', PPID: 1,
				User: 1500 * time.Millisecond, System: 500 * time.Millisecond, CPU: 2 * time.Second, RSSPages: 7}},
		// A process may name itself anything (prctl PR_SET_NAME): this
		// one's name holds ") " and a fake field list whose utime/stime
		// (99 99) must not be read.
		{name: "comm with spaces and ) imitating fields", in: "77 (a) S 9 9 9 0 -1 0 0 0 0 0 99 99 x) R 5 77 77 0 -1 4194304 0 0 0 0 12 34 0 0 20 0 1 0 100 1000 55\n",
			want: Stat{PID: 77, Comm: "a) S 9 9 9 0 -1 0 0 0 0 0 99 99 x", State: 'R', PPID: 5,
				User: 120 * time.Millisecond, System: 340 * time.Millisecond, CPU: 460 * time.Millisecond, RSSPages: 55}},
		{name: "kernel thread: system time only, no resident pages", in: "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 5 0 0 20 0 1 0 10 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
			want: Stat{PID: 2, Comm: "kthreadd", State: 'S', PPID: 0,
				User: 0, System: 50 * time.Millisecond, CPU: 50 * time.Millisecond, RSSPages: 0}},
		{name: "truncated", in: "1 (init) S 0 1", wantErr: "at least 22"},
		{name: "no comm", in: "1 init S", wantErr: "no (comm)"},
		{name: "utime not a number", in: "1 (a) S 0 0 0 0 0 0 0 0 0 0 x 1 0 0 0 0 0 0 0 0 0", wantErr: "not numbers"},
		{name: "stime not a number", in: "1 (a) S 0 0 0 0 0 0 0 0 0 0 1 x 0 0 0 0 0 0 0 0 0", wantErr: "not numbers"},
		{name: "rss not a number", in: "1 (a) S 0 0 0 0 0 0 0 0 0 0 1 1 0 0 0 0 0 0 0 0 x", wantErr: "rss"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseStat: %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseStat = %+v, %v; want %+v", got, err, tt.want)
			}
			if got.CPU != got.User+got.System {
				t.Fatalf("CPU %v != User %v + System %v", got.CPU, got.User, got.System)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name, in string
		want     Status
		wantErr  string
	}{
		{name: "resident and peak", in: "Name:\tcat\nVmPeak:\t 3060 kB\nVmHWM:\t    4096 kB\nVmRSS:\t    2020 kB\nThreads:\t1\n",
			want: Status{RSS: 2020 * 1024, HWM: 4096 * 1024}},
		{name: "name with spaces and colons", in: "Name:\tnginx: worker (x)\nUmask:\t0022\nVmHWM:\t 10 kB\nVmRSS:\t 8 kB\n",
			want: Status{RSS: 8 * 1024, HWM: 10 * 1024}},
		{name: "no VmHWM line", in: "Name:\tcat\nVmRSS:\t2020 kB\n", want: Status{RSS: 2020 * 1024}},
		{name: "kernel thread: no Vm lines", in: "Name:\tkthreadd\nUmask:\t0000\nState:\tS (sleeping)\nThreads:\t1\n", want: Status{}},
		{name: "empty", in: "", want: Status{}},
		{name: "bad unit", in: "VmRSS:\t2020 MB\n", wantErr: "VmRSS"},
		{name: "HWM not a number", in: "VmRSS:\t1 kB\nVmHWM:\tlots kB\n", wantErr: "VmHWM"},
		{name: "negative", in: "VmRSS:\t-1 kB\n", wantErr: "VmRSS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatus([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseStatus: %+v, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseStatus = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseListening(t *testing.T) {
	const v4 = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 289 1 00000000b624dcea 100 0 0 10 0
   1: 020200C0:D5E6 507100CB:01BB 06 00000000:00000000 03:00000F17 00000000     0        0 0 3 00000000fcc50da5
   2: 0100007F:22B3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5150 1 0000000000000000 100 0 0 10 0
`
	const v6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 78 1 0000000000000000 100 0 0 10 0
`
	tests := []struct {
		name, in string
		want     []Socket
	}{
		{"ipv4, established skipped", v4, []Socket{
			{netip.MustParseAddrPort("0.0.0.0:2024"), "289"},
			{netip.MustParseAddrPort("127.0.0.1:8883"), "5150"},
		}},
		{"ipv6, mapped unmapped", v6, []Socket{
			{netip.MustParseAddrPort("[::1]:80"), "77"},
			{netip.MustParseAddrPort("127.0.0.1:8080"), "78"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseListening([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("[%d] = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestOwnProcess reads this test process's own /proc files: a listener it
// opens shows up with the inode of one of its fds, and its stat parses.
func TestOwnProcess(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	table, err := os.ReadFile("/proc/self/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	socks, err := ParseListening(table)
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		link, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if ino, ok := SocketInode(link); ok {
			inodes[ino] = true
		}
	}
	found := false
	for _, s := range socks {
		if s.Addr.Port() == uint16(port) && inodes[s.Inode] {
			found = true
		}
	}
	if !found {
		t.Fatalf("listener on port %d not among this process's listening sockets %v", port, socks)
	}
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStat(b)
	if err != nil || st.PID != os.Getpid() {
		t.Fatalf("ParseStat(self) = %+v, %v; want pid %d", st, err, os.Getpid())
	}
	if st.CPU != st.User+st.System {
		t.Fatalf("ParseStat(self): CPU %v != User %v + System %v", st.CPU, st.User, st.System)
	}
	b, err = os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	if mem, err := ParseStatus(b); err != nil || mem.RSS <= 0 || mem.HWM < mem.RSS {
		t.Fatalf("ParseStatus(self) = %+v, %v; want RSS > 0 and HWM >= RSS", mem, err)
	}
	if st.RSSPages <= 0 {
		t.Fatalf("stat rss of self = %d pages", st.RSSPages)
	}
	if _, ok := SocketInode("pipe:[12]"); ok {
		t.Fatal("a pipe is not a socket")
	}
}
