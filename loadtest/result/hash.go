package result

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// ScenarioHash identifies a scenario for Meta.ScenarioHash: "sha256:" and
// the hex digest of its canonical form (scenarios' Format output, after
// overrides such as --devices), so that shards of one run agree and Merge
// refuses results of another scenario or another fleet size.
func ScenarioHash(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// DeviceListHash identifies an explicit device id list for
// Devices.ListHash: the hex SHA-256 of the ids joined by newlines.
func DeviceListHash(ids []string) string {
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return hex.EncodeToString(sum[:])
}
