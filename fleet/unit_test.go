package fleet

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqttstack/mqttstack/internal/mqttwire"
)

func TestRateDue(t *testing.T) {
	tests := []struct {
		name    string
		r       Rate
		elapsed time.Duration
		want    int64
	}{
		{"first hit at zero", PerSecond(100), 0, 1},
		{"just before second", PerSecond(100), 9999 * time.Microsecond, 1},
		{"second hit at 10ms", PerSecond(100), 10 * time.Millisecond, 2},
		{"one second", PerSecond(100), time.Second, 101},
		{"slow rate", Rate{Freq: 1, Per: time.Minute}, 59 * time.Second, 1},
		{"slow rate due", Rate{Freq: 1, Per: time.Minute}, time.Minute, 2},
		{"negative elapsed", PerSecond(10), -time.Second, 0},
		{"zero rate never fires", Rate{}, time.Hour, 0},
		{"an hour at 10k/s does not overflow", PerSecond(10000), time.Hour, 36_000_001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Due(tt.elapsed); got != tt.want {
				t.Errorf("Due(%v) = %d, want %d", tt.elapsed, got, tt.want)
			}
		})
	}
}

func TestRateWait(t *testing.T) {
	r := PerSecond(4) // a hit every 250ms
	tests := []struct {
		elapsed time.Duration
		done    int64
		want    time.Duration
	}{
		{0, 0, 0},                      // first is due now
		{0, 1, 250 * time.Millisecond}, // second at 250ms
		{100 * time.Millisecond, 1, 150 * time.Millisecond}, // part way
		{250 * time.Millisecond, 1, 0},                      // exactly due
		{time.Second, 2, 0},                                 // behind schedule: catch up at once
		{time.Second, 5, 250 * time.Millisecond},            // ahead: wait for hit 5 at 1.25s
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v-%d", tt.elapsed, tt.done), func(t *testing.T) {
			if got := r.Wait(tt.elapsed, tt.done); got != tt.want {
				t.Errorf("Wait(%v, %d) = %v, want %v", tt.elapsed, tt.done, got, tt.want)
			}
		})
	}
	// Wait and Due agree: after waiting, the hit is due.
	for done := int64(0); done < 50; done++ {
		for _, e := range []time.Duration{0, 7 * time.Millisecond, 333 * time.Millisecond, 2 * time.Second} {
			w := r.Wait(e, done)
			if r.Due(e+w) <= done {
				t.Fatalf("after Wait(%v,%d)=%v hit %d is not due", e, done, w, done)
			}
			if w > 0 && r.Due(e+w-1) > done {
				t.Fatalf("Wait(%v,%d)=%v waits longer than needed", e, done, w)
			}
		}
	}
	if err := (Rate{Freq: 0, Per: time.Second}).Validate(); err == nil {
		t.Error("zero rate validated")
	}
}

func TestPaceStopsOnContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n := pace(ctx, PerSecond(1), 10, func(int) bool { return true }); n != 0 {
		t.Errorf("pace with a cancelled context made %d hits", n)
	}
	if n := pace(context.Background(), Rate{Freq: 1, Per: time.Nanosecond}, 5, func(i int) bool { return i < 2 }); n != 3 {
		t.Errorf("pace stopped by hit after %d hits, want 3", n)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second, Jitter: 0.2}
	tests := []struct {
		attempt int
		u       float64
		want    time.Duration
	}{
		{0, 0.5, 100 * time.Millisecond}, // middle of the jitter: the base
		{1, 0.5, 200 * time.Millisecond},
		{3, 0.5, 800 * time.Millisecond},
		{4, 0.5, time.Second}, // capped
		{60, 0.5, time.Second},
		{0, 0, 80 * time.Millisecond},  // -20%
		{0, 1, 120 * time.Millisecond}, // +20%
		{-1, 0.5, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := b.Delay(tt.attempt, tt.u); got != tt.want {
			t.Errorf("Delay(%d, %v) = %v, want %v", tt.attempt, tt.u, got, tt.want)
		}
	}
}

