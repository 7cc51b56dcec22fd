#!/usr/bin/env bash
# Debian's Prometheus and Alertmanager, for the tests that drive kubevigil's Alertmanager receiver
# with the real sender (test/alertmanager-real.test.ts). Installing the packages starts nothing (no
# init system here): the test harness (test/helpers/prometheus.ts) starts each as a process on free
# ports with its own config and storage directory.
#
#   scripts/prometheus.sh install   apt-get install prometheus and prometheus-alertmanager when missing
#                                   (quiet, idempotent; a no-op when both binaries exist)
#   scripts/prometheus.sh status    print the binaries and versions; exit 3 when one is missing
#
# Progress goes to stderr; nothing is printed on stdout.
set -euo pipefail

PROMETHEUS_BIN=/usr/bin/prometheus
ALERTMANAGER_BIN=/usr/bin/prometheus-alertmanager

log() { echo "prometheus.sh: $*" >&2; }
die() { log "$*"; exit 1; }

missing_packages() {
  local pkgs=()
  [ -x "$PROMETHEUS_BIN" ] || pkgs+=(prometheus)
  [ -x "$ALERTMANAGER_BIN" ] || pkgs+=(prometheus-alertmanager)
  echo "${pkgs[@]}"
}

cmd_install() {
  local pkgs
  pkgs="$(missing_packages)"
  if [ -z "$pkgs" ]; then
    log "prometheus and prometheus-alertmanager already installed"
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "missing: $pkgs; install them as root (apt-get install -y $pkgs)"
  local list
  read -r -a list <<<"$pkgs"
  local start=$SECONDS
  log "installing $pkgs with apt-get"
  # Debian's postinst scripts try to start the services; without an init system that fails
  # harmlessly, and policy-rc.d 101 makes them not even try.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
  fi
  # apt and dpkg chatter goes to a log that is shown only when the install fails.
  local status=0 aptlog
  aptlog="$(mktemp)"
  {
    apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${list[@]}"
  } >"$aptlog" 2>&1 || status=$?
  [ "$created_policy" = 0 ] || rm -f "$policy"
  if [ "$status" != 0 ]; then
    tail -n 30 "$aptlog" >&2
    rm -f "$aptlog"
    die "apt-get failed (exit $status)"
  fi
  rm -f "$aptlog"
  [ -z "$(missing_packages)" ] || die "installed, but $(missing_packages) still missing its binary"
  log "installed $pkgs in $((SECONDS - start))s"
}

cmd_status() {
  local ok=0
  for b in "$PROMETHEUS_BIN" "$ALERTMANAGER_BIN"; do
    if [ -x "$b" ]; then log "$b: $("$b" --version 2>&1 | head -n 1)"; else log "$b: missing"; ok=3; fi
  done
  return "$ok"
}

case "${1:-}" in
  install) cmd_install ;;
  status) cmd_status ;;
  *) echo "usage: $0 install|status" >&2; exit 2 ;;
esac
