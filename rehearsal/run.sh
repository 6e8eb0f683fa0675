#!/usr/bin/env bash
# VPS rehearsal: the exact provisioning a VPS receives from `pulumi up`
# (provider ssh: the remote command and the script on its stdin, rendered by
# broker.Provisioning, delivered over SSH as root like the Broker's
# remote.Command), on a fresh Debian bookworm root file system booted (sshd)
# inside a network namespace of our own; then the security suite from the
# host and the smoke load against it.
#
#   rehearsal/run.sh            prepare (cached) + provision + security + smoke
#   rehearsal/run.sh prepare    only build the cached bookworm root file system
#
# What stands in for the VPS:
#   - .build/rehearsal/bookworm-rootfs-<hash>.tar: debootstrap minbase plus
#     netbase and the stack's packages from the apt mirror this machine uses
#     (cached; installed here with the host's network, because the namespace
#     has no route out: the provisioning script finds them installed and
#     skips apt, as on a VPS where they are already present);
#   - a fresh copy of it per run (.build/rehearsal/vps), chrooted;
#   - network namespace mqttrh with a veth pair: 10.77.0.1/29 (the admin
#     network) and 10.77.0.3/29 (any other source) on the host side,
#     10.77.0.2/29 inside. All test traffic goes to 10.77.0.2 (or to
#     127.0.0.1 inside the namespace);
#   - no systemd in a chroot: rehearsal/systemctl stands in for systemctl and
#     starts each unit with its own ExecStartPre/ExecStart.
# The run provisions twice: first boot, then again after the security
# suite's preparation pass changed the PKI (as `pulumi up` after a PKI
# change would), so re-provisioning a running host is rehearsed too.
# Everything (processes in the namespace, the namespace, the veth pair, the
# mounts, which live in private mount namespaces) is removed on exit, also
# on failure or Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
work=$top/.build/rehearsal
# What a Debian 12 cloud image has that minbase lacks (netbase: nft resolves
# protocol names through /etc/protocols; sshd: provisioning arrives over
# SSH), plus the stack's packages.
packages=(netbase ca-certificates iproute2 procps openssh-server mosquitto nginx certbot nftables)
# The cache is keyed on the package list, so changing it rebuilds.
cache=$work/bookworm-rootfs-$(printf '%s\n' "${packages[@]}" | sha256sum | cut -c1-12).tar
vps=$work/vps
ns=mqttrh
veth_host=mqttrh0
veth_ns=mqttrh1
host_ip=10.77.0.1  # the admin network (mqttstack:adminCidr 10.77.0.1/32)
ns_ip=10.77.0.2    # the VPS
other_ip=10.77.0.3 # a host-side source outside the admin network
server_name=mqtt.rehearsal.test
mqttstack=$top/bin/mqttstack

log() { printf 'rehearsal: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[[ $(id -u) == 0 ]] || die "needs root (debootstrap, chroot, network namespaces)"

# mirror: the first deb.debian.org-style URI this machine's apt uses
mirror() {
	local m
	m=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
	[[ -n $m ]] || m=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	[[ -n $m ]] || m=http://deb.debian.org/debian
	printf '%s\n' "$m"
}

prepare() {
	[[ -s $cache ]] && { log "root file system cached: $cache"; return; }
	command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap; }
	local tmp m
	tmp=$work/rootfs.tmp
	m=$(mirror)
	rm -rf "$tmp"
	mkdir -p "$tmp"
	log "debootstrap bookworm from $m (minbase; a few minutes)"
	debootstrap --variant=minbase bookworm "$tmp" "$m" >"$work/debootstrap.log" 2>&1 ||
		die "debootstrap failed, see $work/debootstrap.log"
	# Package scripts must not start daemons: in a chroot they would bind
	# the host's ports. policy-rc.d is what Debian's invoke-rc.d honours.
	printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
	chmod 0755 "$tmp/usr/sbin/policy-rc.d"
	cp /etc/resolv.conf "$tmp/etc/resolv.conf"
	log "installing ${packages[*]} into the root file system"
	unshare --mount --propagation private bash -c '
		set -e
		mount -t proc proc "$1/proc"
		chroot "$1" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		root=$1; shift
		chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
		chroot "$root" apt-get clean
	' _ "$tmp" "${packages[@]}" >>"$work/debootstrap.log" 2>&1 || die "package install failed, see $work/debootstrap.log"
	tar -C "$tmp" -cf "$cache.tmp" . && mv "$cache.tmp" "$cache"
	rm -rf "$tmp"
	log "cached $cache"
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if ip netns list 2>/dev/null | grep -qw "$ns"; then
		local pids
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		[[ -n $pids ]] && kill $pids 2>/dev/null || true
		sleep 1
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		[[ -n $pids ]] && kill -9 $pids 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || true
	fi
	ip link del "$veth_host" 2>/dev/null || true
	log "cleaned up (namespace $ns, veth $veth_host)"
	exit "$rc"
}

