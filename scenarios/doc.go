// Package scenarios reads load-test scenarios: a YAML schema decoded
// strictly (unknown fields, duplicate keys and unit-less numbers are
// errors), validated collect-all (every problem at once, each as
// "file:line: path: message (fix)"), and a set of built-in scenarios
// embedded in the binary.
//
// A scenario, annotated:
//
//	name: launch                     # default: the file name
//	description: 5,000 boards come online after a firmware push
//	fleet:
//	  count: 5000                    # required, 1..1,000,000
//	  prefix: dev-                   # device ids dev-00001 ... (Fleet.DeviceID)
//	  transport: mqtts               # or wss (through nginx)
//	  keepalive: 30s
//	  clean_session: true
//	  qos: 1
//	  sources: 4                     # or source_addrs: [127.0.0.2, ...]
//	connect:
//	  rate: 800/s                    # also 10/m, 1/h
//	  max_in_flight: 256
//	  timeout: 10s
//	  backoff: {min: 500ms, max: 30s, jitter: 20%}
//	stages:                          # the first is always a ramp
//	  - {kind: ramp}
//	  - {kind: steady, duration: 2m, every: 5s, payload: dht11}
//	  - {kind: burst, count: 10, within: 1s}
//	  - {kind: reconnect-storm, share: 20%, within: 10s}
//	  - {kind: soak, duration: 30m, rate: 0.2/s, payload: raw, size: 1KiB}
//	commands: {rate: 50/s, payload: relay}
//	thresholds:                      # metric: condition, in file order
//	  connect_success: ">= 99.9%"
//	  connack_p99: "< 500ms"
//	  loss: "== 0"
//	  publish_rate: [">= 900/s", "< 1100/s"]
//
// The ramp is explicit rather than implied so that a file reads as what
// happens, in order, and every stage's index in problems and reports
// matches the file.
//
// Units: durations need a unit ("500ms", "2m"; "0s" alone may be written
// "0"); rates are "N/s", "N/m" or "N/h"; shares and jitter are "20%" or a
// fraction 0..1; sizes are bytes or "KiB"/"MiB" ("KB"/"MB" are powers of
// ten). Booleans are true/false only: "yes" means a string in YAML 1.2.
// Aliases (*name) are followed; merge keys (<<) are refused.
package scenarios
