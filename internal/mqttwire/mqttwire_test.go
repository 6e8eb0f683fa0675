package mqttwire_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqttstack/mqttstack/internal/mqttwire"
)

func ptr(s string) *string { return &s }

// TestRemainingLengthSpecTable: the boundaries of MQTT 3.1.1 §2.2.3, Table
// 2.4 (one to four bytes), both ways.
func TestRemainingLengthSpecTable(t *testing.T) {
	tests := []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x00}},
		{127, []byte{0x7F}},
		{128, []byte{0x80, 0x01}},
		{16383, []byte{0xFF, 0x7F}},
		{16384, []byte{0x80, 0x80, 0x01}},
		{2097151, []byte{0xFF, 0xFF, 0x7F}},
		{2097152, []byte{0x80, 0x80, 0x80, 0x01}},
		{268435455, []byte{0xFF, 0xFF, 0xFF, 0x7F}},
	}
	for _, tt := range tests {
		got := mqttwire.AppendRemainingLength(nil, tt.n)
		if !bytes.Equal(got, tt.want) {
			t.Errorf("encode %d = % X, want % X", tt.n, got, tt.want)
		}
		n, err := mqttwire.ReadRemainingLength(bytes.NewReader(tt.want))
		if err != nil || n != tt.n {
			t.Errorf("decode % X = %d, %v; want %d", tt.want, n, err, tt.n)
		}
	}
	// beyond the table: five bytes on the way out (for hostile checks),
	// refused on the way in
	if got := mqttwire.AppendRemainingLength(nil, mqttwire.MaxRemainingLength+1); len(got) != 5 {
		t.Errorf("encode max+1 = % X, want 5 bytes", got)
	}
	if _, err := mqttwire.ReadRemainingLength(bytes.NewReader([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0x7F})); !errors.Is(err, mqttwire.ErrMalformedLength) {
		t.Errorf("decode of 5 bytes: %v, want ErrMalformedLength", err)
	}
	if _, err := mqttwire.ReadRemainingLength(bytes.NewReader([]byte{0x80})); !errors.Is(err, io.EOF) {
		t.Errorf("decode of a cut length: %v, want EOF", err)
	}
}

// TestSpecExamples compares with the byte examples of the specification.
func TestSpecExamples(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		// 3.1.1 §3.1.2.10, Figure 3.6: variable header of a CONNECT with
		// user name, password, will QoS 1, will flag, clean session and
		// keep alive 10 (flags 0xCE).
		{"connect variable header (Figure 3.6)", mqttwire.Connect{
			ClientID: "c", Username: ptr("u"), Password: ptr("p"), KeepAlive: 10,
			WillTopic: ptr("w"), WillMessage: []byte("m"), WillQoS: 1,
		}.Encode()[2:12], []byte{0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xCE, 0x00, 0x0A}},
		// §3.3.2.3, Figure 3.11: PUBLISH variable header, topic "a/b",
		// packet identifier 10.
		{"publish variable header (Figure 3.11)", mqttwire.Publish{Topic: "a/b", QoS: 1, PacketID: 10}.Encode()[2:],
			[]byte{0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A}},
		// §3.8: fixed header 1000 0010; packet identifier 10 (Figure
		// 3.21); payload "a/b" QoS 1, "c/d" QoS 2 (Figure 3.23).
		{"subscribe (§3.8, Figures 3.20–3.23)", mqttwire.Subscribe{PacketID: 10, Filters: []mqttwire.Subscription{{"a/b", 1}, {"c/d", 2}}}.Encode(),
			[]byte{0x82, 14, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x01, 0x00, 0x03, 'c', '/', 'd', 0x02}},
		// §3.12, Figure 3.33 and §3.14, Figure 3.35.
		{"pingreq", mqttwire.Pingreq(), []byte{0xC0, 0x00}},
		{"disconnect", mqttwire.Disconnect(), []byte{0xE0, 0x00}},
		// §1.5.3, Figure 1.1: a UTF-8 string is its length, then the bytes.
		{"string", mqttwire.AppendString(nil, "MQTT"), []byte{0x00, 0x04, 'M', 'Q', 'T', 'T'}},
		// 5.0 §3.1.2.11: an empty property block is one zero byte, after
		// the keep alive.
		{"v5 connect without properties", mqttwire.Connect{V5: true, ClientID: "a"}.Encode(),
			[]byte{0x10, 14, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 'a'}},
		{"retained qos 0 publish", mqttwire.Publish{Topic: "t", Retain: true, Payload: []byte("x")}.Encode(),
			[]byte{0x31, 4, 0x00, 0x01, 't', 'x'}},
	}
	for _, tt := range tests {
		if !bytes.Equal(tt.got, tt.want) {
			t.Errorf("%s:\n got % X\nwant % X", tt.name, tt.got, tt.want)
		}
	}
}

