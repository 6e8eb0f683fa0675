package fleet

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/internal/mqttwire"
)

// TestSession3RequestsReuseWaiters: requests on one session reuse the
// waiter channel and timer of the last matched one, and an acknowledgement
// that comes after its request gave up reaches no later request (its
// channel is never reused). The broker is the other end of a pipe and
// answers by hand.
func TestSession3RequestsReuseWaiters(t *testing.T) {
	client, broker := net.Pipe()
	defer client.Close()
	defer broker.Close()
	s := &session3{conn: client, br: bufio.NewReaderSize(client, 128), writeTimeout: 5 * time.Second, waiting: map[uint16]waiter{}, done: make(chan struct{})}
	go s.readLoop(nil) // ends when the pipe closes
	ctx := context.Background()
	pkt := func(id uint16) []byte {
		return mqttwire.Publish{Topic: "devices/d/telemetry", QoS: 1, PacketID: id, Payload: []byte("x")}.Encode()
	}
	// next reads one packet at the broker and returns its packet id.
	next := func() uint16 {
		broker.SetReadDeadline(time.Now().Add(5 * time.Second))
		p, err := mqttwire.ReadPacket(broker, 1<<10)
		if err != nil {
			t.Fatalf("broker read: %v", err)
		}
		return binary.BigEndian.Uint16(p.Body[2+len("devices/d/telemetry"):])
	}
	suback := func(id uint16, rc byte) {
		broker.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := broker.Write([]byte{mqttwire.TypeSuback, 3, byte(id >> 8), byte(id), rc}); err != nil {
			t.Fatalf("broker write: %v", err)
		}
	}

	// A request the broker never answers gives up after its timeout.
	late := make(chan uint16, 1)
	go func() { late <- next() }()
	if _, err := s.requestWithin(ctx, 50*time.Millisecond, pkt); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered request: %v, want deadline exceeded", err)
	}
	lateID := <-late
	if s.spareCh != nil {
		t.Fatal("a forgotten request's channel was kept for reuse")
	}

	for i, rc := range []byte{1, 2, 0x80} {
		done := make(chan error, 1)
		go func() {
			id := next()
			if i == 0 {
				suback(lateID, 0x7f) // the late answer to the request that gave up
			}
			suback(id, rc)
			done <- nil
		}()
		got, err := s.requestWithin(ctx, 5*time.Second, pkt)
		<-done
		if err != nil || got != rc {
			t.Fatalf("request %d: code %#x, %v; want %#x", i, got, err, rc)
		}
		if s.spareCh == nil || s.spareTimer == nil {
			t.Fatalf("request %d: channel and timer not kept for the next request", i)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiting) != 0 {
		t.Fatalf("%d waiters left", len(s.waiting))
	}
}
