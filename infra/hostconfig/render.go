package hostconfig

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Render validates s and returns every configuration file of the stack, in
// a stable order. Secrets are not part of it: the password file comes from
// PasswordFile and the TLS material from PKIFiles (VPS) or the PKI directory
// itself (local).
func Render(s Stack) ([]File, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	p := s.Paths
	files := []File{
		{Path: p.MosquittoConf, Mode: 0o644, Content: MosquittoConf(s)},
		{Path: p.ACLFile, Mode: 0o644, Content: ACL(s)},
		{Path: p.NginxConf, Mode: 0o644, Content: NginxConf(s)},
		{Path: path.Join(p.WebRoot, "index.html"), Mode: 0o644, Content: StatusPage(s)},
	}
	if !s.Local {
		// the broker reads the ACL after dropping root to "mosquitto"
		files[1].Mode, files[1].Owner = 0o640, "root:mosquitto"
		files = append(files, SystemdDropins(s)...)
		files = append(files, File{Path: p.NftablesConf, Mode: 0o755, Content: Nftables(s)})
		if s.PublicDomain {
			files = append(files, File{Path: p.DeployHook, Mode: 0o755, Content: DeployHook(s)})
		}
	}
	return files, nil
}

// PKIFiles places the TLS material for a VPS: the device CA and its CRL
// where both daemons read them, the private server certificate for 8883, and
// the same certificate for nginx until certbot replaces it (PublicDomain).
// Keys are 0600 and owned by the daemon that reads them after dropping root.
func PKIFiles(s Stack, caCert, caCRL, serverCert, serverKey []byte) []File {
	p := s.Paths
	return []File{
		{Path: p.CAFile, Mode: 0o644, Content: caCert},
		{Path: p.CRLFile, Mode: 0o644, Content: caCRL},
		{Path: p.ServerCert, Mode: 0o644, Content: serverCert},
		{Path: p.ServerKey, Mode: 0o600, Content: serverKey, Owner: "mosquitto:mosquitto"},
		{Path: p.NginxCert, Mode: 0o644, Content: serverCert},
		{Path: p.NginxKey, Mode: 0o600, Content: serverKey},
	}
}

// SystemdDropins raise the descriptor limit (every connection is one) and
// restart the daemons if they die.
func SystemdDropins(s Stack) []File {
	var out []File
	for _, unit := range []string{"mosquitto", "nginx"} {
		c := fmt.Sprintf(`# Rendered by mqttstack (infra/hostconfig).
[Unit]
StartLimitIntervalSec=60
StartLimitBurst=10

[Service]
LimitNOFILE=%d
Restart=on-failure
RestartSec=2s
`, s.Limits.NoFile)
		out = append(out, File{
			Path:    path.Join(s.Paths.SystemdDropins, unit+".service.d", "10-mqttstack.conf"),
			Mode:    0o644,
			Content: []byte(c),
		})
	}
	return out
}

// Nftables renders the VPS firewall: drop by default; SSH from AdminCIDR
// (from anywhere when it is empty, so provisioning over SSH cannot lock
// itself out); 80, 443 and MQTTSPort from anywhere. 1883, the WebSocket and
// ops ports are never opened (NET-01/02/03).
func Nftables(s Stack) []byte {
	var b strings.Builder
	b.WriteString("#!/usr/sbin/nft -f\n# Rendered by mqttstack (infra/hostconfig).\nflush ruleset\n\n")
	b.WriteString("table inet mqttstack {\n")
	b.WriteString("  chain input {\n")
	b.WriteString("    type filter hook input priority 0; policy drop;\n")
	b.WriteString("    iif lo accept\n")
	b.WriteString("    ct state established,related accept\n")
	b.WriteString("    ct state invalid drop\n")
	b.WriteString("    ip protocol icmp accept\n")
	b.WriteString("    meta l4proto ipv6-icmp accept\n")
	if s.AdminCIDR != "" {
		fam := "ip"
		if strings.Contains(s.AdminCIDR, ":") {
			fam = "ip6"
		}
		fmt.Fprintf(&b, "    %s saddr %s tcp dport 22 accept\n", fam, s.AdminCIDR)
	} else {
		b.WriteString("    tcp dport 22 accept\n")
	}
	ports := []int{s.HTTPPort, s.HTTPSPort, s.MQTTSPort}
	if s.LegacyTLS != nil {
		ports = append(ports, s.LegacyTLS.Port)
	}
	sort.Ints(ports)
	var list []string
	for _, p := range ports {
		list = append(list, strconv.Itoa(p))
	}
	fmt.Fprintf(&b, "    tcp dport { %s } accept\n", strings.Join(list, ", "))
	b.WriteString("  }\n")
	b.WriteString("  chain forward {\n    type filter hook forward priority 0; policy drop;\n  }\n")
	b.WriteString("  chain output {\n    type filter hook output priority 0; policy accept;\n  }\n")
	b.WriteString("}\n")
	return []byte(b.String())
}

