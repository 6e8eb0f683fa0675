# actions VERB:ARG...: runs the service actions in order and stops at the
# first failure with the daemon's own message (systemctl's output and the
# unit's last journal lines, and for Mosquitto, which may log only to its
# file, the end of that file). conf:PATH names mosquitto.conf.
set -u
conf=/etc/mosquitto/mosquitto.conf
journal() {
	command -v journalctl >/dev/null 2>&1 || return 0
	journalctl -u "$1" -n 15 --no-pager -o cat 2>/dev/null | sed 's/^/  /' >&2 || true
}
daemon_log() {
	journal "$1"
	[ "$1" = mosquitto ] || return 0
	f=$(sed -n 's/^log_dest file  *\([^ ]*\).*$/\1/p' "$conf" 2>/dev/null | head -n 1)
	[ -n "$f" ] && [ -f "$f" ] && tail -n 8 "$f" | sed 's/^/  /' >&2
	return 0
}
for a in "$@"; do
	verb=${a%%:*} arg=${a#*:}
	case $verb in
	conf)
		conf=$arg
		;;
	daemon-reload)
		out=$(systemctl daemon-reload 2>&1) || { echo "systemctl daemon-reload: $out" >&2; exit 1; }
		;;
	nft)
		out=$(nft -f "$arg" 2>&1) || { echo "nft -f $arg: $out" >&2; exit 1; }
		;;
	enable)
		out=$(systemctl enable "$arg" 2>&1) || { echo "systemctl enable $arg: $out" >&2; exit 1; }
		;;
	start | restart | reload-or-restart)
		if ! out=$(systemctl "$verb" "$arg" 2>&1); then
			echo "systemctl $verb $arg failed: $out" >&2
			daemon_log "$arg"
			exit 1
		fi
		if ! systemctl is-active --quiet "$arg"; then
			echo "$arg is not running after systemctl $verb" >&2
			daemon_log "$arg"
			exit 1
		fi
		;;
	*)
		echo "unknown action $a" >&2
		exit 2
		;;
	esac
done
