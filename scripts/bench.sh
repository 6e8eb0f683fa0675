#!/usr/bin/env bash
# make bench: the numbers (not pass/fail) of the PKI, the result recorder and
# merge, and the fleet against a real local Mosquitto, at three sizes so the
# cost per device is visible.
#
#  1. certs: issuing 10,000 device identities (BenchmarkIssue10000)
#  2. loadtest/result: recorder events, merge of 8 shards, finish
#  3. fleet: BenchmarkConnect5000 - 5,000 mTLS devices connect as fast as
#     the broker admits them, idle, then publish twice at QoS 1 to one
#     observer: connects/s, broker and tool CPU, RSS per device
#  4. scale: the same benchmark at 1,000 and 19,000 devices
#     (MQTTSTACK_BENCH_DEVICES), and a table of the three sizes
#  5. loadtest: BenchmarkToolCost - the tool's cost as a run reports it,
#     next to the broker's read through the host in the same run: CPU per
#     QoS 1 publish (100 devices x 1,000 back to back, observers included),
#     what QoS 1 observers leave unverified on that burst, peak RSS per
#     connected device at 5,000 devices, CPU per connect
#
# The fleet benchmarks start their own stack (internal/stacktest: real
# mosquitto + nginx in a temporary directory on free loopback ports, tied to
# the test process, stopped when it ends). Everything is teed into
# results/bench-<ts>/bench.txt. Takes ~5 minutes on 2 cores.
#
# Knobs (environment): OUT (default results), SCALE_SIZES (default
# "1000 19000"; the 5,000 of step 3 joins the table), SKIP_SCALE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:--buildvcs=false}

ts=$(date -u +%Y%m%dT%H%M%SZ)
out=${OUT:-results}/bench-$ts
mkdir -p "$out"
log=$out/bench.txt
sizes=${SCALE_SIZES:-1000 19000}

trap 'echo "bench: interrupted; partial output in $log" >&2; exit 130' INT TERM

section() { printf '\n== %s\n' "$*" | tee -a "$log"; }
# run prints the command, runs it with output teed to the log and to
# $out/<name>.txt, and keeps going when one benchmark fails (its FAIL is in
# the log) so the others still report.
failed=()
run() {
	local name=$1
	shift
	echo "\$ $*" | tee -a "$log"
	if ! "$@" 2>&1 | tee "$out/$name.txt" | tee -a "$log"; then
		failed+=("$name")
	fi
}

{
	echo "mqttstack benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
	echo "machine: $(nproc) cores ($(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)), $(free -m | awk '/^Mem:/{print $2}') MiB RAM"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews CPU shares, not CPU per operation)"
	echo "$(go version); $( (/usr/sbin/mosquitto -h 2>/dev/null || true) | head -1); fd limit soft $(ulimit -Sn) hard $(ulimit -Hn)"
} | tee "$log"

section "certs: issue 10,000 device identities"
run certs go test -run '^$' -bench Issue10000 -benchtime 1x ./certs/

section "loadtest/result: recorder, merge, finish"
run result go test -run '^$' -bench . ./loadtest/result/

section "devices: broker CPU per handshake by board profile (main listener, then the RSA legacy listener)"
run devices go test -run '^$' -bench 'CompatCPU|LegacyCPU' -benchtime 1x -timeout 20m ./devices/

section "fleet: 5,000 mTLS devices against the local Mosquitto"
run fleet-5000 go test -run '^$' -bench Connect5000 -benchtime 1x -timeout 20m ./fleet/

if [ "${SKIP_SCALE:-0}" != 1 ]; then
	for n in $sizes; do
		section "scale: $n devices"
		run "fleet-$n" env MQTTSTACK_BENCH_DEVICES="$n" go test -run '^$' -bench Connect5000 -benchtime 1x -timeout 20m ./fleet/
	done
fi

section "loadtest: tool vs broker, through Run (BenchmarkToolCost)"
run toolcost go test -run '^$' -bench ToolCost -benchtime 1x -timeout 20m ./loadtest/
{
	awk '/^BenchmarkToolCost\// {
		for (i = 3; i < NF; i += 2) v[$(i + 1)] = $i
	} END {
		printf "  CPU per QoS 1 publish: tool %s µs, broker %s µs (100 x 1,000 back to back, QoS 0 observers)\n", v["tool-µs-cpu/publish"], v["broker-µs-cpu/publish"]
		printf "  QoS 1 observers on the same burst: %s unverified (observer overload), %s lost\n", v["unverified"], v["lost"]
		printf "  peak RSS per connected device: tool %s KiB (peak %s MiB); broker %s KiB per session\n", v["tool-KiB-rss/device"], v["tool-MiB-rss-peak"], v["broker-KiB-rss/session"]
		printf "  CPU per connect: tool %s µs, broker %s µs\n", v["tool-µs-cpu/connect"], v["broker-µs-cpu/connect"]
	}' "$out/toolcost.txt"
} | tee -a "$log"

# The table: one row per size, from each run's benchmark line
# ("BenchmarkConnect5000-2  1  <ns> ns/op  <value> <unit> ...").
section "cost per device by fleet size (BenchmarkConnect5000, MQTTSTACK_BENCH_DEVICES)"
{
	printf '%8s %11s %9s %9s %14s %14s %12s %14s %14s %8s\n' devices connects/s broker-% tool-% \
		'broker-µs/conn' 'tool-µs/conn' 'KiB-rss/dev' 'broker-µs/pub' 'tool-µs/pub' failed
	for n in $(printf '%s\n' 5000 $sizes | sort -n | uniq); do
		f=$out/fleet-$n.txt
		[ -f "$f" ] || continue
		awk -v n="$n" '/^BenchmarkConnect5000/ {
			for (i = 3; i < NF; i += 2) v[$(i + 1)] = $i
			printf "%8d %11s %9s %9s %14s %14s %12s %14s %14s %8s\n", n, v["connects/s"], v["broker-cpu-%"], v["tool-cpu-%"],
				v["broker-µs-cpu/connect"], v["tool-µs-cpu/connect"], v["KiB-rss/device"],
				v["broker-µs-cpu/publish"], v["tool-µs-cpu/publish"], v["failed-connects"]
			found = 1
		} END { if (!found) printf "%8d  (no benchmark line: see %s)\n", n, FILENAME }' "$f"
	done
} | tee -a "$log"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
echo "bench: $log"
if [ ${#failed[@]} -gt 0 ]; then
	echo "bench: failed: ${failed[*]}" >&2
	exit 1
fi
