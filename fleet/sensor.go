package fleet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Sensor is the state of one board's sensors: temperature and humidity as a
// slow random walk within what a DHT11/HTU21D reports, a battery that drains
// a little with every transmission, and an RSSI that wanders around the
// board's own link quality. It is not safe for concurrent use: a device owns
// its sensor and reads it under its own lock.
type Sensor struct {
	Temp    float64 // °C
	Hum     float64 // %RH
	Battery float64 // %
	RSSI    int     // dBm
	base    int     // the board's typical RSSI
	rnd     *rand.Rand
}

// NewSensor returns a sensor whose readings are deterministic for a seed, so
// that a run can be repeated reading for reading.
func NewSensor(seed uint64) *Sensor {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	base := -45 - r.IntN(45) // -45 … -89 dBm: next to the gateway … edge of range
	return &Sensor{
		Temp:    18 + r.Float64()*8,
		Hum:     35 + r.Float64()*25,
		Battery: 60 + r.Float64()*40,
		RSSI:    base,
		base:    base,
		rnd:     r,
	}
}

// Step advances the model by one reading.
func (s *Sensor) Step() {
	s.Temp = clamp(s.Temp+s.rnd.NormFloat64()*0.15, -40, 80) // HTU21D range
	s.Hum = clamp(s.Hum+s.rnd.NormFloat64()*0.4, 0, 100)
	s.Battery = clamp(s.Battery-0.002-s.rnd.Float64()*0.002, 0, 100) // a transmission costs a little
	s.RSSI = s.base + s.rnd.IntN(9) - 4
}

func clamp(v, lo, hi float64) float64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// Payload is the shape of a device's telemetry.
type Payload uint8

// Payloads. The sensor payloads are JSON as the boards in the field send it;
// every one carries the device id, a sequence number and the send time in unix
// nanoseconds ("ts"). PayloadRaw is binary: an 8-byte big-endian sequence
// number, an 8-byte big-endian send time, then padding.
const (
	PayloadDHT11   Payload = iota // temp + hum, whole numbers (the DHT11's resolution)
	PayloadHTU21D                 // temp + hum, two decimals, plus battery and RSSI
	PayloadDS18B20                // temp only
	PayloadBattery                // battery voltage and percentage
	PayloadRaw                    // binary header + padding to Size
)

// RawHeaderSize is the smallest raw payload: sequence number and send time.
const RawHeaderSize = 16

// AppendTelemetry appends one telemetry message of kind p to b. size, when
// larger than the natural size, pads the message (a "pad" string field for
// JSON, zero bytes for raw). JSON is hand-rolled because it runs thousands of
// times a second and a device id is validated by certs (letters, digits, '-',
// '_': nothing to escape).
func (s *Sensor) AppendTelemetry(b []byte, p Payload, device string, seq uint64, ts time.Time, size int) []byte {
	start := len(b)
	if p == PayloadRaw {
		b = binary.BigEndian.AppendUint64(b, seq)
		b = binary.BigEndian.AppendUint64(b, uint64(ts.UnixNano()))
		for len(b)-start < size {
			b = append(b, 0)
		}
		return b
	}
	b = append(b, `{"device":"`...)
	b = append(b, device...)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts.UnixNano(), 10)
	switch p {
	case PayloadDHT11:
		b = append(b, `,"temp":`...)
		b = strconv.AppendFloat(b, math.Round(s.Temp), 'f', 0, 64)
		b = append(b, `,"hum":`...)
		b = strconv.AppendFloat(b, math.Round(s.Hum), 'f', 0, 64)
	case PayloadDS18B20:
		b = append(b, `,"temp":`...)
		b = strconv.AppendFloat(b, s.Temp, 'f', 2, 64)
	case PayloadBattery:
		b = append(b, `,"volt":`...)
		b = strconv.AppendFloat(b, 3.3+0.9*s.Battery/100, 'f', 3, 64) // Li-ion 3.3 … 4.2 V
	}
	if p == PayloadHTU21D {
		b = append(b, `,"temp":`...)
		b = strconv.AppendFloat(b, s.Temp, 'f', 2, 64)
		b = append(b, `,"hum":`...)
		b = strconv.AppendFloat(b, s.Hum, 'f', 2, 64)
	}
	b = append(b, `,"bat":`...)
	b = strconv.AppendFloat(b, s.Battery, 'f', 1, 64)
	b = append(b, `,"rssi":`...)
	b = strconv.AppendInt(b, int64(s.RSSI), 10)
	if pad := size - (len(b) - start) - len(`,"pad":""}`); pad > 0 {
		b = append(b, `,"pad":"`...)
		for range pad {
			b = append(b, 'x')
		}
		b = append(b, '"')
	}
	return append(b, '}')
}

// ParseTelemetry extracts the sequence number and send time of a telemetry
// message of any payload: binary when it does not start with '{'. It scans for
// the two fields instead of decoding the whole object because the observer
// runs it for every message of the fleet, on one goroutine.
func ParseTelemetry(b []byte) (seq uint64, ts int64, err error) {
	if len(b) == 0 || b[0] != '{' {
		if len(b) < RawHeaderSize {
			return 0, 0, fmt.Errorf("raw telemetry: %d bytes, want at least %d", len(b), RawHeaderSize)
		}
		return binary.BigEndian.Uint64(b), int64(binary.BigEndian.Uint64(b[8:])), nil
	}
	seqV, ok := jsonNumber(b, `"seq":`)
	if !ok {
		return 0, 0, errors.New(`telemetry: no "seq"`)
	}
	tsV, ok := jsonNumber(b, `"ts":`)
	if !ok {
		return 0, 0, errors.New(`telemetry: no "ts"`)
	}
	seq, err = strconv.ParseUint(string(seqV), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("telemetry: seq: %w", err)
	}
	ts, err = strconv.ParseInt(string(tsV), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("telemetry: ts: %w", err)
	}
	return seq, ts, nil
}

// jsonNumber returns the digits following key in b.
func jsonNumber(b []byte, key string) ([]byte, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return nil, false
	}
	i += len(key)
	for i < len(b) && b[i] == ' ' {
		i++
	}
	j := i
	for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '-') {
		j++
	}
	return b[i:j], j > i
}

// Telemetry is the decoded form of a telemetry message (what the observer reads).
type Telemetry struct {
	Device string  `json:"device"`
	Seq    uint64  `json:"seq"`
	TS     int64   `json:"ts"`
	Temp   float64 `json:"temp"`
	Hum    float64 `json:"hum"`
	Bat    float64 `json:"bat"`
	RSSI   int     `json:"rssi"`
}
