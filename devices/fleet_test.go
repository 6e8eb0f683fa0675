package devices_test

import (
	"context"
	"testing"
	"time"

	"github.com/mqttstack/mqttstack/certs"
	"github.com/mqttstack/mqttstack/devices"
	"github.com/mqttstack/mqttstack/fleet"
	"github.com/mqttstack/mqttstack/internal/stacktest"
)

// TestFleetHandshakesAsProfile: fleet devices given a profile's handshake
// connect as that board (the broker sees the board's hello: a refused
// profile fails with its reason as the cause), and every event carries the
// device's profile.
func TestFleetHandshakesAsProfile(t *testing.T) {
	s := stacktest.Start(t, stacktest.WithDevices(6))
	pool, err := certs.LoadCAPool(s.Target.CACert)
	if err != nil {
		t.Fatal(err)
	}
	board := devices.Board{ServerName: s.Target.ServerName, RootCAs: pool}
	profileOf := []string{"esp8266-bearssl", "esp8266-bearssl", "pico-w-mbedtls-3.6", "sim800", "", ""}
	var ids []fleet.Identity
	for i, id := range s.Devices {
		c, err := certs.LoadClient(s.PKIDir, id)
		if err != nil {
			t.Fatal(err)
		}
		ident := fleet.Identity{ID: id, Cert: &c, Profile: profileOf[i]}
		if profileOf[i] != "" {
			p, err := devices.Lookup(profileOf[i])
			if err != nil {
				t.Fatal(err)
			}
			ident.Handshake = devices.Dialer(p, board)
		}
		ids = append(ids, ident)
	}
	sink := fleet.NewSink(1 << 12)
	f, err := fleet.New(fleet.Config{
		Addr: s.Target.MQTTSAddr(), ServerName: s.Target.ServerName, RootCAs: pool,
		CleanSession: true, QoS: 1, Sink: sink,
		Backoff: fleet.Backoff{Min: time.Minute, Max: time.Minute}, // no retry inside the test
	}, ids, fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Close(250 * time.Millisecond)
	f.Connect(ctx, f.Devices(), fleet.PerSecond(100))

	connected, failed := map[string]int{}, map[string]string{}
	for done := false; !done; {
		select {
		case e := <-sink.Events():
			switch e.Kind {
			case fleet.KindConnected:
				connected[e.Profile]++
				if e.TLS <= 0 {
					t.Errorf("%s: connected without a timed TLS phase", e.Profile)
				}
			case fleet.KindConnectFailed:
				failed[e.Profile] = e.Cause
			}
		default:
			done = true
		}
	}
	want := map[string]int{"esp8266-bearssl": 2, "pico-w-mbedtls-3.6": 1, "": 2}
	for p, n := range want {
		if connected[p] != n {
			t.Errorf("profile %q: %d connected, want %d (connected %v, failed %v)", p, connected[p], n, connected, failed)
		}
	}
	if c := failed["sim800"]; c != "tls: protocol version" {
		t.Errorf("sim800 failed with cause %q, want %q (failed %v)", c, "tls: protocol version", failed)
	}
}
