package loadtest

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mqttstack/mqttstack/fleet"
	"github.com/mqttstack/mqttstack/loadtest/result"
)

// TestDeadBrokerRuleOnFakeClock runs the monitor (1 s ticker) and the
// collector on synctest's fake clock: when the broker is declared dead is
// decided by the clock, so the assertion is exact and never flaky.
func TestDeadBrokerRuleOnFakeClock(t *testing.T) {
	const refused = "tcp: connection refused"
	tests := []struct {
		name string
		// script emits the fleet's events against the fake clock; it
		// starts right after 10 devices connected at t=0.
		script func(emit func(fleet.Kind, string))
		// wantDead is when the rule fires (0: not within 20 s).
		wantDead time.Duration
	}{
		{name: "all lost at 1s, failing from then: dead 5s after the last success",
			script: func(emit func(fleet.Kind, string)) {
				time.Sleep(time.Second)
				for range 10 {
					emit(fleet.KindLost, "eof")
				}
				for range 8 {
					emit(fleet.KindConnectFailed, refused)
					time.Sleep(500 * time.Millisecond)
				}
			},
			wantDead: 5 * time.Second},
		{name: "a success at 3s postpones it to 8s",
			script: func(emit func(fleet.Kind, string)) {
				time.Sleep(time.Second)
				for range 10 {
					emit(fleet.KindLost, "eof")
				}
				emit(fleet.KindConnectFailed, refused)
				time.Sleep(2 * time.Second)
				emit(fleet.KindConnected, "")
				emit(fleet.KindLost, "eof")
				emit(fleet.KindConnectFailed, refused)
			},
			wantDead: 8 * time.Second},
		{name: "most devices still connected: never",
			script: func(emit func(fleet.Kind, string)) {
				time.Sleep(time.Second)
				for range 4 {
					emit(fleet.KindLost, "eof")
				}
				for range 20 {
					emit(fleet.KindConnectFailed, refused)
					time.Sleep(500 * time.Millisecond)
				}
			}},
		{name: "all lost but nothing failed yet: never",
			script: func(emit func(fleet.Kind, string)) {
				time.Sleep(time.Second)
				for range 10 {
					emit(fleet.KindLost, "eof")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				sink := fleet.NewSink(1024)
				col := newCollector(result.NewRecorder(result.Meta{Scenario: "fake-clock"}), sink)
				go col.run()
				emit := func(k fleet.Kind, cause string) { sink.Emit(fleet.Event{Kind: k, At: time.Now(), Cause: cause}) }
				for range 10 {
					emit(fleet.KindConnected, "")
				}
				ctx, stop := context.WithCancelCause(context.Background())
				var deadAt time.Duration
				monitorDone := make(chan struct{})
				go func() {
					monitor(ctx, col, newProgress(ctx, nil, false, 10, nil), 5*time.Second, func(err error) {
						if errors.Is(err, ErrBrokerDown) && deadAt == 0 {
							deadAt = time.Since(start)
						}
						stop(err)
					})
					close(monitorDone)
				}()
				tt.script(emit)
				select {
				case <-ctx.Done():
				case <-time.After(20*time.Second - time.Since(start)):
				}
				stop(nil)
				<-monitorDone
				col.stop()
				if deadAt != tt.wantDead {
					t.Fatalf("declared dead at %v, want %v (0 = never); cause %v", deadAt, tt.wantDead, context.Cause(ctx))
				}
			})
		})
	}
}
