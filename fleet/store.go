package fleet

import (
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// nopStore is a paho Store that keeps nothing. A device makes a new paho
// client for every connection attempt, so paho's per-client memory store
// (a map and a mutex per device) would only ever hold in-flight messages
// that the next client could not resend anyway.
type nopStore struct{}

var _ mqtt.Store = nopStore{}

func (nopStore) Open()                             {}
func (nopStore) Put(string, packets.ControlPacket) {}
func (nopStore) Get(string) packets.ControlPacket  { return nil }
func (nopStore) All() []string                     { return nil }
func (nopStore) Del(string)                        {}
func (nopStore) Close()                            {}
func (nopStore) Reset()                            {}
