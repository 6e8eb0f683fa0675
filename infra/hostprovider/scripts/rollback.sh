# rollback: for each path on stdin, puts back what commit kept (or removes a
# file that did not exist before) and drops the staged copy.
set -u
rc=0
while IFS= read -r dst; do
	[ -n "$dst" ] || continue
	dir=${dst%/*} base=${dst##*/}
	old="$dir/.mqttstack-old.$base" absent="$dir/.mqttstack-absent.$base"
	if [ -e "$old" ] || [ -L "$old" ]; then
		mv -f "$old" "$dst" || rc=1
	elif [ -e "$absent" ]; then
		rm -f "$dst" "$absent" || rc=1
	fi
	rm -f "$dir/.mqttstack-new.$base"
	sync "$dir" 2>/dev/null || true
done
exit $rc
