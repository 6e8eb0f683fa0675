# acme check DOMAIN: prints "present" if certbot's live certificate for
# DOMAIN exists, else "absent".
# acme issue DOMAIN EMAIL WEBROOT [HOOK]: unless it exists, obtains it with
# certbot's webroot plugin (nginx serves WEBROOT for the http-01 challenge)
# and prints "issued"; a failure is certbot's own message on stderr.
# acme install DOMAIN EMAIL WEBROOT HOOK: as issue, but an existing
# certificate is handed to HOOK (as certbot would: RENEWED_LINEAGE,
# RENEWED_DOMAINS) and "installed" printed.
set -u
verb=$1 domain=$2 hook=${5:-}
live=/etc/letsencrypt/live/$domain/fullchain.pem
if [ -e "$live" ]; then
	if [ "$verb" = install ] && [ -n "$hook" ]; then
		if ! out=$(RENEWED_LINEAGE=${live%/*} RENEWED_DOMAINS=$domain timeout 120 "$hook" 2>&1); then
			printf 'deploy hook %s: %s\n' "$hook" "$out" >&2
			exit 1
		fi
		echo installed
		exit 0
	fi
	echo present
	exit 0
fi
if [ "$verb" = check ]; then
	echo absent
	exit 0
fi
email=$3 webroot=$4
if ! command -v certbot >/dev/null 2>&1; then
	echo "certbot is not installed (add it to packages)" >&2
	exit 1
fi
args=(certonly --webroot -w "$webroot" -d "$domain" --email "$email" --agree-tos --non-interactive)
[ -n "$hook" ] && args+=(--deploy-hook "$hook")
if ! out=$(timeout 280 certbot "${args[@]}" 2>&1); then
	printf 'certbot: %s\n' "$(printf '%s\n' "$out" | grep -v '^Saving debug log' | tail -n 15)" >&2
	exit 1
fi
if [ ! -e "$live" ]; then
	printf 'certbot reported success but %s is missing: %s\n' "$live" "$(printf '%s\n' "$out" | tail -n 5)" >&2
	exit 1
fi
echo issued
