// Package fleet simulates IoT devices over MQTT with mutual TLS. It is the
// only importer of paho.mqtt.golang in the module.
//
// A Device is one board: its own client certificate (CN = device id = MQTT
// client id), a retained status topic with a last will, a sensor model that
// publishes JSON telemetry with a sequence number and a send timestamp, and a
// command subscription whose handler switches a relay. A Fleet connects many
// devices at a paced rate with a bounded number of handshakes in flight, and
// reconnects lost devices with its own exponential backoff so every attempt is
// measured. An Observer (the read-only identity) subscribes to what devices
// publish and accounts per-device loss, duplicates and reordering. A Backend
// (the backend identity) sends commands.
//
// Nothing here owns metrics: every measurement is an Event handed to a Sink,
// a buffered channel that one collector (package loadtest) drains. A full sink
// drops the event and counts the drop, so a paho callback never blocks.
//
// Concurrency and lifetime: a Fleet's run context (passed to Start) stops its
// workers and reconnect loops; Close waits for every goroutine the fleet
// started, including paho's, before it returns.
package fleet
