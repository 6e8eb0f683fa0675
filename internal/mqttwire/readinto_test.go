package mqttwire_test

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/mqttstack/mqttstack/internal/mqttwire"
)

// TestReadPacketInto: a body that fits is read into the caller's buffer
// (no allocation), a larger one into a fresh one, and the packets read are
// the ones written.
func TestReadPacketInto(t *testing.T) {
	small := mqttwire.Publish{Topic: "devices/a/telemetry", Payload: []byte("x")}.Encode()
	large := mqttwire.Publish{Topic: "devices/a/telemetry", Payload: bytes.Repeat([]byte("y"), 300)}.Encode()
	tests := []struct {
		name   string
		in     []byte
		bufCap int
		shared bool // the body lies in the caller's buffer
	}{
		{"fits", small, 64, true},
		{"exactly", small, len(small) - 2, true},
		{"larger than the buffer", large, 64, false},
		{"no buffer", small, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := make([]byte, 0, tt.bufCap)
			p, err := mqttwire.ReadPacketInto(bufio.NewReader(bytes.NewReader(tt.in)), 1024, buf)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := mqttwire.ReadPacket(bufio.NewReader(bytes.NewReader(tt.in)), 1024)
			if p.Type != want.Type || p.Flags != want.Flags || !bytes.Equal(p.Body, want.Body) {
				t.Fatalf("= %+v, want %+v", p, want)
			}
			if shared := tt.bufCap > 0 && len(p.Body) > 0 && &p.Body[0] == &buf[:1][0]; shared != tt.shared {
				t.Fatalf("body in the caller's buffer = %v, want %v", shared, tt.shared)
			}
		})
	}
	src := bytes.NewReader(small)
	r := bufio.NewReader(src)
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() {
		src.Reset(small)
		r.Reset(src)
		if _, err := mqttwire.ReadPacketInto(r, 1024, buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per packet into a large enough buffer, want 0", n)
	}
}
