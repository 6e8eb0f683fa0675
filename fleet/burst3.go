package fleet

import (
	"context"
	"sync"
	"time"
)

// A burst (Fleet.Burst) is a device publishing n messages back to back,
// each after the previous one's acknowledgement. Run by a worker calling
// Publish n times, every publish costs two goroutine runs: the session's
// reader wakes on the PUBACK and hands it to the worker, which wakes and
// writes the next one. At the broker's full QoS 1 rate those hand-offs
// (each a park, often a thread woken) were most of the tool's CPU beyond
// TLS. burst3 lets the MQTT 3.1.1 session's reader, already running when
// the acknowledgement arrives, count it and write the next publish itself;
// the worker only starts the burst, enforces the publish timeout and waits
// for the end. Every publish is still counted and timed as Publish does it
// (KindPublished with its latency, or KindPublishFailed with its cause).

// burst runs a burst of n publishes of d: on the session's reader for an
// MQTT 3.1.1 session at QoS 1 or 2, otherwise by calling Publish n times
// (stopping once the device is no longer connected).
func (d *Device) burst(ctx context.Context, n int, sh Shape) {
	d.mu.Lock()
	s3 := d.s3
	d.mu.Unlock()
	if s3 != nil && d.fleet.cfg.QoS > 0 {
		newBurst3(ctx, d, s3, n, sh).run()
		return
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		if d.Publish(ctx, sh) != nil && !d.Connected() {
			return
		}
	}
}

// burst3 is one burst on one MQTT 3.1.1 session. Its state is guarded by
// mu, taken by whichever goroutine moves it on: the worker (first publish,
// timeout, end of the run) or the reader (an acknowledgement, the end of
// the connection). Lock order: burst3.mu, then session3.mu.
type burst3 struct {
	ctx     context.Context
	d       *Device
	s       *session3
	sh      Shape
	timeout time.Duration
	done    chan struct{} // closed when the burst ends

	mu    sync.Mutex
	left  int       // publishes not yet sent
	id    uint16    // the packet id awaiting its acknowledgement (0: none)
	sent  time.Time // when it was sent
	ended bool
	ack   func(id uint16, rc byte, ok bool) // b.acked, allocated once
}

func newBurst3(ctx context.Context, d *Device, s *session3, n int, sh Shape) *burst3 {
	b := &burst3{ctx: ctx, d: d, s: s, sh: sh, timeout: d.fleet.cfg.PublishTimeout, left: n, done: make(chan struct{})}
	b.ack = b.acked
	return b
}

// run sends the first publish and waits for the burst to end, failing a
// publish whose acknowledgement is later than the publish timeout (the
// burst then goes on, as Publish would) and stopping at the end of ctx.
func (b *burst3) run() {
	b.mu.Lock()
	b.next()
	b.mu.Unlock()
	t := time.NewTimer(b.timeout)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-b.ctx.Done():
			b.mu.Lock()
			b.forget()
			b.end()
			b.mu.Unlock()
			return
		case <-t.C:
			b.mu.Lock()
			wait := b.timeout
			if b.id != 0 {
				if late := time.Since(b.sent); late >= b.timeout {
					b.forget()
					b.failed(context.DeadlineExceeded)
					b.next()
				} else {
					wait = b.timeout - late
				}
			}
			b.mu.Unlock()
			t.Reset(wait)
		}
	}
}

// acked is the waiter the reader calls with the acknowledgement of id
// (ok), or when the connection ended (!ok): a burst on a lost session
// ends, as Publish's loop ends once the device is not connected. An id
// that is no longer b.id was given up (the publish timed out) after the
// reader took its waiter, and is ignored.
func (b *burst3) acked(id uint16, _ byte, ok bool) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended || id != b.id {
		return
	}
	sent := b.sent
	b.id = 0
	if !ok {
		b.failed(errSessionGone)
		b.end()
		return
	}
	b.d.published(sent, now)
	b.next()
}

// next sends the next publish, or ends the burst when none is left or ctx
// has ended. A failed write ends it too: a TLS connection whose write
// failed stays broken, and its reader reports the loss. b.mu must be held.
func (b *burst3) next() {
	if b.ended {
		return
	}
	if b.left == 0 || b.ctx.Err() != nil {
		b.end()
		return
	}
	b.left--
	d, s := b.d, b.s
	payload := packetBufs.Get().(*[]byte)
	packet := packetBufs.Get().(*[]byte)
	defer packetBufs.Put(payload)
	defer packetBufs.Put(packet)
	d.mu.Lock()
	*payload, b.sent = d.appendTelemetry((*payload)[:0], b.sh)
	d.mu.Unlock()
	s.mu.Lock()
	id, err := s.register(waiter{fn: b.ack})
	s.mu.Unlock()
	if err == nil {
		b.id = id
		*packet = appendPublish((*packet)[:0], d.telemetryTopic(), d.fleet.cfg.QoS, false, id, *payload)
		if err = s.write(*packet); err != nil {
			b.forget()
		}
	}
	if err != nil {
		b.failed(err)
		b.end()
	}
}

// failed counts the current publish as failed with err, unless the run
// has ended (a publish cut short by the run's end says nothing about the
// broker). b.mu must be held.
func (b *burst3) failed(err error) {
	if b.ctx.Err() != nil {
		return
	}
	b.d.emit(Event{Kind: KindPublishFailed, At: time.Now(), Cause: Classify(StagePublish, err)})
}

// forget stops waiting for b.id's acknowledgement (a late one finds no
// waiter and is dropped). b.mu must be held.
func (b *burst3) forget() {
	if b.id != 0 {
		b.s.forget(b.id)
		b.id = 0
	}
}

// end ends the burst once. b.mu must be held.
func (b *burst3) end() {
	if !b.ended {
		b.ended = true
		close(b.done)
	}
}