// DeployHook is certbot's deploy hook (PublicDomain): it copies the renewed
// certificate to where nginx reads it and reloads nginx. The broker keeps
// the private server certificate (devices pin the private CA).
func DeployHook(s Stack) []byte {
	p := s.Paths
	return []byte(fmt.Sprintf(`#!/bin/bash
# Rendered by mqttstack (infra/hostconfig): certbot deploy hook.
set -euo pipefail
live=/etc/letsencrypt/live/%[1]s
install -m 0644 -o root -g root "$live/fullchain.pem" %[2]s
install -m 0600 -o root -g root "$live/privkey.pem" %[3]s
nginx -t -q && systemctl reload nginx
`, s.ServerName, p.NginxCert, p.NginxKey))
}

// ProvisionScript renders an idempotent bash script that turns a fresh
// Debian 12 host into the stack: installs mosquitto, nginx, certbot and
// nftables from Debian's packages, writes files (only those whose bytes
// differ), validates nginx's config, enables the services and restarts only
// what changed. Pass Render's files plus PKIFiles and a PasswordFile entry;
// the per-identity password files of the WSS listeners are derived from
// that entry (PasswordFiles) unless files already hold them.
// Both CloudInit and the Pulumi SSH path run this one script, so a VPS
// rehearsal exercises exactly what cloud-init does.
//
// The script carries the files it writes, keys included: store it like the
// keys (mode 0700, root).
func ProvisionScript(s Stack, files []File) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	if s.Local {
		return nil, fmt.Errorf("stack: ProvisionScript is for a VPS (Stack.Local is set)")
	}
	if err := checkFiles(files); err != nil {
		return nil, err
	}
	files, err := withIdentityPasswordFiles(s, files)
	if err != nil {
		return nil, err
	}
	p := s.Paths
	var b bytes.Buffer
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("#!/bin/bash")
	w("# Rendered by mqttstack (infra/hostconfig): provisions %s. Idempotent.", s.ServerName)
	w("set -euo pipefail")
	w("umask 077")
	w("export DEBIAN_FRONTEND=noninteractive")
	w("")
	w("need=()")
	w("for pkg in mosquitto nginx certbot nftables; do")
	w("  dpkg-query -W -f='${Status}' \"$pkg\" 2>/dev/null | grep -q 'install ok installed' || need+=(\"$pkg\")")
	w("done")
	w("if ((${#need[@]})); then")
	w("  apt-get update")
	w("  apt-get install -y --no-install-recommends \"${need[@]}\"")
	w("fi")
	w("")
	w("changed_mosquitto=0 changed_nginx=0 changed_systemd=0 changed_nft=0 changed_web=0")
	w("# put_file PATH MODE OWNER: base64 on stdin; replaces PATH only if its bytes,")
	w("# mode or owner differ. Returns 0 if it replaced the file, 10 if not; any other")
	w("# failure exits (set -e does not apply inside an if condition).")
	w("put_file() {")
	w("  local dst=$1 mode=$2 owner=$3 tmp")
	w("  install -d -m 0755 \"$(dirname \"$dst\")\" || exit 1")
	w("  tmp=$(mktemp \"$(dirname \"$dst\")/.mqttstack.XXXXXX\") || exit 1")
	w("  base64 -d >\"$tmp\" || { rm -f \"$tmp\"; echo \"mqttstack: cannot decode $dst\" >&2; exit 1; }")
	w("  chmod \"$mode\" \"$tmp\" && chown \"$owner\" \"$tmp\" || { rm -f \"$tmp\"; exit 1; }")
	w("  if [[ -f $dst ]] && cmp -s \"$tmp\" \"$dst\" && [[ $(stat -c '%%a %%U:%%G' \"$dst\") == \"${mode#0} $owner\" ]]; then")
	w("    rm -f \"$tmp\"; return 10")
	w("  fi")
	w("  mv -f \"$tmp\" \"$dst\" || exit 1")
	w("}")
	w("")
	for _, f := range files {
		owner := f.Owner
		if owner == "" {
			owner = "root:root"
		}
		w("if put_file %s %04o %s <<'MQTTSTACK_EOF'; then %s=1; fi", f.Path, f.Mode.Perm(), owner, changeFlag(s, f.Path))
		enc := base64.StdEncoding.EncodeToString(f.Content)
		for len(enc) > 76 {
			w("%s", enc[:76])
			enc = enc[76:]
		}
		w("%s", enc)
		w("MQTTSTACK_EOF")
	}
	w("")
	w("install -d -m 0755 %s %s", p.WebRoot, p.ACMERoot)
	w("install -d -m 0750 -o mosquitto -g mosquitto %s %s", strings.TrimSuffix(p.PersistenceDir, "/"), path.Dir(p.MosquittoLog))
	w("")
	w("if ((changed_nft)); then systemctl enable nftables; nft -f %s; fi", p.NftablesConf)
	w("if ((changed_systemd)); then systemctl daemon-reload; fi")
	w("nginx -t -q -c %s", p.NginxConf)
	w("systemctl enable mosquitto nginx")
	w("if ((changed_mosquitto || changed_systemd)); then systemctl restart mosquitto; else systemctl start mosquitto; fi")
	w("if ((changed_systemd)); then systemctl restart nginx; elif ((changed_nginx)); then systemctl reload-or-restart nginx; else systemctl start nginx; fi")
	if s.PublicDomain {
		w("")
		w("# ACME: webroot (config stays ours), first issuance runs the deploy hook explicitly")
		w("if [[ ! -e /etc/letsencrypt/live/%s/fullchain.pem ]]; then", s.ServerName)
		w("  certbot certonly --webroot -w %s -d %s --email %s --agree-tos --non-interactive --deploy-hook %s",
			p.ACMERoot, s.ServerName, shellQuote(s.ACMEEmail), p.DeployHook)
		w("fi")
	}
	w("echo \"mqttstack: %s provisioned\"", s.ServerName)
	return b.Bytes(), nil
}