mkdir -p "$work"
prepare
[[ ${1:-} == prepare ]] && exit 0

# A previous run killed hard may have left the namespace behind.
if ip netns list | grep -qw "$ns" || ip link show "$veth_host" >/dev/null 2>&1; then
	die "namespace $ns or link $veth_host exists: remove them (ip netns del $ns; ip link del $veth_host) and retry"
fi
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building mqttstack and the provisioning renderer"
(cd "$top" && go build -o "$mqttstack" ./cmd/mqttstack && go build -o "$work/render" ./rehearsal/render)

pki=$work/pki
if [[ ! -s $pki/ca.crt ]]; then
	"$mqttstack" certs init --dir "$pki" --name "$server_name" >/dev/null
fi

log "fresh VPS root file system"
rm -rf "$vps"
mkdir -p "$vps"
tar -C "$vps" -xf "$cache"
install -m 0755 "$here/systemctl" "$vps/usr/local/sbin/systemctl"
# What the cloud does at first boot: fresh host keys, the operator's public
# key (mqttstack:sshPublicKey) for root. The private key is what
# mqttstack:ssh.privateKey holds; the host key is pinned (ssh.hostKey).
key=$work/operator_ed25519
[[ -s $key ]] || ssh-keygen -q -t ed25519 -N '' -C mqttstack-rehearsal -f "$key"
rm -f "$vps"/etc/ssh/ssh_host_*
chroot "$vps" ssh-keygen -q -A
install -d -m 0700 "$vps/root/.ssh"
install -m 0600 "$key.pub" "$vps/root/.ssh/authorized_keys"
printf '%s %s\n' "$ns_ip" "$(cut -d' ' -f1,2 "$vps/etc/ssh/ssh_host_ed25519_key.pub")" >"$work/known_hosts"
ssh_vps() {
	ssh -F /dev/null -i "$key" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
		-o UserKnownHostsFile="$work/known_hosts" -o ConnectTimeout=5 "$@"
}

log "network namespace $ns: $host_ip <-> $ns_ip"
ip netns add "$ns"
ip link add "$veth_host" type veth peer name "$veth_ns"
ip link set "$veth_ns" netns "$ns"
ip addr add "$host_ip/29" dev "$veth_host"
ip addr add "$other_ip/29" dev "$veth_host"
ip link set "$veth_host" up
ip -n "$ns" addr add "$ns_ip/29" dev "$veth_ns"
ip -n "$ns" link set "$veth_ns" up
ip -n "$ns" link set lo up

log "booting the VPS: sshd in the namespace, chrooted"
# /proc and /dev are mounted in a private mount namespace: they vanish with
# the last process in it (sshd and what provisioning starts through it,
# killed by cleanup). /run and /tmp are the VPS's own directories.
ip netns exec "$ns" unshare --mount --propagation private bash -c '
	set -e
	mount -t proc proc "$1/proc"
	mount --bind /dev "$1/dev"
	mkdir -p "$1/run/sshd"
	chroot "$1" /usr/sbin/sshd -E /var/log/sshd.log
' _ "$vps"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/$ns_ip/22") 2>/dev/null && break; sleep 0.2; done

# provision NAME: render the provisioning from the PKI as it is now (what
# `pulumi up` would send) and deliver it as the Broker's remote.Command
# does: over SSH as root, the remote command as the command line, the
# script on its stdin.
provision() {
	log "provisioning over SSH ($1)"
	"$work/render" -pki "$pki" -host "$ns_ip" -server-name "$server_name" -admin-cidr "$host_ip/32" \
		-script "$work/provision.sh" -command "$work/remote-command.sh" -outputs "$work/stack-output.json"
	ssh_vps -b "$host_ip" "root@$ns_ip" "$(cat "$work/remote-command.sh")" <"$work/provision.sh" 2>&1 | tee "$work/provision-$1.log"
	[[ ${PIPESTATUS[0]} == 0 ]] || die "provisioning failed, see $work/provision-$1.log"
	wait_ports
}

