#!/bin/sh
# mailwarden exec action: send the event as an SMS through an HTTP gateway with curl(1).
#
#   if failed port 993 protocol imaps
#      then exec "/usr/share/doc/mailwarden/examples/notify-sms-http.sh"
#           with timeout 30 seconds with rate limit 5 per 1 hour
#
# Settings come from /etc/mailwarden/sms.conf (or the file named by SMS_CONFIG), a shell
# fragment readable by root only, because it holds the gateway's token:
#
#   SMS_GATEWAY_URL=https://sms.example.net/api/send   # takes POST to=...&text=...
#   SMS_TO=+15551234567                                # one number, or several with commas
#   SMS_TOKEN=secret                                   # sent as "Authorization: Bearer ..."
#
# The token goes to curl in a header file, never on its command line (where ps would show it).
# The text is cut to 160 characters; curl fails on an HTTP error, so mailwarden logs it.
set -eu

config=${SMS_CONFIG:-/etc/mailwarden/sms.conf}
if [ -r "$config" ]; then
  # shellcheck source=/dev/null
  . "$config"
fi
: "${SMS_GATEWAY_URL:?set SMS_GATEWAY_URL in $config}"
: "${SMS_TO:?set SMS_TO in $config}"

service=${MAILWARDEN_SERVICE:-${MONIT_SERVICE:-unknown}}
event=${MAILWARDEN_EVENT:-${MONIT_EVENT:-event}}
description=${MAILWARDEN_DESCRIPTION:-${MONIT_DESCRIPTION:-}}
host=${MAILWARDEN_HOST:-${MONIT_HOST:-}}

text=$(printf '%s %s on %s: %s' "$service" "$event" "$host" "$description" | cut -c1-160)

headers=$(mktemp)
trap 'rm -f "$headers"' EXIT
chmod 600 "$headers"
if [ -n "${SMS_TOKEN:-}" ]; then
  printf 'Authorization: Bearer %s\n' "$SMS_TOKEN" > "$headers"
fi

curl --silent --show-error --fail --max-time 20 \
  --header @"$headers" \
  --data-urlencode "to=$SMS_TO" \
  --data-urlencode "text=$text" \
  "$SMS_GATEWAY_URL"
