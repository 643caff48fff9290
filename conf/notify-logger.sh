#!/bin/sh
# mailwarden exec action: write the event to syslog with logger(1).
#
#   if failed port 993 protocol imaps
#      then exec "/usr/share/doc/mailwarden/examples/notify-logger.sh"
#      else if succeeded then exec "/usr/share/doc/mailwarden/examples/notify-logger.sh"
#
# mailwarden sets MAILWARDEN_SERVICE, MAILWARDEN_EVENT (failed or succeeded),
# MAILWARDEN_DESCRIPTION, MAILWARDEN_DATE, MAILWARDEN_HOST and MAILWARDEN_ACTION (and the
# MONIT_* names, so this also runs under monit). Optional: NOTIFY_FACILITY (default daemon).
set -u

service=${MAILWARDEN_SERVICE:-${MONIT_SERVICE:-unknown}}
event=${MAILWARDEN_EVENT:-${MONIT_EVENT:-event}}
description=${MAILWARDEN_DESCRIPTION:-${MONIT_DESCRIPTION:-}}
facility=${NOTIFY_FACILITY:-daemon}

case $event in
  failed) priority=err ;;
  *) priority=notice ;;
esac

# "--" ends logger's options: a description that starts with "-" stays text.
exec logger -t mailwarden -p "$facility.$priority" -- "'$service' $event: $description"
