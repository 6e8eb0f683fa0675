# packages PKG...: installs with apt-get the packages that are missing and
# prints their names. A fresh cloud server first finishes cloud-init, which
# may hold the apt lock.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if command -v cloud-init >/dev/null 2>&1; then cloud-init status --wait >/dev/null 2>&1 || true; fi
need=()
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if ((${#need[@]})); then
	apt-get update -q >&2
	apt-get install -y -q --no-install-recommends "${need[@]}" >&2
	echo "${need[*]}"
fi
