# check-mosquitto: Mosquitto 2.0.11 has no config test flag, so the candidate
# configuration (stdin; its listeners moved to @MQTTSTACK_PORT@ on 127.0.0.1,
# no pid file, no persistence, log to stderr) is started as a throwaway
# broker. It loads the config, the TLS files, the CRL, the ACL and password
# files exactly as the service would (same binary, same user switch). Sound
# when it logs "running" (every listener open, security loaded); a failure
# is its exit with its own error lines. A port taken between the choice and
# the bind is retried with other ports (at most 3 attempts). Ports come from
# 20000-31999, below Linux's ephemeral range (32768-60999), where the
# kernel hands out the ports of outgoing connections and of ":0" listeners.
set -u
dir=$(mktemp -d /tmp/mqttstack-check.XXXXXX) || exit 1
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
cat >"$dir/in.conf"
in_use() { grep -qi ":$(printf '%04X' "$1") " /proc/net/tcp /proc/net/tcp6 2>/dev/null; }
clean() { sed -e 's/^[0-9][0-9T:.-]*: //' -e '/ starting$/d' -e '/^Config loaded from/d' -e '/^Opening .* listen socket/d' "$dir/log"; }

attempt() { # 0 running, 1 refused, 2 port clash
	local port=$((20000 + RANDOM % 12000)) line
	while IFS= read -r line; do
		case $line in
		*@MQTTSTACK_PORT@*)
			while in_use "$port"; do port=$((port + 1)); done
			line=${line//@MQTTSTACK_PORT@/$port}
			port=$((port + 1))
			;;
		esac
		printf '%s\n' "$line"
	done <"$dir/in.conf" >"$dir/check.conf"
	: >"$dir/log"
	timeout 30 mosquitto -c "$dir/check.conf" >"$dir/log" 2>&1 &
	pid=$!
	for _ in $(seq 1 200); do
		grep -q ' running$' "$dir/log" && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			pid=
			# plain listeners say "Address already in use"; a websockets
			# listener (libwebsockets) only "Unable to create websockets listener"
			grep -qE 'Address already in use|Unable to create websockets listener' "$dir/log" && return 2
			return 1
		fi
		sleep 0.1
	done
	echo "mosquitto did not report running within 20 s:" >&2
	return 1
}

for _ in 1 2 3; do
	attempt
	case $? in
	0) exit 0 ;;
	1) clean >&2; exit 1 ;;
	esac
done
clean >&2
exit 1
