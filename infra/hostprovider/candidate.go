package hostprovider

import (
	"bytes"
	"strings"
)

// MosquittoCandidate turns a mosquitto.conf into the configuration of a
// throwaway check broker: every path of a changed file points at its staged
// copy, every listener moves to a free loopback port (@MQTTSTACK_PORT@,
// filled in on the host), and nothing the running service owns is touched:
// no pid file, no persistence, logs to stderr. Everything else (TLS files,
// CRL, ACL, password files, user switch, per-listener settings) stays as the
// service would load it.
func MosquittoCandidate(conf []byte, staged map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString("# mqttstack check: throwaway copy of the candidate configuration\n")
	b.WriteString("log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
	for _, line := range strings.Split(string(ReplacePaths(conf, staged)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			b.WriteString(line + "\n")
			continue
		}
		switch f[0] {
		case "listener":
			// listener PORT [ADDRESS]; a unix socket listener (port 0 PATH)
			// would clash with the service's socket: skip it.
			if len(f) >= 3 && f[1] == "0" {
				b.WriteString("# (check) skipped: " + line + "\n")
				continue
			}
			b.WriteString("listener @MQTTSTACK_PORT@ 127.0.0.1\n")
		case "port":
			b.WriteString("port @MQTTSTACK_PORT@\n")
		case "bind_address", "bind_interface":
			b.WriteString("bind_address 127.0.0.1\n")
		case "pid_file", "log_dest", "log_type", "persistence_location", "persistence_file", "autosave_interval", "autosave_on_changes":
			b.WriteString("# (check) skipped: " + line + "\n")
		case "persistence":
			b.WriteString("persistence false\n")
		case "connection", "address", "addresses":
			// a bridge would dial out from the check broker
			b.WriteString("# (check) skipped: " + line + "\n")
		default:
			b.WriteString(line + "\n")
		}
	}
	return b.Bytes()
}

// ReplacePaths replaces every whole token of conf (tokens end at white
// space, ';' or a quote) that is a key of staged by its value.
func ReplacePaths(conf []byte, staged map[string]string) []byte {
	if len(staged) == 0 {
		return conf
	}
	delim := func(c byte) bool {
		return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ';' || c == '"' || c == '\''
	}
	var out bytes.Buffer
	for i := 0; i < len(conf); {
		if delim(conf[i]) {
			out.WriteByte(conf[i])
			i++
			continue
		}
		j := i
		for j < len(conf) && !delim(conf[j]) {
			j++
		}
		if r, ok := staged[string(conf[i:j])]; ok {
			out.WriteString(r)
		} else {
			out.Write(conf[i:j])
		}
		i = j
	}
	return out.Bytes()
}
