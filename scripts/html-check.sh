#!/usr/bin/env bash
# make html-check: the HTML report of a real run, rendered by a real browser.
#
#  1. installs Debian's chromium if missing (scripts/install-deps.sh)
#  2. takes the result given as $1 (a result.json, or several shards'), or
#     makes one: a throw-away local stack on free loopback ports and the
#     smoke scenario at 200 devices (~30 s)
#  3. `mqttstack report html` renders it; headless Chromium, with every host
#     unresolvable (a report that fetched anything would show it broken),
#     screenshots it to report.png
#  4. TestHTMLScreenshot checks a rendered report automatically (ink,
#     colours, the plot palette) on the synthetic result
#
# Prints where report.html and report.png are: look at the PNG.
# Knobs (environment): OUT (default results), WIDTH (1400), HEIGHT (3000).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:--buildvcs=false}

bash scripts/install-deps.sh chromium
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome)
go build -o bin/mqttstack ./cmd/mqttstack
bin=$PWD/bin/mqttstack
ts=$(date -u +%Y%m%dT%H%M%SZ)
out=${OUT:-results}/html-check-$ts
mkdir -p "$out"
out=$(cd "$out" && pwd)
width=${WIDTH:-1400}
height=${HEIGHT:-3000}
tmp=$(mktemp -d /tmp/mqttstack-html.XXXXXX)
cleanup() {
	local rc=$?
	if [ -f "$tmp/state/target.json" ]; then
		"$bin" local down --state-dir "$tmp/state" >/dev/null 2>&1 || echo "html-check: local down failed ($tmp/state)" >&2
	fi
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ $# -gt 0 ]; then
	results=("$@")
else
	# a block of 40 free loopback ports below the ephemeral range
	for _ in $(seq 200); do
		base=$((20000 + RANDOM % 12000))
		[ "$(ss -Htan "sport >= :$base and sport < :$((base + 40))" | wc -l)" -eq 0 ] && break
	done
	echo "== no result given: a local stack on 127.0.0.1:$base and the smoke scenario at 200 devices"
	"$bin" local up --state-dir "$tmp/state" --pki-dir "$tmp/pki" --mqtts-port "$base" --https-port $((base + 1)) \
		--http-port $((base + 2)) --ws-port $((base + 10)) --devices 200 >"$out/local-up.log" 2>&1 ||
		{ cat "$out/local-up.log" >&2; exit 3; }
	rc=0
	"$bin" run smoke --devices 200 --target "$tmp/state/target.json" --out "$out/run" --quiet >"$out/run.txt" 2>&1 || rc=$?
	tail -n 12 "$out/run.txt"
	[ -f "$out/run/result.json" ] || { echo "html-check: the run wrote no result (exit $rc)" >&2; exit 3; }
	results=("$out/run/result.json")
fi

echo "== report html ${results[*]}"
hrc=0
"$bin" report html -o "$out/report.html" "${results[@]}" || hrc=$?
# exit 1 only says the result's thresholds failed; the page is still written
[ "$hrc" -le 1 ] && [ -s "$out/report.html" ] || { echo "html-check: report html exit $hrc" >&2; exit 1; }

echo "== headless Chromium: $browser"
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
	--disable-component-update --disable-sync --no-first-run '--host-resolver-rules=MAP * ~NOTFOUND' \
	--user-data-dir="$tmp/chromium" --screenshot="$out/report.png" --window-size="$width,$height" \
	"file://$out/report.html" >"$out/chromium.log" 2>&1 || { cat "$out/chromium.log" >&2; exit 1; }
# PNG signature and IHDR width/height (bytes 16-23, big endian)
sig=$(head -c 8 "$out/report.png" | od -An -tx1 | tr -d ' \n')
dims=$(od -An -tu1 -j16 -N8 "$out/report.png" | awk '{printf "%dx%d", (($1*256+$2)*256+$3)*256+$4, (($5*256+$6)*256+$7)*256+$8}')
if [ "$sig" != 89504e470d0a1a0a ] || [ "$dims" != "${width}x${height}" ]; then
	echo "html-check: $out/report.png is not a ${width}x${height} PNG (signature $sig, $dims)" >&2
	exit 1
fi
echo "screenshot: $dims, $(stat -c %s "$out/report.png") bytes"

echo "== TestHTMLScreenshot (synthetic result; asserts ink, colours, plot palette)"
mkdir -p "$out/synthetic"
trc=0
MQTTSTACK_CHROMIUM=1 MQTTSTACK_SCREENSHOT_DIR="$out/synthetic" \
	go test -count=1 -run TestHTMLScreenshot -v ./loadtest/result >"$out/screenshot-test.txt" 2>&1 || trc=$?
grep -E -- '^(--- |ok|FAIL)|screenshot ' "$out/screenshot-test.txt" || true
if [ "$trc" -ne 0 ]; then
	cat "$out/screenshot-test.txt" >&2
	echo "html-check: TestHTMLScreenshot failed" >&2
	exit 1
fi

echo
echo "report: $out/report.html"
echo "png:    $out/report.png   <- look at it"
