#!/usr/bin/env bash
# Debian's Chromium, for the console's browser tests (test/console-browser.test.ts drives it with
# playwright-core, which brings no browser of its own). Installing the package starts nothing.
#
#   scripts/chromium.sh install   apt-get install chromium when missing (quiet, idempotent; a no-op when
#                                 the binary exists)
#   scripts/chromium.sh path      print the binary's path; exit 3 when it is missing
#   scripts/chromium.sh status    print the binary and its version; exit 3 when it is missing
#
# KUBEVIGIL_CHROMIUM names another binary (the tests read it too). Progress goes to stderr; only
# `path` prints on stdout.
set -euo pipefail

CHROMIUM_BIN="${KUBEVIGIL_CHROMIUM:-/usr/bin/chromium}"

log() { echo "chromium.sh: $*" >&2; }
die() { log "$*"; exit 1; }

cmd_install() {
  if [ -x "$CHROMIUM_BIN" ]; then
    log "chromium already installed ($CHROMIUM_BIN)"
    return 0
  fi
  [ -z "${KUBEVIGIL_CHROMIUM:-}" ] || die "KUBEVIGIL_CHROMIUM is $KUBEVIGIL_CHROMIUM, which is not an executable"
  [ "$(id -u)" = 0 ] || die "chromium is missing; install it as root (apt-get install -y chromium) or set KUBEVIGIL_CHROMIUM to a Chromium binary"
  local start=$SECONDS
  log "installing chromium with apt-get"
  # apt and dpkg chatter goes to a log that is shown only when the install fails.
  local status=0 aptlog
  aptlog="$(mktemp)"
  {
    apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  } >"$aptlog" 2>&1 || status=$?
  if [ "$status" != 0 ]; then
    tail -n 30 "$aptlog" >&2
    rm -f "$aptlog"
    die "apt-get failed (exit $status)"
  fi
  rm -f "$aptlog"
  [ -x "$CHROMIUM_BIN" ] || die "installed, but $CHROMIUM_BIN is still missing"
  log "installed $("$CHROMIUM_BIN" --version 2>/dev/null || echo chromium) in $((SECONDS - start))s"
}

cmd_path() {
  [ -x "$CHROMIUM_BIN" ] || { log "$CHROMIUM_BIN: missing (run scripts/chromium.sh install)"; return 3; }
  echo "$CHROMIUM_BIN"
}

cmd_status() {
  [ -x "$CHROMIUM_BIN" ] || { log "$CHROMIUM_BIN: missing"; return 3; }
  log "$CHROMIUM_BIN: $("$CHROMIUM_BIN" --version 2>/dev/null | head -n 1)"
}

case "${1:-}" in
  install) cmd_install ;;
  path) cmd_path ;;
  status) cmd_status ;;
  *) echo "usage: $0 install|path|status" >&2; exit 2 ;;
esac
