#!/usr/bin/env bash
# A real Kubernetes API server (kube-apiserver v1.34.4 on etcd v3.6.8, built from the Go module
# proxy) on 127.0.0.1, with RBAC, a ValidatingAdmissionPolicy-capable admission chain and audit
# going to a log file and to an audit webhook: what test/kube-apiserver-e2e.test.ts points at
# kubevigil. The recipe is in scripts/kube-apiserver/ (README.md there: versions, timings, gotchas).
#
#   scripts/kube-apiserver.sh build          build kube-apiserver, kubectl and etcd into
#                                             <cache>/kube-apiserver/bin, once (≈12 min cold on 2
#                                             cores, 0 s cached); prints that directory
#   scripts/kube-apiserver.sh up [URL]       start etcd and kube-apiserver with the audit webhook
#                                             posting to URL (default: a recorder that keeps each
#                                             batch; "none": log file only); prints `export …`
#                                             lines, so `eval "$(scripts/kube-apiserver.sh up URL)"`
#   scripts/kube-apiserver.sh down [--purge] stop them (by their recorded pids); --purge also
#                                             deletes the state (certs, etcd data, audit log)
#   scripts/kube-apiserver.sh status         exit 0 when running (and print the `export …` lines),
#                                             3 otherwise
#   scripts/kube-apiserver.sh env            print the `export …` lines of the running server
#                                             (exit 3 when none runs)
#   scripts/kube-apiserver.sh attack         play the compromised-service-account attack against
#                                             the running server (scripts/kube-apiserver/attack.sh)
#
# Environment: KUBEVIGIL_CACHE_DIR (default ~/.cache/kubevigil; binaries in kube-apiserver/bin,
# state in kube-apiserver/run), KUBEVIGIL_KUBE_APISERVER_BIN (take the binaries from this
# directory instead), KAPI_STATE (another state directory: several servers can run at once, one
# per state directory), KAPI_AUDIT_POLICY (default deploy/kube-apiserver/audit-policy.yaml, the
# policy kubevigil ships), KAPI_AUDIT_WEBHOOK_TOKEN (bearer token the webhook presents:
# kubevigil's KUBEVIGIL_INGEST_TOKEN; https:// URLs only, as kube-apiserver sends no credentials
# over plain http), KAPI_AUDIT_WEBHOOK_CA (the CA of the webhook's serving certificate),
# KAPI_WATCH_PID (stop the server when that process exits),
# KAPI_PORT, KAPI_V; KAPI_K8S_VERSION, KAPI_ETCD_VERSION for build. Building needs Go 1.24 or newer
# (go on PATH or /usr/local/go/bin/go). Only results go to stdout; progress goes to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RECIPE="$HERE/kube-apiserver"
CACHE="${KUBEVIGIL_CACHE_DIR:-$HOME/.cache/kubevigil}"
KDIR="$CACHE/kube-apiserver"
BIN="${KUBEVIGIL_KUBE_APISERVER_BIN:-$KDIR/bin}"
export KAPI_CACHE="$KDIR" KAPI_BIN="$BIN"
export KAPI_STATE="${KAPI_STATE:-$KDIR/run}"

log() { echo "kube-apiserver.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# The Go toolchain (on PATH, or where the official tarball puts it), 1.24 or newer: the go
# directive of k8s.io/kubernetes v1.34 (GOTOOLCHAIN=local: never download another toolchain).
go_bin() {
  local go
  go="$(command -v go || true)"
  [ -n "$go" ] || [ ! -x /usr/local/go/bin/go ] || go=/usr/local/go/bin/go
  [ -n "$go" ] || die "Go is not installed: building kube-apiserver needs Go 1.24 or newer (go on PATH or /usr/local/go/bin/go; https://go.dev/dl/, e.g. tar -C /usr/local -xzf go1.26.*.linux-amd64.tar.gz)"
  local v
  v="$(GOTOOLCHAIN=local "$go" env GOVERSION 2>/dev/null || true)"
  [[ $v =~ ^go1\.([0-9]+) ]] || die "$go does not work (go env GOVERSION: '$v'); install Go 1.24 or newer"
  [ "${BASH_REMATCH[1]}" -ge 24 ] || die "$go is $v; building kube-apiserver v1.34 needs Go 1.24 or newer (https://go.dev/dl/)"
  echo "$go"
}

built() { [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kubectl" ] && [ -x "$BIN/etcd" ]; }

cmd_build() {
  if [ -n "${KUBEVIGIL_KUBE_APISERVER_BIN:-}" ]; then
    built || die "KUBEVIGIL_KUBE_APISERVER_BIN=$BIN lacks kube-apiserver, kubectl or etcd; unset it to build into $KDIR/bin"
    log "using the binaries in $BIN"
    echo "$BIN"
    return 0
  fi
  mkdir -p "$KDIR"
  # One build at a time per cache (two test runs starting together share the result).
  exec 9>"$KDIR/.build.lock"
  flock 9
  local go start=$SECONDS
  go="$(go_bin)"
  GO="$go" GOTOOLCHAIN=local "$RECIPE/build.sh" "$KDIR" >&2 \
    || die "the build failed (see above); the Go module proxy must be reachable (GOPROXY=$("$go" env GOPROXY))"
  exec 9>&-
  built || die "build.sh finished but $BIN lacks kube-apiserver, kubectl or etcd"
  log "binaries ready in $BIN ($((SECONDS - start))s)"
  echo "$BIN"
}

# True when the server of $KAPI_STATE runs: its pid file names a live kube-apiserver.
running() {
  [ -f "$KAPI_STATE/pids" ] && [ -f "$KAPI_STATE/env" ] || return 1
  local pid
  pid="$(awk '$1 == "kube-apiserver" { print $2 }' "$KAPI_STATE/pids" | tail -n 1)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q kube-apiserver
}

cmd_up() {
  if running; then
    log "already running ($KAPI_STATE); scripts/kube-apiserver.sh down stops it"
    cat "$KAPI_STATE/env"
    return 0
  fi
  built || die "no kube-apiserver, kubectl and etcd in $BIN: run scripts/kube-apiserver.sh build first (≈12 min the first time)"
  "$RECIPE/up.sh" "$@"
}

cmd_status() {
  if running; then
    log "running: $(awk '{ printf "%s %s  ", $1, $2 }' "$KAPI_STATE/pids")(state $KAPI_STATE)"
    cat "$KAPI_STATE/env"
    return 0
  fi
  log "not running (state $KAPI_STATE)"
  return 3
}

cmd_env() {
  running || { log "not running (state $KAPI_STATE)"; return 3; }
  cat "$KAPI_STATE/env"
}

cmd_attack() {
  running || die "not running: scripts/kube-apiserver.sh up first"
  # shellcheck disable=SC1091 # the env file up.sh wrote
  source "$KAPI_STATE/env"
  "$RECIPE/attack.sh"
}

case "${1:-}" in
  build) cmd_build ;;
  up) shift; cmd_up "$@" ;;
  down) shift; "$RECIPE/down.sh" "$@" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  attack) cmd_attack ;;
  *) echo "usage: $0 build|up [WEBHOOK_URL]|down [--purge]|status|env|attack" >&2; exit 2 ;;
esac
