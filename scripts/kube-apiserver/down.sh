#!/usr/bin/env bash
# Stop what up.sh started, by the PIDs it recorded (never by name).
#   down.sh [--purge]      env: KAPI_CACHE / KAPI_STATE as for up.sh
# Usually run through scripts/kube-apiserver.sh down.
# --purge also removes $KAPI_STATE (certs, etcd data, audit log, webhook bodies).
set -uo pipefail
CACHE=${KAPI_CACHE:-${KUBEVIGIL_CACHE_DIR:-$HOME/.cache/kubevigil}/kube-apiserver}
STATE=${KAPI_STATE:-$CACHE/run}
PIDS=$STATE/pids
[ -f "$PIDS" ] || { echo "[down] no $PIDS: nothing to stop" >&2; exit 0; }
# running and not a zombie (an orphan whose new parent has not reaped it yet counts as gone)
alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
# reverse order: kube-apiserver first (flushes its audit buffers), then etcd, recorder
# (the watchdog's line is wherever it wrote it: stopping it earlier or later changes nothing)
tac "$PIDS" | while read -r name pid; do
  [ -n "${pid:-}" ] || continue
  # only signal the process if it is still the one we started
  if ! tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" | grep -q -- "$name"; then
    echo "[down] $name pid $pid already gone" >&2; continue
  fi
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 50); do alive "$pid" || break; sleep 0.2; done
  if alive "$pid"; then kill -KILL "$pid" 2>/dev/null; echo "[down] $name pid $pid killed (-9)" >&2
  else echo "[down] $name pid $pid stopped" >&2; fi
done
rm -f "$PIDS"
if [ "${1:-}" = --purge ]; then rm -rf "$STATE"; echo "[down] removed $STATE" >&2; fi
