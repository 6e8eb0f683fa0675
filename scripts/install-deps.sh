#!/usr/bin/env bash
# Installs what the local stack and the tests need from Debian's packages:
# mosquitto (the broker), nginx (TLS + WebSockets), mosquitto-clients (used by
# a few tests to cross-check with the reference client). Idempotent: does
# nothing when everything is present.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
# the provider's tests log in over SSH (also as a non-root user with sudo)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -x /usr/bin/sudo ] || need+=(sudo)
for extra in "$@"; do
	command -v "$extra" >/dev/null 2>&1 || need+=("$extra")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "mqttstack needs: ${need[*]}. Install them with:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
	exit 1
fi
echo "installing from Debian's packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the packages' own services (nginx on :80, mosquitto on
# :1883) from starting: mqttstack starts its own daemons with its own config.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	created_policy=1
fi
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
[ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
exit 0
