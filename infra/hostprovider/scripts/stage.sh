# stage DST MODE OWNER SHA256: writes stdin to DIR/.mqttstack-new.BASE next to
# DST (same file system, so the later rename is atomic) with its mode and
# owner, checks the content hash and fsyncs it. DST itself is not touched.
set -eu
dst=$1 mode=$2 owner=$3 want=$4
dir=${dst%/*} base=${dst##*/}
[ -d "$dir" ] || install -d -m 0755 "$dir"
new="$dir/.mqttstack-new.$base"
# leftovers of an interrupted apply must not be restored later
rm -f "$new" "$dir/.mqttstack-old.$base" "$dir/.mqttstack-absent.$base"
(umask 077 && cat >"$new")
got=$(sha256sum <"$new")
got=${got%% *}
if [ "$got" != "$want" ]; then
	rm -f "$new"
	echo "staging $dst: content arrived with sha256 $got, expected $want" >&2
	exit 1
fi
chown "$owner" "$new" && chmod "$mode" "$new" || { rm -f "$new"; exit 1; }
sync "$new"