func TestSeqTracker(t *testing.T) {
	tests := []struct {
		name string
		seqs []uint64
		want []Outcome
		// unique, duplicates, reorders
		u, d, r int64
	}{
		{"in order", []uint64{1, 2, 3}, []Outcome{SeqNew, SeqNew, SeqNew}, 3, 0, 0},
		{"duplicate", []uint64{1, 2, 2, 1}, []Outcome{SeqNew, SeqNew, SeqDuplicate, SeqDuplicate}, 2, 2, 0},
		{"reordered", []uint64{1, 3, 2}, []Outcome{SeqNew, SeqNew, SeqLate}, 3, 0, 1},
		{"reordered then duplicated", []uint64{2, 1, 1}, []Outcome{SeqNew, SeqLate, SeqDuplicate}, 2, 1, 1},
		{"gap stays open (loss is counted against sent)", []uint64{1, 5}, []Outcome{SeqNew, SeqNew}, 2, 0, 0},
		{"zero is invalid", []uint64{0}, []Outcome{SeqInvalid}, 0, 0, 0},
		{"across a word boundary", []uint64{1, 70, 1, 2}, []Outcome{SeqNew, SeqNew, SeqDuplicate, SeqLate}, 3, 1, 1},
		{"at the window's edge", []uint64{1, SeqWindow, 1}, []Outcome{SeqNew, SeqNew, SeqDuplicate}, 2, 1, 0},
		{"beyond the window", []uint64{1, SeqWindow + 1, 1}, []Outcome{SeqNew, SeqNew, SeqStale}, 3, 0, 1},
		{"big jump clears the window", []uint64{5, 100000, 5}, []Outcome{SeqNew, SeqNew, SeqStale}, 3, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr SeqTracker
			for i, s := range tt.seqs {
				if got := tr.Observe(s); got != tt.want[i] {
					t.Errorf("Observe(%d) #%d = %d, want %d", s, i, got, tt.want[i])
				}
			}
			if tr.Unique != tt.u || tr.Duplicates != tt.d || tr.Reorders != tt.r {
				t.Errorf("unique/dup/reorder = %d/%d/%d, want %d/%d/%d", tr.Unique, tr.Duplicates, tr.Reorders, tt.u, tt.d, tt.r)
			}
		})
	}
}

// TestSeqTrackerShuffled: any permutation within the window, each number
// sent twice, gives exactly n unique and n duplicates.
func TestSeqTrackerShuffled(t *testing.T) {
	const n = 1000
	var tr SeqTracker
	order := make([]uint64, 0, 2*n)
	for base := uint64(1); base <= n; base += 100 {
		// Within each block of 100: reversed, then again in order.
		for s := base + 99; s >= base; s-- {
			order = append(order, s)
		}
		for s := base; s < base+100; s++ {
			order = append(order, s)
		}
	}
	for _, s := range order {
		tr.Observe(s)
	}
	if tr.Unique != n || tr.Duplicates != n || tr.Highest() != n {
		t.Errorf("unique %d duplicates %d highest %d, want %d each", tr.Unique, tr.Duplicates, tr.Highest(), n)
	}
}

func TestTelemetryRoundTrip(t *testing.T) {
	s := NewSensor(42)
	ts := time.Unix(1_800_000_000, 123456789)
	for _, p := range []Payload{PayloadDHT11, PayloadHTU21D, PayloadDS18B20, PayloadBattery, PayloadRaw} {
		for _, size := range []int{0, 300} {
			t.Run(fmt.Sprintf("%d-%d", p, size), func(t *testing.T) {
				s.Step()
				b := s.AppendTelemetry(nil, p, "dev-00042", 7, ts, size)
				if len(b) < size {
					t.Errorf("len %d < size %d", len(b), size)
				}
				seq, got, err := ParseTelemetry(b)
				if err != nil || seq != 7 || got != ts.UnixNano() {
					t.Fatalf("parse %q: seq %d ts %d err %v", b, seq, got, err)
				}
				if p == PayloadRaw {
					return
				}
				var tm Telemetry
				if err := json.Unmarshal(b, &tm); err != nil {
					t.Fatalf("not JSON: %v: %s", err, b)
				}
				if tm.Device != "dev-00042" || tm.Seq != 7 || tm.TS != ts.UnixNano() || tm.RSSI > -40 || tm.RSSI < -93 {
					t.Errorf("decoded %+v", tm)
				}
			})
		}
	}
	for _, bad := range []string{"", "short", `{"seq":1}`, `{"ts":5}`, `{"seq":x,"ts":1}`} {
		if _, _, err := ParseTelemetry([]byte(bad)); err == nil {
			t.Errorf("ParseTelemetry(%q) accepted", bad)
		}
	}
}

func TestSensorStaysInRange(t *testing.T) {
	s := NewSensor(7)
	for range 100000 {
		s.Step()
		if s.Temp < -40 || s.Temp > 80 || s.Hum < 0 || s.Hum > 100 || s.Battery < 0 || s.Battery > 100 {
			t.Fatalf("out of range: %+v", s)
		}
	}
	if a, b := NewSensor(1), NewSensor(1); a.Temp != b.Temp || a.RSSI != b.RSSI {
		t.Error("same seed, different sensors")
	}
}

func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		stage Stage
		err   error
		want  string
	}{
		{StageTCP, refused, "tcp: connection refused"},
		{StageTCP, fmt.Errorf("network Error : %w", refused), "tcp: connection refused"},
		{StageTLS, tls.AlertError(42), "tls: bad certificate"},
		{StageConnack, packets.ErrorRefusedNotAuthorised, "connack: not authorized"},
		{StageConnack, fmt.Errorf("x: %w", context.DeadlineExceeded), "timeout: connack"},
		{StageLost, io.EOF, "connection lost: EOF"},
		{StageLost, errors.New("pingresp not received, disconnecting"), "connection lost: pingresp not received"},
		{StageTCP, &net.OpError{Op: "dial", Err: os.NewSyscallError("socket", syscall.EMFILE)}, "tcp: too many open files"},
		{StageTLS, errors.New("something odd"), "tls: something odd"},
		{StageTLS, errors.New("odd at 127.0.0.1:4242"), "tls: other (*errors.errorString)"},
	}
	for _, tt := range tests {
		if got := Classify(tt.stage, tt.err); got != tt.want {
			t.Errorf("Classify(%s, %v) = %q, want %q", tt.stage, tt.err, got, tt.want)
		}
	}
	// A TLS alert read while waiting for CONNACK (TLS 1.3 sends it after
	// the client's Finished) is still the handshake's refusal.
	if got := classifyConnect(StageConnack, fmt.Errorf("network Error : %w", tls.AlertError(42))); got != "tls: bad certificate" {
		t.Errorf("classifyConnect = %q", got)
	}
}

