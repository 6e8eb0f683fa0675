# probe: for each path on stdin (one per line) print what the host holds:
#   F <sha256> <mode> <user:group> <path>   a regular file
#   M <path>                                missing (or not a regular file)
# then the installed daemons' versions: V mosquitto <version|none>, V nginx ...
set -u
while IFS= read -r p; do
	[ -n "$p" ] || continue
	if [ -f "$p" ] && [ ! -L "$p" ]; then
		h=$(sha256sum <"$p") || exit 1
		printf 'F %s %s %s\n' "${h%% *}" "$(stat -c '%a %U:%G' "$p")" "$p"
	else
		printf 'M %s\n' "$p"
	fi
done
v=$(mosquitto -h 2>/dev/null | sed -n 's/^mosquitto version \([^ ]*\).*/\1/p' | head -n 1)
printf 'V mosquitto %s\n' "${v:-none}"
v=$(nginx -v 2>&1 | sed -n 's|.*nginx/\([^ ]*\).*|\1|p' | head -n 1)
printf 'V nginx %s\n' "${v:-none}"
