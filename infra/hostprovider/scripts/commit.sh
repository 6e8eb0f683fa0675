# commit: for each path on stdin, keeps the current file as
# DIR/.mqttstack-old.BASE (a hard link: the same bytes, mode and owner), or
# marks it absent, then renames the staged file over it (atomic) and fsyncs
# the directory. rollback undoes exactly this.
set -eu
while IFS= read -r dst; do
	[ -n "$dst" ] || continue
	dir=${dst%/*} base=${dst##*/}
	old="$dir/.mqttstack-old.$base" absent="$dir/.mqttstack-absent.$base"
	rm -f "$old" "$absent"
	if [ -e "$dst" ] || [ -L "$dst" ]; then ln -f "$dst" "$old"; else : >"$absent"; fi
	mv -f "$dir/.mqttstack-new.$base" "$dst"
	sync "$dir" 2>/dev/null || true
done