func TestCheckCapacity(t *testing.T) {
	if err := CheckCapacity(10000, 2, 20000); err != nil {
		t.Errorf("10,000 devices under 20,000: %v", err)
	}
	err := CheckCapacity(19900, 2, 20000)
	if err == nil || !strings.Contains(err.Error(), "19900 devices") || !strings.Contains(err.Error(), "20030") || !strings.Contains(err.Error(), "20000") {
		t.Errorf("over the limit: %v", err)
	}
}

func TestSinkNeverBlocks(t *testing.T) {
	s := NewSink(2)
	for range 5 {
		s.Emit(Event{Kind: KindPublished})
	}
	if s.Dropped() != 3 || len(s.Events()) != 2 {
		t.Errorf("dropped %d buffered %d, want 3 and 2", s.Dropped(), len(s.Events()))
	}
	var nilSink *Sink
	nilSink.Emit(Event{}) // discards
}

func TestConfigValidate(t *testing.T) {
	err := (&Config{Addr: "nohost", QoS: 3, KeepAlive: -1}).Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"broker address", "server name", "root CAs", "qos 3", "keepalive"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := New(Config{}, nil, Options{}); err == nil {
		t.Error("fleet without devices accepted")
	}
}

func TestDeviceOf(t *testing.T) {
	for topic, want := range map[string]string{
		"devices/dev-1/telemetry":   "dev-1",
		"devices//telemetry":        "",
		"devices/a/b/telemetry":     "",
		"other/dev-1/telemetry":     "",
		"devices/dev-1/telemetry/x": "",
	} {
		got, ok := deviceOf(topic, "telemetry")
		if got != want || ok != (want != "") {
			t.Errorf("deviceOf(%q) = %q, %v", topic, got, ok)
		}
	}
}

func TestPatchKeepalive(t *testing.T) {
	for _, id := range []string{"d", strings.Repeat("x", 200)} { // 1- and 2-byte remaining length
		cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
		cp.ProtocolName, cp.ProtocolVersion = "MQTT", 4
		cp.ClientIdentifier, cp.Keepalive, cp.CleanSession = id, 0, true
		cp.WillFlag, cp.WillTopic, cp.WillMessage, cp.WillRetain, cp.WillQos = true, "devices/"+id+"/status", []byte("offline"), true, 1
		var buf bytes.Buffer
		if err := cp.Write(&buf); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		if !patchKeepalive(b, 30) {
			t.Fatalf("CONNECT (id of %d bytes) not patched", len(id))
		}
		got, err := packets.ReadPacket(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		c := got.(*packets.ConnectPacket)
		if c.Keepalive != 30 || c.ClientIdentifier != id || string(c.WillMessage) != "offline" {
			t.Errorf("after patch: keepalive %d id %q will %q", c.Keepalive, c.ClientIdentifier, c.WillMessage)
		}
	}
	for _, other := range [][]byte{pingreq, {0x30, 0x02, 0, 0}, {0x10}, {0x10, 0x0c, 0, 4, 'M', 'Q', 'I', 's', 4, 2, 0, 0, 0, 0}} {
		if patchKeepalive(append([]byte(nil), other...), 30) {
			t.Errorf("patched %x", other)
		}
	}
}

func TestBound(t *testing.T) {
	if got := bound(context.Background(), PerSecond(10)); got != math.MaxInt {
		t.Errorf("no deadline: %d", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if got := bound(ctx, PerSecond(10)); got < 19 || got > 21 {
		t.Errorf("2s at 10/s: bound %d, want about 21", got)
	}
}

// TestAppendPublish: the one-allocation PUBLISH is byte for byte
// mqttwire's.
func TestAppendPublish(t *testing.T) {
	for _, tt := range []struct {
		topic   string
		retain  bool
		payload []byte
	}{
		{"devices/dev-00001/telemetry", false, []byte(`{"seq":1}`)},
		{"devices/d/status", true, []byte("online")},
		{"t", false, make([]byte, 300)}, // two-byte remaining length
	} {
		for _, qos := range []byte{1, 2} {
			want := mqttwire.Publish{Topic: tt.topic, QoS: qos, Retain: tt.retain, PacketID: 0x1234, Payload: tt.payload}.Encode()
			if got := appendPublish(nil, tt.topic, qos, tt.retain, 0x1234, tt.payload); !bytes.Equal(got, want) {
				t.Errorf("%s qos %d: got % x, want % x", tt.topic, qos, got, want)
			}
		}
	}
}
