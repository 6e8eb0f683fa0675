package sshconn_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/internal/freeport"
	"github.com/mqttstack/mqttstack/internal/sshconn"
	"github.com/mqttstack/mqttstack/internal/sshconn/sshdtest"
)

func TestDialRealSSHD(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("pinned key runs a command", func(t *testing.T) {
		c, err := sshconn.Dial(ctx, srv.Config())
		if err != nil {
			t.Fatalf("dial: %v\n%s", err, srv.Log())
		}
		defer c.Close()
		out, _, err := c.Run(ctx, "cat; echo -n second", strings.NewReader("first "))
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != "first second" {
			t.Fatalf("stdout %q, want %q", out, "first second")
		}
		if c.HostKey() != srv.HostKey {
			t.Fatalf("HostKey %q, want %q", c.HostKey(), srv.HostKey)
		}
		if want := sshconn.Fingerprint(srv.HostKey); c.Fingerprint() != want || !strings.HasPrefix(want, "SHA256:") {
			t.Fatalf("Fingerprint %q, want %q", c.Fingerprint(), want)
		}
		_, _, err = c.Run(ctx, "echo oops >&2; exit 3", nil)
		var ee *sshconn.ExitError
		if !errors.As(err, &ee) || ee.Status != 3 || ee.Stderr != "oops" {
			t.Fatalf("want ExitError status 3 stderr oops, got %#v (%v)", ee, err)
		}
	})

	t.Run("the other host key type pinned also works", func(t *testing.T) {
		cfg := srv.Config()
		cfg.HostKey = srv.OtherKey
		c, err := sshconn.Dial(ctx, cfg)
		if err != nil {
			t.Fatalf("dial with the ECDSA key pinned: %v", err)
		}
		defer c.Close()
		if c.HostKey() != srv.OtherKey {
			t.Fatalf("presented %q, want the pinned ECDSA key", c.HostKey())
		}
	})

	t.Run("wrong pinned key refused before auth", func(t *testing.T) {
		cfg := srv.Config()
		cfg.HostKey = sshdtest.NewKeyLine(t)
		cfg.Budget = 5 * time.Second // a mismatch must not be retried
		accepted := strings.Count(srv.Log(), "Accepted publickey")
		start := time.Now()
		_, err := sshconn.Dial(ctx, cfg)
		var mm *sshconn.HostKeyMismatchError
		if !errors.As(err, &mm) {
			t.Fatalf("want HostKeyMismatchError, got %v", err)
		}
		msg := err.Error()
		for _, want := range []string{sshconn.Fingerprint(cfg.HostKey), sshconn.Fingerprint(srv.HostKey), "update the pinned host key"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not name %q", msg, want)
			}
		}
		if mm.GotKey != srv.HostKey {
			t.Errorf("GotKey %q, want %q", mm.GotKey, srv.HostKey)
		}
		if time.Since(start) > 4*time.Second {
			t.Errorf("a key mismatch was retried (took %s)", time.Since(start))
		}
		// sshd saw no authentication attempt from this connection: the
		// client stopped at the key exchange.
		time.Sleep(200 * time.Millisecond)
		if n := strings.Count(srv.Log(), "Accepted publickey"); n != accepted {
			t.Errorf("sshd accepted a key after a mismatch:\n%s", srv.Log())
		}
	})

	t.Run("trust on first use returns the key", func(t *testing.T) {
		cfg := srv.Config()
		cfg.HostKey = ""
		c, err := sshconn.Dial(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got := c.HostKey()
		if got != srv.HostKey && got != srv.OtherKey {
			t.Fatalf("recorded %q, not one of the server's keys", got)
		}
		// The recorded key pins the next dial.
		cfg.HostKey = got
		c2, err := sshconn.Dial(ctx, cfg)
		if err != nil {
			t.Fatalf("dial with the recorded key: %v", err)
		}
		c2.Close()
	})

	t.Run("unknown client key is an auth failure, not retried", func(t *testing.T) {
		cfg := srv.Config()
		cfg.PrivateKey = sshdtest.NewClientKey(t)
		cfg.Budget = 5 * time.Second
		start := time.Now()
		_, err := sshconn.Dial(ctx, cfg)
		if !errors.Is(err, sshconn.ErrAuth) {
			t.Fatalf("want ErrAuth, got %v", err)
		}
		if time.Since(start) > 4*time.Second {
			t.Errorf("an auth failure was retried (took %s)", time.Since(start))
		}
	})

	t.Run("cancelled context stops a command", func(t *testing.T) {
		c, err := sshconn.Dial(ctx, srv.Config())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer rcancel()
		_, _, err = c.Run(rctx, "sleep 30", nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want deadline exceeded, got %v", err)
		}
	})
}

func TestDialUnreachableWithinBudget(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{}) // for a valid key pair only
	cfg := srv.Config()
	cfg.Port = freeport.One(t) // nobody listens: connection refused
	cfg.Budget = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := sshconn.Dial(ctx, cfg)
	took := time.Since(start)
	if err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	if !strings.Contains(err.Error(), "retry budget") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("error does not say refused within the budget: %v", err)
	}
	// Generous bound: the budget plus one backoff step and a loaded machine.
	if took < cfg.Budget || took > cfg.Budget+20*time.Second {
		t.Fatalf("took %s for a budget of %s", took, cfg.Budget)
	}
}

func TestConfigValidateCollectsAll(t *testing.T) {
	err := sshconn.Config{Host: "", Port: 70000, User: "", PrivateKey: []byte("nope"), HostKey: "garbage", Budget: -1}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"host:", "port:", "user:", "privateKey:", "hostKey:", "budget:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

// A server that accepts TCP but never speaks SSH (a host still booting, a
// wrong service): each attempt times out, and the dial gives up within the
// budget with a clear error.
func TestDialSilentServerWithinBudget(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	cfg := sshconn.Config{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, User: "root", PrivateKey: sshdtest.NewClientKey(t), Budget: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err = sshconn.Dial(ctx, cfg)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "retry budget") {
		t.Fatalf("want a budget error, got %v", err)
	}
	// one attempt takes at least 5 s (so a slow host gets a real chance),
	// the budget stops retries after it
	if took > 30*time.Second {
		t.Fatalf("took %s for a budget of %s", took, cfg.Budget)
	}
	t.Logf("%s: %v", took.Round(time.Millisecond), err)
}