wait_ports() {
	local port
	for port in 8883 443 80; do
		for _ in $(seq 50); do
			(exec 3<>"/dev/tcp/$ns_ip/$port") 2>/dev/null && break
			sleep 0.2
		done
	done
}

# Host-side socket audit (NET-01/02/03, which the security suite cannot see
# for a remote target): on a public address only sshd (22) and the stack's
# 80, 443 and 8883 may listen; every other socket (the broker's WebSocket
# and ops listeners) must be bound to loopback; and 80, 443, 8883 must be up.
audit_sockets() {
	local got bad=0 a
	got=$(ip netns exec "$ns" ss -ltnH | awk '{print $4}' | sort -u)
	log "listening sockets in the VPS: $(echo $got)"
	for a in $got; do
		case $a in
		0.0.0.0:22 | "[::]:22" | 0.0.0.0:80 | 0.0.0.0:443 | 0.0.0.0:8883) ;;
		127.0.0.1:*) ;;
		*) log "FAIL: $a listens beyond loopback"; bad=1 ;;
		esac
	done
	for a in 0.0.0.0:80 0.0.0.0:443 0.0.0.0:8883; do
		grep -qxF "$a" <<<"$got" || { log "FAIL: nothing listens on $a"; bad=1; }
	done
	return $bad
}

# client CMD...: run a client on the host, where the server name resolves to
# the namespace's address through a private /etc/hosts (a mount namespace
# of its own: the machine's /etc/hosts is not touched).
printf '%s\n%s %s\n' "$(cat /etc/hosts)" "$ns_ip" "$server_name" >"$work/hosts"
client() {
	unshare --mount --propagation private bash -c 'mount --bind "$1" /etc/hosts && shift && exec "$@"' _ "$work/hosts" "$@"
}

provision first-boot
audit_sockets || die "unexpected listening sockets after provisioning"

# The host firewall is now up: SSH only from the admin network. From
# another source the connection must be dropped (a timeout, not a refusal).
if out=$(ssh_vps -b "$other_ip" "root@$ns_ip" true 2>&1); then
	die "SSH from $other_ip (outside mqttstack:adminCidr) was accepted"
elif [[ $out != *"timed out"* ]]; then
	die "SSH from $other_ip failed, but not by the firewall dropping it: $out"
fi
log "SSH from $other_ip (not admin) dropped by the host firewall; from $host_ip (admin) it carries provisioning"
"$mqttstack" target from-stack --stack-output "$work/stack-output.json" -o "$work/target.json"

# The security suite issues its CI sub-CA and negative identities into the
# PKI the first time it runs; the broker trusts them only once the new
# ca.crl (which carries the sub-CA's CRL) is deployed. That is a PKI change
# followed by `pulumi up`: re-render and provision the running VPS again,
# which also rehearses re-provisioning (rewrite what changed, restart).
log "security suite, preparation pass (issues the CI sub-CA; results ignored)"
client "$mqttstack" security --target "$work/target.json" >"$work/security-prepare.log" 2>&1 || true
provision after-pki-change
audit_sockets || die "unexpected listening sockets after re-provisioning"

# Nothing changed since: provisioning again must leave the running daemons
# alone (same main pids), as a `pulumi up` with an unchanged hash would not
# even run it, and an idempotent re-run must not disrupt devices.
daemon_pids() { cat "$vps/run/mosquitto.rehearsal.pid" "$vps/run/nginx.pid" 2>/dev/null | tr '\n' ' '; }
before=$(daemon_pids)
provision unchanged
after=$(daemon_pids)
[[ -n $before && $before == "$after" ]] || die "an unchanged re-provisioning restarted a daemon (pids '$before' -> '$after')"
log "unchanged re-provisioning kept mosquitto and nginx running (pids $after)"

status=0
log "security suite from the host against $ns_ip (server name via private /etc/hosts)"
client "$mqttstack" security --target "$work/target.json" --allow-load --junit "$work/security.xml" || status=$?
log "security exit code $status"

# The smoke load, from the host as from an operator's machine: the target is
# the namespace's address (a host of our own), so --allow-load.
smoke=0
log "smoke load from the host against $ns_ip"
client "$mqttstack" run smoke --target "$work/target.json" --allow-load --out "$work/results/smoke" --quiet || smoke=$?
log "smoke exit code $smoke"
if ((status != 0 || smoke != 0)); then
	exit $((status > smoke ? status : smoke))
fi
log "rehearsal passed"
