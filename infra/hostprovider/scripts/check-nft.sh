# check-nft STAGED: nft -c parses and checks the staged ruleset without applying it.
set -u
out=$(nft -c -f "$1" 2>&1) && exit 0
printf '%s\n' "$out" >&2
exit 1
