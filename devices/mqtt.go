package devices

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/mqttstack/mqttstack/internal/mqttwire"
)

// roundTrip proves a board's session works: it connects as id (MQTT
// 3.1.1, clean session), subscribes to devices/<id>/compat, publishes one
// QoS 1 message there and waits for its PUBACK and its delivery. It
// returns the time from PUBLISH to delivery. The packets are
// internal/mqttwire's, written over whatever connection the board's
// handshake produced.
func roundTrip(ctx context.Context, c net.Conn, id string) (time.Duration, error) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
		defer c.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	r := bufio.NewReader(c)
	read := func(what string) (mqttwire.Raw, error) {
		p, err := mqttwire.ReadPacket(r, 1<<16)
		if err != nil {
			return p, fmt.Errorf("mqtt %s: %w", what, err)
		}
		return p, nil
	}
	if _, err := c.Write(mqttwire.Connect{ClientID: id, KeepAlive: 30}.Encode()); err != nil {
		return 0, fmt.Errorf("mqtt connect: %w", err)
	}
	p, err := read("connack")
	if err != nil {
		return 0, err
	}
	if code, _, err := mqttwire.ConnackCode(p); err != nil || code != 0 {
		return 0, &Refusal{Reason: ReasonMQTT, By: "broker", Detail: fmt.Sprintf("CONNACK %x: the broker refused the session", p.Body)}
	}
	topic := "devices/" + id + "/compat"
	sub := mqttwire.Subscribe{PacketID: 1, Filters: []mqttwire.Subscription{{Filter: topic, QoS: 1}}}
	if _, err := c.Write(sub.Encode()); err != nil {
		return 0, fmt.Errorf("mqtt subscribe: %w", err)
	}
	if p, err = read("suback"); err != nil {
		return 0, err
	}
	if p.Type != mqttwire.TypeSuback>>4 || len(p.Body) != 3 || p.Body[2] > 2 {
		return 0, &Refusal{Reason: ReasonMQTT, By: "broker", Detail: fmt.Sprintf("SUBACK %x: the broker denied the board's own topic %s", p.Body, topic)}
	}
	start := time.Now()
	pub := mqttwire.Publish{Topic: topic, QoS: 1, PacketID: 2, Payload: []byte(`{"compat":true}`)}
	if _, err := c.Write(pub.Encode()); err != nil {
		return 0, fmt.Errorf("mqtt publish: %w", err)
	}
	acked, got := false, time.Duration(0)
	for i := 0; i < 16 && (!acked || got == 0); i++ {
		if p, err = read(fmt.Sprintf("round trip (puback %v, delivered %v)", acked, got > 0)); err != nil {
			return 0, err
		}
		switch p.Type {
		case mqttwire.TypePuback >> 4:
			acked = true
		case mqttwire.TypePublish >> 4:
			got = time.Since(start)
			if k := 2 + len(topic); p.Flags&0x06 != 0 && len(p.Body) >= k+2 {
				c.Write(mqttwire.Packet(mqttwire.TypePuback, p.Body[k:k+2]))
			}
		}
	}
	if !acked || got == 0 {
		return 0, &Refusal{Reason: ReasonMQTT, By: "broker", Detail: "the publish was not acknowledged and delivered back"}
	}
	c.Write(mqttwire.Disconnect())
	return got, nil
}