// TestSameBytesAsPaho encodes the packets paho also writes and compares:
// two independent encoders agreeing byte for byte.
func TestSameBytesAsPaho(t *testing.T) {
	write := func(p packets.ControlPacket) []byte {
		var b bytes.Buffer
		if err := p.Write(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	big := bytes.Repeat([]byte{'x'}, 200) // two-byte remaining length

	c := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	c.ProtocolName, c.ProtocolVersion, c.CleanSession, c.Keepalive = "MQTT", 4, true, 30
	c.ClientIdentifier = "dev-00001"
	c.UsernameFlag, c.Username, c.PasswordFlag, c.Password = true, "dev-00001", true, []byte("s3cret")
	c.WillFlag, c.WillQos, c.WillRetain, c.WillTopic, c.WillMessage = true, 1, true, "devices/dev-00001/status", []byte("offline")
	mine := mqttwire.Connect{ClientID: "dev-00001", Username: ptr("dev-00001"), Password: ptr("s3cret"), KeepAlive: 30,
		WillTopic: ptr("devices/dev-00001/status"), WillMessage: []byte("offline"), WillQoS: 1, WillRetain: true}.Encode()
	if theirs := write(c); !bytes.Equal(mine, theirs) {
		t.Errorf("CONNECT:\n mine  % X\n paho  % X", mine, theirs)
	}

	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.TopicName, p.Qos, p.MessageID, p.Payload = "devices/dev-00001/telemetry", 1, 513, big
	mine = mqttwire.Publish{Topic: "devices/dev-00001/telemetry", QoS: 1, PacketID: 513, Payload: big}.Encode()
	if theirs := write(p); !bytes.Equal(mine, theirs) {
		t.Errorf("PUBLISH:\n mine  % X\n paho  % X", mine, theirs)
	}

	s := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	s.MessageID, s.Topics, s.Qoss = 7, []string{"devices/#", "$SYS/#"}, []byte{1, 0}
	mine = mqttwire.Subscribe{PacketID: 7, Filters: []mqttwire.Subscription{{"devices/#", 1}, {"$SYS/#", 0}}}.Encode()
	if theirs := write(s); !bytes.Equal(mine, theirs) {
		t.Errorf("SUBSCRIBE:\n mine  % X\n paho  % X", mine, theirs)
	}
	if theirs := write(packets.NewControlPacket(packets.Pingreq)); !bytes.Equal(mqttwire.Pingreq(), theirs) {
		t.Errorf("PINGREQ: paho % X", theirs)
	}
	if theirs := write(packets.NewControlPacket(packets.Disconnect)); !bytes.Equal(mqttwire.Disconnect(), theirs) {
		t.Errorf("DISCONNECT: paho % X", theirs)
	}

	// and paho reads what we write
	got, err := packets.ReadPacket(bytes.NewReader(mqttwire.Publish{Topic: "a/b", QoS: 2, PacketID: 9, Dup: true, Retain: true, Payload: big}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if pp := got.(*packets.PublishPacket); pp.TopicName != "a/b" || pp.Qos != 2 || !pp.Dup || !pp.Retain || pp.MessageID != 9 || !bytes.Equal(pp.Payload, big) {
		t.Errorf("paho read back %v", pp)
	}
}

func TestPatchKeepAlive(t *testing.T) {
	for _, tt := range []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"3.1.1", mqttwire.Connect{ClientID: "d", KeepAlive: 0}.Encode(), true},
		{"5", mqttwire.Connect{V5: true, ClientID: "d"}.Encode(), true},
		{"long CONNECT (two-byte length)", mqttwire.Connect{ClientID: string(bytes.Repeat([]byte{'d'}, 300))}.Encode(), true},
		{"pingreq", mqttwire.Pingreq(), false},
		{"publish", mqttwire.Publish{Topic: "t"}.Encode(), false},
		{"cut", []byte{0x10}, false},
		{"other protocol name", []byte{0x10, 0x0c, 0, 4, 'M', 'Q', 'I', 's', 4, 2, 0, 0, 0, 0}, false},
		{"level 3", []byte{0x10, 0x0c, 0, 4, 'M', 'Q', 'T', 'T', 3, 2, 0, 0, 0, 0}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := append([]byte(nil), tt.pkt...)
			if got := mqttwire.PatchKeepAlive(b, 300); got != tt.ok {
				t.Fatalf("PatchKeepAlive = %v, want %v", got, tt.ok)
			}
			if !tt.ok {
				if !bytes.Equal(b, tt.pkt) {
					t.Fatalf("changed a packet it refused: % X", b)
				}
				return
			}
			p, err := mqttwire.ReadPacket(bufio.NewReader(bytes.NewReader(b)), 0)
			if err != nil {
				t.Fatal(err)
			}
			if ka := int(p.Body[8])<<8 | int(p.Body[9]); ka != 300 {
				t.Fatalf("keep-alive %d after the patch, want 300", ka)
			}
		})
	}
}

func TestReadPacketAndConnack(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		max     int
		code    byte
		session bool
		wantErr string
	}{
		{"accepted", []byte{0x20, 0x02, 0x00, 0x00}, 0, 0, false, ""},
		{"not authorized, session present", []byte{0x20, 0x02, 0x01, 0x05}, 0, 5, true, ""},
		{"v5 reason with properties", []byte{0x20, 0x03, 0x00, 0x87, 0x00}, 0, 0x87, false, ""},
		{"a PUBLISH first", mqttwire.Publish{Topic: "t"}.Encode(), 0, 0, false, "not a CONNACK"},
		{"lying length", []byte{0x20, 0xFF, 0xFF, 0x7F}, 1024, 0, false, "more than the 1024 allowed"},
		{"cut body", []byte{0x20, 0x02, 0x00}, 0, 0, false, "EOF"},
	}
	// without a ByteReader, nothing after the packet is consumed
	r := io.MultiReader(bytes.NewReader([]byte{0x20, 0x02, 0x00, 0x00}), bytes.NewReader([]byte{0xD0, 0x00}))
	if _, err := mqttwire.ReadPacket(r, 0); err != nil {
		t.Fatal(err)
	}
	if p, err := mqttwire.ReadPacket(r, 0); err != nil || p.Type != mqttwire.TypePingresp>>4 {
		t.Fatalf("second packet = %+v, %v; want the PINGRESP", p, err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := mqttwire.ReadPacket(bufio.NewReader(bytes.NewReader(tt.in)), tt.max)
			var code byte
			var session bool
			if err == nil {
				code, session, err = mqttwire.ConnackCode(p)
			}
			if tt.wantErr != "" {
				if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.wantErr)) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || code != tt.code || session != tt.session {
				t.Fatalf("= %d, %v, %v; want %d, %v", code, session, err, tt.code, tt.session)
			}
		})
	}
}
