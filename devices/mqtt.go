package devices

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// The few MQTT 3.1.1 packets a board needs to prove its session works:
// CONNECT, SUBSCRIBE to its own topic, PUBLISH QoS 1 there, and receive it
// back. Hand-written (a few dozen bytes each) so that the round trip runs
// over whatever connection the board's handshake produced.

func mqttString(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

func mqttPacket(first byte, body []byte) []byte {
	out := []byte{first}
	n := len(body)
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

func readPacket(r *bufio.Reader) (byte, []byte, error) {
	first, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(b&0x7f) * mult
		mult *= 128
		if b&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, nil, errors.New("mqtt: malformed remaining length")
		}
	}
	body := make([]byte, n)
	_, err = io.ReadFull(r, body)
	return first, body, err
}

// roundTrip connects as id, subscribes to devices/<id>/compat, publishes
// one QoS 1 message there and waits for its PUBACK and its delivery. It
// returns the time from PUBLISH to delivery.
func roundTrip(ctx context.Context, c net.Conn, id string) (time.Duration, error) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
		defer c.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	r := bufio.NewReader(c)
	connect := append(mqttString("MQTT"), 4, 0x02, 0, 30) // level 4, clean session, keep-alive 30 s
	connect = append(connect, mqttString(id)...)
	if _, err := c.Write(mqttPacket(0x10, connect)); err != nil {
		return 0, fmt.Errorf("mqtt connect: %w", err)
	}
	typ, body, err := readPacket(r)
	if err != nil {
		return 0, fmt.Errorf("mqtt connack: %w", err)
	}
	if typ != 0x20 || len(body) != 2 || body[1] != 0 {
		return 0, &Refusal{Reason: ReasonMQTT, By: "broker", Detail: fmt.Sprintf("CONNACK %x: the broker refused the session", body)}
	}
	topic := "devices/" + id + "/compat"
	sub := append([]byte{0, 1}, mqttString(topic)...)
	if _, err := c.Write(mqttPacket(0x82, append(sub, 1))); err != nil {
		return 0, fmt.Errorf("mqtt subscribe: %w", err)
	}
	typ, body, err = readPacket(r)
	if err != nil {
		return 0, fmt.Errorf("mqtt suback: %w", err)
	}
	if typ != 0x90 || len(body) != 3 || body[2] > 2 {
		return 0, &Refusal{Reason: ReasonMQTT, By: "broker", Detail: fmt.Sprintf("SUBACK %x: the broker denied the board's own topic %s", body, topic)}
	}
	payload := []byte(`{"compat":true}`)
	pub := append(mqttString(topic), 0, 2)
	start := time.Now()
	if _, err := c.Write(mqttPacket(0x32, append(pub, payload...))); err != nil {
		return 0, fmt.Errorf("mqtt publish: %w", err)
	}
	acked, got := false, time.Duration(0)
	for i := 0; i < 16 && (!acked || got == 0); i++ {
		typ, body, err = readPacket(r)
		if err != nil {
			return 0, fmt.Errorf("mqtt round trip (puback %v, delivered %v): %w", acked, got > 0, err)
		}
		switch typ & 0xf0 {
		case 0x40:
			acked = true
		case 0x30:
			got = time.Since(start)
			if typ&0x06 != 0 && len(body) >= 2+len(topic)+2 {
				k := 2 + len(topic)
				c.Write(mqttPacket(0x40, body[k:k+2]))
			}
		}
	}
	if !acked || got == 0 {
		return 0, &Refusal{Reason: ReasonMQTT, By: "broker", Detail: "the publish was not acknowledged and delivered back"}
	}
	c.Write([]byte{0xe0, 0})
	return got, nil
}
