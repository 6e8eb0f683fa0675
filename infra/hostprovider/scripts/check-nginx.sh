# check-nginx CONF: writes the candidate nginx.conf (stdin) next to CONF, so
# relative includes (mime.types) resolve as they will, and runs nginx -t on it.
set -u
conf=$1
cand="${conf%/*}/.mqttstack-candidate.${conf##*/}"
trap 'rm -f "$cand"' EXIT
(umask 077 && cat >"$cand") || exit 1
out=$(nginx -t -q -c "$cand" 2>&1) && exit 0
printf '%s\n' "${out//$cand/$conf}" >&2
exit 1
