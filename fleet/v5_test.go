package fleet

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/internal/stacktest"
)

// TestV5 runs MQTT 5 devices (paho.golang) against the real broker.
func TestV5(t *testing.T) {
	t.Run("connect publish storm observe with topic aliases", func(t *testing.T) {
		const n = 30
		h, ctx := newHarness(t, n, func(c *Config) {
			c.Protocol, c.SessionExpiry, c.TopicAliases, c.CleanSession = MQTT5, time.Minute, true, false
		})
		devs := h.fleet.Devices()
		h.fleet.Connect(ctx, devs, PerSecond(300))
		h.requireConnected(t, n)
		stage, cancel := context.WithTimeout(ctx, 3*time.Second)
		go func() {
			time.Sleep(time.Second)
			h.fleet.Storm(stage, devs[:n/3], 300*time.Millisecond)
		}()
		h.fleet.PublishEvery(stage, devs, 250*time.Millisecond, Shape{Payload: PayloadDHT11})
		cancel()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && (!h.fleet.Idle() || h.fleet.ConnectedCount() < n); {
			time.Sleep(20 * time.Millisecond)
		}
		sent := func(i int) int64 { return devs[i].Sent() }
		drained := h.obs.Drain(ctx, sent, 3*time.Second)
		exp, uniq, lost := h.obs.Lost(sent)
		var c counts
		h.drain(&c)
		t.Logf("expected %d unique %d lost %d kinds %v causes %v", exp, uniq, lost, c.kinds, c.causes)
		if !drained || lost != 0 || exp < n*8 {
			t.Errorf("drained %v, expected %d, lost %d: want ≥ %d messages and none lost", drained, exp, lost, n*8)
		}
		if c.kinds[KindDisconnected] != n/3 || c.kinds[KindReconnected] != n/3 || h.fleet.ConnectedCount() != n {
			t.Errorf("storm: disconnected %d, reconnected %d, connected %d; want %d, %d, %d", c.kinds[KindDisconnected], c.kinds[KindReconnected], h.fleet.ConnectedCount(), n/3, n/3, n)
		}
		if c.kinds[KindPublishFailed] > n/3 {
			t.Errorf("%d failed publishes for %d drops", c.kinds[KindPublishFailed], n/3)
		}
		devs[0].mu.Lock()
		s5 := devs[0].s5
		devs[0].mu.Unlock()
		if s5 == nil || s5.aliasMax == 0 || !s5.aliased.Load() {
			t.Errorf("session %+v: want the broker's topic alias maximum and the telemetry alias in use", s5)
		}
		log := h.stack.MosquittoLog()
		if !strings.Contains(log, "as "+devs[0].ID+" (p5, c0, k30") {
			t.Errorf("broker log does not show %s connecting with MQTT 5, clean start 0, keep-alive 30", devs[0].ID)
		}
	})

	t.Run("denied publish is a failed publish with its reason", func(t *testing.T) {
		const n = 3
		// Devices may read their topics and write their status, not their telemetry.
		s := stacktest.Start(t, stacktest.WithDevices(n), stacktest.WithMutation(
			stacktest.ReplaceLine("/acl", "pattern readwrite devices/%u/#", "pattern read devices/%u/#\npattern write devices/%u/status")))
		h, ctx := newHarnessOn(t, s, n, func(c *Config) { c.Protocol = MQTT5 })
		devs := h.fleet.Devices()
		h.fleet.Connect(ctx, devs, PerSecond(100))
		h.requireConnected(t, n)
		err := devs[0].Publish(ctx, Shape{Payload: PayloadDHT11})
		var re *ReasonError
		if !errors.As(err, &re) || re.Code != 0x87 || re.Packet != "PUBACK" {
			t.Fatalf("publish to a denied topic: err %v, want PUBACK reason 0x87", err)
		}
		var c counts
		h.drain(&c)
		if want := "publish-failed publish: refused: not authorized (0x87)"; c.causes[want] != 1 || c.kinds[KindPublished] != 0 {
			t.Errorf("causes %v, published %d: want %q once and nothing published", c.causes, c.kinds[KindPublished], want)
		}
		if devs[0].Sent() != 0 || !devs[0].Connected() {
			t.Errorf("sent %d connected %v: a refused publish is not sent, and the session stays", devs[0].Sent(), devs[0].Connected())
		}
	})
}

func TestReasonName(t *testing.T) {
	tests := []struct {
		stage Stage
		err   error
		want  string
	}{
		{StageConnack, &ReasonError{Packet: "CONNACK", Code: 0x86}, "connack: refused: bad user name or password (0x86)"},
		{StagePublish, &ReasonError{Packet: "PUBACK", Code: 0x97}, "publish: refused: quota exceeded (0x97)"},
		{StageLost, &ReasonError{Packet: "DISCONNECT", Code: 0x8E}, "connection lost: disconnected by the broker: session taken over (0x8E)"},
		{StageLost, &ReasonError{Packet: "DISCONNECT", Code: 0xFE}, "connection lost: disconnected by the broker: reason 0xFE"},
		{StagePublish, errors.New("PUBLISH transmitted but not fully acknowledged at time of shutdown"), "publish: connection lost"},
	}
	for _, tt := range tests {
		if got := Classify(tt.stage, tt.err); got != tt.want {
			t.Errorf("Classify(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
