package fleet

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/internal/mqttwire"
)

// TestBurst3: a burst driven by the session's reader publishes one message
// at a time, each after the previous one's PUBACK, and counts each as
// Publish does: a PUBACK that does not come within the publish timeout
// fails that publish and the burst goes on (its late PUBACK is ignored), a
// lost connection ends the burst with one failure, and the end of the run
// ends it with none. The broker is the other end of a pipe and answers by
// hand.
func TestBurst3(t *testing.T) {
	const n = 6
	lostCause := Classify(StagePublish, errSessionGone)
	timeoutCause := Classify(StagePublish, context.DeadlineExceeded)
	tests := []struct {
		name string
		// answer is the broker's reply to the i-th publish (0-based):
		// "ack", "hold" (acknowledged late, after the next publish
		// arrived), "close" (the connection ends) or "cancel" (the run
		// ends while it waits).
		answer    func(i int) string
		published int64
		failures  map[string]int
	}{
		{"all acknowledged", func(int) string { return "ack" }, n, nil},
		{"one publish timed out", func(i int) string {
			if i == 2 {
				return "hold"
			}
			return "ack"
		}, n - 1, map[string]int{timeoutCause: 1}},
		{"connection lost", func(i int) string {
			if i == 3 {
				return "close"
			}
			return "ack"
		}, 3, map[string]int{lostCause: 1}},
		{"run ends", func(i int) string {
			if i == 3 {
				return "cancel"
			}
			return "ack"
		}, 3, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, broker := net.Pipe()
			defer client.Close()
			sink := NewSink(100)
			f := &Fleet{cfg: Config{QoS: 1, PublishTimeout: 200 * time.Millisecond, Sink: sink}}
			d := &Device{ID: "d", fleet: f}
			s := &session3{conn: client, br: bufio.NewReaderSize(client, 128), writeTimeout: 5 * time.Second, waiting: map[uint16]waiter{}, done: make(chan struct{})}
			d.s3, d.conn = s, client
			go s.read(d, 0)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			// The broker: reads each publish, checks that none comes
			// before the previous one was answered, answers it.
			seen := map[uint16]bool{}
			brokerDone := make(chan string, 1)
			go func() {
				defer broker.Close()
				var held []byte
				for i := 0; ; i++ {
					broker.SetReadDeadline(time.Now().Add(5 * time.Second))
					p, err := mqttwire.ReadPacket(broker, 1<<10)
					if err != nil {
						brokerDone <- "" // the pipe closed: the test is over
						return
					}
					topic := "devices/d/telemetry"
					id := binary.BigEndian.Uint16(p.Body[2+len(topic):])
					if p.Type != mqttwire.TypePublish>>4 || string(p.Body[2:2+len(topic)]) != topic || seen[id] {
						brokerDone <- "unexpected packet or reused packet id"
						return
					}
					seen[id] = true
					puback := []byte{mqttwire.TypePuback, 2, byte(id >> 8), byte(id)}
					if held != nil { // the late answer, after the next publish came
						broker.Write(held)
						held = nil
					}
					switch tc.answer(i) {
					case "ack":
						broker.Write(puback)
					case "hold":
						held = puback
					case "close":
						brokerDone <- ""
						return
					case "cancel":
						cancel()
					}
				}
			}()

			finished := make(chan struct{})
			go func() { d.burst(ctx, n, Shape{Payload: PayloadRaw, Size: 16}); close(finished) }()
			select {
			case <-finished:
			case <-time.After(10 * time.Second):
				t.Fatal("the burst did not end")
			}
			client.Close()
			if msg := <-brokerDone; msg != "" {
				t.Fatal(msg)
			}

			if got := d.Sent(); got != tc.published {
				t.Errorf("acknowledged %d, want %d", got, tc.published)
			}
			var published int64
			failures := map[string]int{}
			for len(sink.Events()) > 0 {
				switch e := <-sink.Events(); e.Kind {
				case KindPublished:
					published++
					if e.D <= 0 {
						t.Errorf("published event without its latency: %+v", e)
					}
				case KindPublishFailed:
					failures[e.Cause]++
				}
			}
			if published != tc.published {
				t.Errorf("%d published events, want %d", published, tc.published)
			}
			if len(failures) != len(tc.failures) {
				t.Errorf("failures %v, want %v", failures, tc.failures)
			}
			for c, k := range tc.failures {
				if failures[c] != k {
					t.Errorf("failures %v, want %v", failures, tc.failures)
				}
			}
		})
	}
}
