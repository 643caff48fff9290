#!/bin/sh
# mailwarden exec action: post the event to a chat webhook (Slack, Mattermost, Rocket.Chat and
# others take {"text": "..."}) with curl(1).
#
#   if failed port 25 protocol smtp
#      then exec "/usr/share/doc/mailwarden/examples/notify-chat-webhook.sh"
#           with rate limit 10 per 1 hour
#      else if succeeded then exec "/usr/share/doc/mailwarden/examples/notify-chat-webhook.sh"
#
# The webhook URL is a secret (whoever has it can post): it is read from
# /etc/mailwarden/webhook.url (or the file named by WEBHOOK_URL_FILE), readable by root only,
# and handed to curl in a config file, never on its command line.
set -eu

url_file=${WEBHOOK_URL_FILE:-/etc/mailwarden/webhook.url}
[ -r "$url_file" ] || { echo "cannot read $url_file (the webhook URL)" >&2; exit 2; }

service=${MAILWARDEN_SERVICE:-${MONIT_SERVICE:-unknown}}
event=${MAILWARDEN_EVENT:-${MONIT_EVENT:-event}}
description=${MAILWARDEN_DESCRIPTION:-${MONIT_DESCRIPTION:-}}
host=${MAILWARDEN_HOST:-${MONIT_HOST:-}}
date=${MAILWARDEN_DATE:-${MONIT_DATE:-}}

case $event in
  failed) icon=':red_circle:' ;;
  *) icon=':large_green_circle:' ;;
esac

# JSON string escaping: backslash and double quote escaped, tabs made spaces, line breaks
# written as \n, other control characters dropped.
json_escape() {
  printf '%s' "$1" | tr '\t' ' ' | tr -d '\000-\010\013-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' |
    awk 'NR > 1 { printf "\\n" } { printf "%s", $0 }'
}

text="$icon *$service* $event on $host at $date: $description"
body=$(printf '{"text": "%s"}' "$(json_escape "$text")")

curl_config=$(mktemp)
trap 'rm -f "$curl_config"' EXIT
chmod 600 "$curl_config"
printf 'url = "%s"\n' "$(sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' "$url_file" | head -n 1)" > "$curl_config"

curl --silent --show-error --fail --max-time 20 --config "$curl_config" \
  --header 'Content-Type: application/json' \
  --data-binary "$body"
