#!/usr/bin/env bash
# make demo: the main job on the local stack, as a newcomer sees it.
#  1. a private PKI and real Mosquitto + nginx on 127.0.0.1 (mqttstack local up)
#  2. the smoke scenario: 1,000 virtual mTLS devices connect, publish and take
#     commands; console report + result.json + report.html
#  3. the tier-1 security checks, proven by what is delivered
# The stack stays up afterwards (mqttstack local status / local down).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./bin/mqttstack
out=${OUT:-results}/demo-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"

# Bold headings only on a terminal, and never with NO_COLOR set
# (https://no-color.org): a log of make demo holds no escape codes.
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
	bold=$'\033[1m' plain=$'\033[0m'
else
	bold='' plain=''
fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

step "local stack: private CA, Mosquitto (mTLS :8883) and nginx (TLS :8443) on 127.0.0.1"
$bin local up
$bin local status

step "load: the smoke scenario (1,000 mTLS devices)"
rc=0
$bin run smoke --out "$out/smoke" || rc=$?

step "security: the tier-1 checks (JUnit: $out/security.xml)"
src=0
$bin security --junit "$out/security.xml" --json "$out/security.json" || src=$?

step "devices: every board profile against the broker (docs/DEVICES.md)"; $bin devices compat --json "$out/devices.json" --junit "$out/devices.xml" --html "$out/devices.html"

step "done"
echo "load report:     $out/smoke/report.html (JSON: $out/smoke/result.json)"
echo "security report: $out/security.xml"
echo "stop the stack:  $bin local down"
if [ "$rc" -ne 0 ] || [ "$src" -ne 0 ]; then
	echo "demo: load exit $rc, security exit $src" >&2
	exit 1
fi
