package hostprovider

import (
	"slices"
	"strings"
	"testing"
)

func TestReplacePaths(t *testing.T) {
	staged := map[string]string{"/etc/mosquitto/acl": "/etc/mosquitto/.mqttstack-new.acl"}
	tests := []struct{ in, want string }{
		{"acl_file /etc/mosquitto/acl\n", "acl_file /etc/mosquitto/.mqttstack-new.acl\n"},
		{"acl_file /etc/mosquitto/acl2\n", "acl_file /etc/mosquitto/acl2\n"},          // whole tokens only
		{"ssl_crl /etc/mosquitto/acl;", "ssl_crl /etc/mosquitto/.mqttstack-new.acl;"}, // nginx ends with ;
		{`x "/etc/mosquitto/acl"`, `x "/etc/mosquitto/.mqttstack-new.acl"`},
		{"# /etc/mosquitto/acl.d/x\n", "# /etc/mosquitto/acl.d/x\n"},
	}
	for _, tc := range tests {
		if got := string(ReplacePaths([]byte(tc.in), staged)); got != tc.want {
			t.Errorf("ReplacePaths(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMosquittoCandidate(t *testing.T) {
	conf := `per_listener_settings true
pid_file /run/mosquitto/mosquitto.pid
persistence true
persistence_location /var/lib/mosquitto/
log_dest file /var/log/mosquitto/mosquitto.log
log_type error
listener 8883 0.0.0.0
certfile /etc/mosquitto/certs/server.crt
acl_file /etc/mosquitto/acl
listener 9001 127.0.0.1
protocol websockets
`
	got := string(MosquittoCandidate([]byte(conf), map[string]string{"/etc/mosquitto/certs/server.crt": "/etc/mosquitto/certs/.mqttstack-new.server.crt"}))
	for _, want := range []string{
		"log_dest stderr\n", "persistence false\n", "listener @MQTTSTACK_PORT@ 127.0.0.1\n", "certfile /etc/mosquitto/certs/.mqttstack-new.server.crt\n",
		"acl_file /etc/mosquitto/acl\n", "per_listener_settings true\n", "protocol websockets\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("candidate lacks %q:\n%s", want, got)
		}
	}
	var active []string
	for _, l := range strings.Split(got, "\n") {
		if !strings.HasPrefix(l, "#") {
			active = append(active, l)
		}
	}
	live := "\n" + strings.Join(active, "\n")
	for _, gone := range []string{"\npid_file", "\npersistence_location", "log_dest file", "8883", "0.0.0.0", "9001"} {
		if strings.Contains(live, gone) {
			t.Errorf("candidate still has %q:\n%s", gone, got)
		}
	}
	if n := strings.Count(got, "@MQTTSTACK_PORT@"); n != 2 {
		t.Errorf("%d listeners moved, want 2", n)
	}
}

func TestActions(t *testing.T) {
	conf := FileSpec{Path: "/etc/mosquitto/mosquitto.conf", Content: []byte("acl_file /etc/mosquitto/acl\npassword_file /etc/mosquitto/passwd.d/observer\n"), Daemons: []string{kindMosquitto}}
	acl := FileSpec{Path: "/etc/mosquitto/acl", Daemons: []string{kindMosquitto}}
	pw := FileSpec{Path: "/etc/mosquitto/passwd.d/observer", Daemons: []string{kindMosquitto}}
	crt := FileSpec{Path: "/etc/mosquitto/certs/server.crt", Daemons: []string{kindMosquitto}}
	ca := FileSpec{Path: "/etc/mosquitto/ca.crt", Daemons: []string{kindMosquitto, kindNginx}}
	ngx := FileSpec{Path: "/etc/nginx/nginx.conf", Daemons: []string{kindNginx}}
	dropin := FileSpec{Path: "/etc/systemd/system/mosquitto.service.d/10-mqttstack.conf", Daemons: []string{kindSystemd}}
	nft := FileSpec{Path: "/etc/nftables.conf", Daemons: []string{kindNftables}}
	page := FileSpec{Path: "/var/www/mqttstack/index.html"}
	plan := Plan{MosquittoConfig: conf.Path, Files: []FileSpec{acl, crt, ca, conf, pw, ngx, dropin, nft, page}}
	tests := []struct {
		name    string
		changed []FileSpec
		want    []string
	}{
		{"nothing", nil, []string{"enable:mosquitto", "start:mosquitto", "enable:nginx", "start:nginx"}},
		{"ACL and password file: SIGHUP", []FileSpec{acl, pw}, []string{"enable:mosquitto", "reload-or-restart:mosquitto", "enable:nginx", "start:nginx"}},
		{"server certificate: restart", []FileSpec{acl, crt}, []string{"enable:mosquitto", "restart:mosquitto", "enable:nginx", "start:nginx"}},
		{"mosquitto.conf: restart", []FileSpec{conf}, []string{"enable:mosquitto", "restart:mosquitto", "enable:nginx", "start:nginx"}},
		{"CA: both", []FileSpec{ca}, []string{"enable:mosquitto", "restart:mosquitto", "enable:nginx", "reload-or-restart:nginx"}},
		{"nginx only", []FileSpec{ngx}, []string{"enable:mosquitto", "start:mosquitto", "enable:nginx", "reload-or-restart:nginx"}},
		{"drop-in", []FileSpec{dropin}, []string{"daemon-reload", "enable:mosquitto", "restart:mosquitto", "enable:nginx", "start:nginx"}},
		{"firewall", []FileSpec{nft}, []string{"nft:/etc/nftables.conf", "enable:nftables", "enable:mosquitto", "start:mosquitto", "enable:nginx", "start:nginx"}},
		{"web page: no reload", []FileSpec{page}, []string{"enable:mosquitto", "start:mosquitto", "enable:nginx", "start:nginx"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := actions(plan, tc.changed)
			want := append([]string{"conf:" + conf.Path}, tc.want...)
			if !slices.Equal(got, want) {
				t.Errorf("actions = %v\nwant      %v", got, want)
			}
		})
	}
}
