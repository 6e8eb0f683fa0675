#!/usr/bin/env bash
# make scale: the local stack and one load-generator process hold 19,000
# concurrent mTLS devices.
#
#  1. a throw-away PKI and local stack (real Mosquitto + nginx) on free
#     loopback ports, with the device identities issued up front
#  2. `mqttstack run scripts/scale.yaml` (19,000 devices, 400 connects/s,
#     4 loopback sources, 60 s of QoS 1 telemetry every 30 s) while a sampler
#     reads the broker's and the tool's CPU, RSS and open descriptors from
#     /proc once a second
#  3. the figures: connect rate, broker CPU in the ramp and in the hold,
#     the tool's RSS per device, publish throughput, peak descriptors
#  4. the fleet refuses a size beyond the descriptor limit up front
#     (--devices 25000 with a hard limit of 20,000), with the numbers
#
# Everything is torn down on exit; results/scale-<ts>/ keeps result.json,
# report.html, the console report, the samples and summary.txt.
#
# Knobs (environment): DEVICES (default: the scenario's 19000), OUT
# (default results), KEEP=1 keeps the temporary PKI and state directory.
# The run takes ~3 minutes on 2 cores; identity issuance adds ~1 s per
# 1,000 devices the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:--buildvcs=false}

bash scripts/install-deps.sh jq
go build -o bin/mqttstack ./cmd/mqttstack
bin=$PWD/bin/mqttstack
scenario=$PWD/scripts/scale.yaml
devices=${DEVICES:-19000}
ts=$(date -u +%Y%m%dT%H%M%SZ)
out=${OUT:-results}/scale-$ts
mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d /tmp/mqttstack-scale.XXXXXX)
state=$tmp/state
pki=$tmp/pki
sampler=

