# dirs: creates each missing directory from stdin lines "<mode> <user:group> <path>".
# An existing directory is left as it is.
set -eu
while read -r mode owner p; do
	[ -n "$p" ] || continue
	[ -d "$p" ] && continue
	install -d -m "$mode" -o "${owner%%:*}" -g "${owner#*:}" "$p"
done