// withIdentityPasswordFiles appends the per-identity password files of the
// WSS listeners (PasswordFiles) derived from the shared password file in
// files, unless the caller passed them already. Without them mosquitto
// would not start on the host (a missing password_file is fatal).
func withIdentityPasswordFiles(s Stack, files []File) ([]File, error) {
	if len(s.WSSIdentities) == 0 {
		return files, nil
	}
	have := map[string]bool{}
	var shared *File
	for i, f := range files {
		have[f.Path] = true
		if f.Path == s.Paths.PasswordFile {
			shared = &files[i]
		}
	}
	missing := false
	for _, id := range s.WSSIdentities {
		missing = missing || !have[s.IdentityPasswordFile(id)]
	}
	if !missing {
		return files, nil
	}
	if shared == nil {
		return nil, fmt.Errorf("files: no password file %s to derive the WSS identities' password files from (append PasswordFileEntry, or PasswordFiles)", s.Paths.PasswordFile)
	}
	derived, err := PasswordFiles(s, shared.Content)
	if err != nil {
		return nil, err
	}
	out := append([]File(nil), files...)
	for _, f := range derived {
		if !have[f.Path] {
			out = append(out, f)
		}
	}
	return out, nil
}

// changeFlag names the service a file belongs to, for restart decisions.
func changeFlag(s Stack, file string) string {
	p := s.Paths
	switch {
	case strings.HasPrefix(file, p.SystemdDropins+"/"):
		return "changed_systemd"
	case file == p.NftablesConf:
		return "changed_nft"
	case file == p.NginxConf || file == p.NginxCert || file == p.NginxKey:
		return "changed_nginx"
	case file == p.CAFile || file == p.CRLFile:
		// both daemons read the CA and the CRL
		return "changed_nginx=1 changed_mosquitto"
	case strings.HasPrefix(file, p.WebRoot+"/"):
		return "changed_web"
	default:
		return "changed_mosquitto"
	}
}

func checkFiles(files []File) error {
	seen := map[string]bool{}
	for i, f := range files {
		if !path.IsAbs(f.Path) || strings.ContainsAny(f.Path, " \t\n'\"$`\\;&|<>*?") {
			return fmt.Errorf("files[%d]: path %q must be absolute and plain (no spaces or shell characters)", i, f.Path)
		}
		if seen[f.Path] {
			return fmt.Errorf("files[%d]: %s appears twice", i, f.Path)
		}
		seen[f.Path] = true
		if f.Owner != "" && !ownerRE.MatchString(f.Owner) {
			return fmt.Errorf("files[%d] (%s): owner %q must be user:group", i, f.Path, f.Owner)
		}
	}
	return nil
}

func shellQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// CloudInit renders a #cloud-config that installs the Debian packages, writes
// the provisioning script (which carries files) and runs it once. Keeping
// the logic in the script means cloud-init and SSH provisioning cannot
// drift apart.
func CloudInit(s Stack, files []File) ([]byte, error) {
	script, err := ProvisionScript(s, files)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("#cloud-config")
	w("# Rendered by mqttstack (infra/hostconfig) for %s.", s.ServerName)
	w("package_update: true")
	w("packages:")
	for _, pkg := range []string{"mosquitto", "nginx", "certbot", "nftables"} {
		w("  - %s", pkg)
	}
	w("write_files:")
	w("  - path: %s", s.Paths.ProvisionScript)
	w("    permissions: '0700'")
	w("    owner: root:root")
	w("    encoding: b64")
	w("    content: %s", base64.StdEncoding.EncodeToString(script))
	w("runcmd:")
	w("  - [bash, %s]", s.Paths.ProvisionScript)
	return b.Bytes(), nil
}

var ownerRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]*:[a-z_][a-z0-9_-]*$`)
