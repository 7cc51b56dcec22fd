#!/usr/bin/env bash
# Started by up.sh when KAPI_WATCH_PID is set: waits for that process to exit, however it ends
# (a test runner killed with SIGKILL included), then stops what up.sh started (down.sh).
#   watchdog.sh PID      env: KAPI_STATE (required), KAPI_WATCH_PURGE=1 (down.sh --purge)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
: "${KAPI_STATE:?}"
echo "watchdog.sh $$" >> "$KAPI_STATE/pids"
while kill -0 "$1" 2>/dev/null; do sleep 1; done
# exec: down.sh runs under this pid, whose command line no longer names watchdog.sh, so it does
# not signal itself
if [ "${KAPI_WATCH_PURGE:-}" = 1 ]; then exec "$HERE/down.sh" --purge; else exec "$HERE/down.sh"; fi
