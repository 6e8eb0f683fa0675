# finish: drops the kept copies, markers and staged files of the paths on stdin.
set -u
while IFS= read -r dst; do
	[ -n "$dst" ] || continue
	dir=${dst%/*} base=${dst##*/}
	rm -f "$dir/.mqttstack-old.$base" "$dir/.mqttstack-absent.$base" "$dir/.mqttstack-new.$base"
done
