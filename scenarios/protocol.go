package scenarios

import "fmt"

// WithProtocol returns a copy of s whose fleet speaks MQTT version p
// ("3.1.1" or "5"), as `mqttstack run launch --protocol 5` asks: a built-in
// runs on either. Switching to 5 with clean_session false gives the fleet
// DefaultSessionExpiry unless the scenario set one; switching to 3.1.1
// drops the MQTT 5 session fields.
func (s *Scenario) WithProtocol(p string) (*Scenario, error) {
	c := s.Clone()
	c.Fleet.Protocol = Protocol(p)
	if c.Fleet.Protocol == Protocol5 && !c.Fleet.CleanSession && c.Fleet.SessionExpiry == 0 {
		c.Fleet.SessionExpiry = DefaultSessionExpiry
	}
	if c.Fleet.Protocol == Protocol311 {
		c.Fleet.SessionExpiry, c.Fleet.TopicAliases = 0, false
	}
	if c.lines != nil {
		// The fleet no longer is what the file says.
		for _, k := range []string{"fleet.protocol", "fleet.session_expiry", "fleet.topic_aliases"} {
			if _, ok := c.lines[k]; ok {
				c.lines[k] = pos{}
			}
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("--protocol %s: %w", p, err)
	}
	return c, nil
}
