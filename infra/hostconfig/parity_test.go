package hostconfig

import (
	"sort"
	"strconv"
	"strings"
	"testing"
)

// normalize replaces every path of p and the bind address by placeholders,
// so that two renderings can be compared directive by directive.
func normalize(content []byte, s Stack) []string {
	p := s.Paths
	repl := []string{
		p.MosquittoConf, "<conf>", p.ACLFile, "<acl>", p.PasswordFile, "<passwd>", p.MosquittoPID, "<mpid>",
		p.MosquittoLog, "<mlog>", p.PersistenceDir, "<data>/", p.CAFile, "<ca>", p.CRLFile, "<crl>",
		// locally nginx reads the broker's server certificate itself
		p.ServerCert, "<cert>", p.ServerKey, "<key>", p.NginxCert, "<cert>", p.NginxKey, "<key>",
		p.NginxPID, "<npid>", p.NginxErrorLog, "<nerr>", p.NginxAccessLog, "<nacc>", p.NginxTempDir, "<ntmp>",
		p.WebRoot, "<www>", p.ACMERoot, "<acme>",
		// only the public listeners follow BindAddress; 127.0.0.1 elsewhere is fixed
		"listen " + s.BindAddress + ":", "listen <bind>:",
		"listener " + strconv.Itoa(s.MQTTSPort) + " " + s.BindAddress, "listener " + strconv.Itoa(s.MQTTSPort) + " <bind>",
		s.ServerName, "<name>",
	}
	// longest first, so a path is never half-replaced by its prefix
	type pair struct{ from, to string }
	var ps []pair
	for i := 0; i < len(repl); i += 2 {
		ps = append(ps, pair{repl[i], repl[i+1]})
	}
	sort.Slice(ps, func(i, j int) bool { return len(ps[i].from) > len(ps[j].from) })
	var out []string
	for _, line := range strings.Split(string(content), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, r := range ps {
			line = strings.ReplaceAll(line, r.from, r.to)
		}
		out = append(out, line)
	}
	return out
}

// TestLocalAndVPSDifferOnlyWhereIntended is the guarantee behind "what CI
// tests is what ships": with paths, addresses and names abstracted, the
// local mosquitto.conf and nginx.conf are the VPS ones except for an
// explicit list of directives (process ownership, sizing, IPv6).
func TestLocalAndVPSDifferOnlyWhereIntended(t *testing.T) {
	vps := VPSStack("mqtt.example.com")
	vps.IPv6 = true
	local := LocalStack("/var/tmp/s", "/var/tmp/p", "root")
	local.MQTTSPort, local.HTTPSPort, local.HTTPPort = vps.MQTTSPort, vps.HTTPSPort, vps.HTTPPort

	allowed := map[string][]string{
		"mosquitto.conf": {"user ", "max_connections "},
		"nginx.conf": {"user ", "daemon ", "worker_processes ", "worker_rlimit_nofile ", "listen [::]:",
			"limit_conn peraddr ", "limit_req zone=wsreq ", "worker_connections "},
	}
	for name, render := range map[string]func(Stack) []byte{"mosquitto.conf": MosquittoConf, "nginx.conf": NginxConf} {
		a, b := normalize(render(vps), vps), normalize(render(local), local)
		diff := symmetricDiff(a, b)
		for _, line := range diff {
			ok := false
			for _, prefix := range allowed[name] {
				if strings.HasPrefix(line[2:], prefix) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s: local and VPS differ in %q (allowed: %v)", name, line, allowed[name])
			}
		}
	}
}

// symmetricDiff lists lines only in a ("- ") or only in b ("+ "), with
// multiplicity.
func symmetricDiff(a, b []string) []string {
	count := map[string]int{}
	for _, l := range a {
		count[l]++
	}
	for _, l := range b {
		count[l]--
	}
	var out []string
	for l, n := range count {
		for ; n > 0; n-- {
			out = append(out, "- "+l)
		}
		for ; n < 0; n++ {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return out
}