cleanup() {
	local rc=$?
	[ -n "$sampler" ] && kill "$sampler" 2>/dev/null && wait "$sampler" 2>/dev/null
	if [ -f "$state/target.json" ]; then
		"$bin" local down --state-dir "$state" >/dev/null 2>&1 || echo "scale: local down failed; state in $state" >&2
	fi
	if [ "${KEEP:-0}" = 1 ]; then
		echo "kept: $tmp" >&2
	else
		rm -rf "$tmp"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A block of 40 loopback ports free right now, below the ephemeral range
# (the fleet's 19,000 outgoing connections use that range): mqtts, https and
# http, then the broker's WebSocket listeners (one per observer/backend
# identity, consecutive).
free_block() {
	local base p busy tries=0
	while :; do
		tries=$((tries + 1))
		[ $tries -gt 200 ] && { echo "scale: no free block of 40 ports in 20000-31999" >&2; return 1; }
		base=$((20000 + RANDOM % 12000))
		busy=$(ss -Htan "sport >= :$base and sport < :$((base + 40))" | wc -l)
		[ "$busy" -eq 0 ] && { echo "$base"; return 0; }
	done
}
base=$(free_block)

echo "== machine: $(nproc) cores, $(free -m | awk '/^Mem:/{print $2}') MiB RAM; load average $(cut -d' ' -f1-3 /proc/loadavg); fd limit soft $(ulimit -Sn) hard $(ulimit -Hn)" | tee "$out/summary.txt"
echo "== local stack on 127.0.0.1:$base (mqtts), $((base + 1)) (https); PKI and state in $tmp; $devices device identities"
t0=$(date +%s.%N)
"$bin" local up --state-dir "$state" --pki-dir "$pki" --mqtts-port "$base" --https-port $((base + 1)) \
	--http-port $((base + 2)) --ws-port $((base + 10)) --devices "$devices" >"$out/local-up.log" 2>&1 ||
	{ cat "$out/local-up.log" >&2; exit 3; }
echo "local up (PKI + $devices identities + daemons): $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}') s"
broker=$(cat "$state/mosquitto.pid")
brokerlimit=$(awk '/^Max open files/{print $4" soft / "$5" hard"}' "/proc/$broker/limits")
echo "broker pid $broker, RLIMIT_NOFILE $brokerlimit" | tee -a "$out/summary.txt"

# sample: unix time, broker ticks, broker RSS kB, broker fds, tool ticks,
# tool RSS kB, tool fds (tool columns are 0 until the run starts)
sample() {
	local pid=$1 f
	if [ -r "/proc/$pid/stat" ]; then
		f=$(sed 's/^.*) //' "/proc/$pid/stat")
		set -- $f
		echo "$(( ${12} + ${13} )) $(awk '/^VmRSS:/{print $2}' "/proc/$pid/status") $(ls "/proc/$pid/fd" 2>/dev/null | wc -l)"
	else
		echo "0 0 0"
	fi
}

echo "== run: $devices devices (scenario $scenario)"
"$bin" run "$scenario" --devices "$devices" --target "$state/target.json" --out "$out" --quiet \
	>"$out/console.txt" 2>"$out/run.stderr" &
tool=$!
(
	while kill -0 "$tool" 2>/dev/null; do
		echo "$(date +%s) $(sample "$broker") $(sample "$tool")"
		sleep 1
	done
) >"$out/samples.txt" &
sampler=$!
rc=0
wait "$tool" || rc=$?
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
sampler=
cat "$out/console.txt"
if [ "$rc" -ne 0 ]; then
	echo "scale: mqttstack run exited $rc" >&2
	tail -n 20 "$out/run.stderr" >&2
fi
[ -f "$out/result.json" ] || exit "$rc"

# The figures, from result.json (phases, cost, delivery) and the samples
# (broker CPU over the ramp's and the hold's wall-clock windows).
hz=$(getconf CLK_TCK)
secs() { jq -r "$1 | sub(\"\\\\.[0-9]+\"; \"\") | fromdateiso8601" "$out/result.json"; }
rs=$(secs '[.phases[] | select(.kind=="ramp")][0].start')
re=$(secs '[.phases[] | select(.kind=="ramp")][0].end')
ss_=$(secs '[.phases[] | select(.kind=="steady")][0].start')
se=$(secs '[.phases[] | select(.kind=="steady")][0].end')
# broker CPU % over [a, b): ticks at the last sample <= b minus at the last <= a
cpu_between() {
	awk -v a="$1" -v b="$2" -v hz="$hz" '
		$1 <= a { ta = $1; ca = $2 } $1 <= b { tb = $1; cb = $2 }
		END { if (tb > ta) printf "%.0f%% of one core (%.1f s CPU over %d s)", 100 * (cb - ca) / hz / (tb - ta), (cb - ca) / hz, tb - ta; else print "n/a" }' "$out/samples.txt"
}
{
	echo "== figures ($devices devices, $(jq -r '.meta.start' "$out/result.json"))"
	jq -r --argjson n "$devices" '
		([.phases[] | select(.kind=="ramp")][0]) as $r |
		([.phases[] | select(.kind=="steady")][0]) as $s |
		"connects: \($r.counts.connects // 0) of \($n) in the ramp, \(.total.counts.connect_failures // 0) failed attempts; peak connected \(.cost.peak_connected)",
		"connect rate (ramp): \(($r.counts.connects // 0) / $r.seconds | floor)/s over \($r.seconds * 10 | round / 10) s (scenario asks 400/s)",
		"connack p50/p99 (ramp): \(([$r.latency[] | select(.metric=="connack")][0]) as $c | "\($c.p50_us / 1000) ms / \($c.p99_us / 1000) ms")",
		"publish throughput (hold): \(($s.counts.published // 0) / $s.seconds | floor)/s (\($s.counts.published // 0) QoS 1 publishes in \($s.seconds * 10 | round / 10) s; \(.total.counts.publish_failures // 0) failed)",
		"puback p99 / e2e p99 (hold): \(([$s.latency[] | select(.metric=="puback")][0].p99_us // 0) / 1000) ms / \(([$s.latency[] | select(.metric=="e2e")][0].p99_us // 0) / 1000) ms",
		"delivery: expected \(.delivery.expected), received \(.delivery.received_unique), lost \(.delivery.lost), duplicates \(.delivery.duplicates)",
		"tool: max RSS \(.cost.max_rss_bytes / 1048576 | floor) MiB = \(.cost.rss_per_device_bytes / 1024 * 10 | round / 10) KiB per connected device; CPU user \(.cost.cpu_user_seconds * 10 | round / 10) s sys \(.cost.cpu_system_seconds * 10 | round / 10) s; \(.cost.cpu_per_connect_ms * 100 | round / 100) ms CPU per connect, \(.cost.cpu_per_publish_us | round) µs per publish (\(.cost.basis))"
	' "$out/result.json"
	echo "broker CPU (ramp): $(cpu_between "$rs" "$re")"
	echo "broker CPU (hold): $(cpu_between "$ss_" "$se")"
	awk '{ if ($3 > brss) brss = $3; if ($4 > bfd) bfd = $4; if ($6 > trss) trss = $6; if ($7 > tfd) tfd = $7 }
		END { printf "peaks (1 s samples): broker RSS %.0f MiB, %d open fds; tool RSS %.0f MiB, %d open fds\n", brss / 1024, bfd, trss / 1024, tfd }' "$out/samples.txt"
	echo "broker RLIMIT_NOFILE: $brokerlimit; tool: raises its soft limit to the hard limit ($(ulimit -Hn))"
	echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$out/summary.txt"

# Beyond the descriptor limit the fleet must refuse before connecting.
over=$(($(ulimit -Hn) + 5000))
echo "== refusal: --devices $over with a hard fd limit of $(ulimit -Hn)" | tee -a "$out/summary.txt"
orc=0
"$bin" run "$scenario" --devices "$over" --target "$state/target.json" --out "$tmp/over" --quiet \
	>"$tmp/over.out" 2>"$tmp/over.err" || orc=$?
{
	echo "exit $orc; stderr:"
	sed 's/^/  /' "$tmp/over.err"
} | tee -a "$out/summary.txt"
if [ "$orc" -eq 0 ] || ! grep -q "open files" "$tmp/over.err"; then
	echo "scale: --devices $over was not refused up front" >&2
	rc=1
fi
echo "summary: $out/summary.txt; report: $out/report.html"
exit "$rc"
