#!/usr/bin/env bash
# Helm, for the tests that lint and render the chart in charts/kubevigil (test/helm.test.ts). No
# release binary can be downloaded here, so helm is built from source with the Go toolchain, from
# the Go module proxy, and cached in ~/.cache/kubevigil/bin: the first build takes minutes, every
# later run finds the binary and returns at once.
#
#   scripts/helm.sh install   go install helm.sh/helm/v4/cmd/helm@$HELM_VERSION into the cache when
#                             the cached binary is missing or of another version; prints its path
#   scripts/helm.sh path      print the path of the cached binary; exit 3 when it is missing
#
# The path is the only thing printed on stdout; progress goes to stderr.
set -euo pipefail

HELM_VERSION=v4.3.2
HELM_MODULE=helm.sh/helm/v4
BIN_DIR="${HOME}/.cache/kubevigil/bin"
HELM_BIN="$BIN_DIR/helm"

log() { echo "helm.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# The Go toolchain: on PATH, or where the official tarball puts it.
go_bin() {
  if command -v go >/dev/null 2>&1; then
    command -v go
  elif [ -x /usr/local/go/bin/go ]; then
    echo /usr/local/go/bin/go
  else
    return 1
  fi
}

# True when the cached binary runs and is the pinned version (the build stamps it, as helm's
# release builds do; `helm version` of a plain `go install` would say only "v4.3").
cached() {
  [ -x "$HELM_BIN" ] || return 1
  [ "$("$HELM_BIN" version --template '{{.Version}}' 2>/dev/null)" = "$HELM_VERSION" ]
}

cmd_install() {
  if cached; then
    log "helm $HELM_VERSION already built"
    echo "$HELM_BIN"
    return 0
  fi
  local go
  go="$(go_bin)" || die "no Go toolchain (go on PATH or /usr/local/go/bin/go); helm is built from source with it"
  mkdir -p "$BIN_DIR"
  local start=$SECONDS
  log "building helm $HELM_VERSION with $("$go" version | awk '{ print $3 }') (a few minutes the first time)"
  # GOTOOLCHAIN=local: build with the installed Go instead of fetching another toolchain.
  # CGO_ENABLED=0, -trimpath, -ldflags: as helm's Makefile builds its releases (a static binary,
  # no C compiler needed, stripped, stamped with its version).
  local status=0 buildlog
  buildlog="$(mktemp)"
  GOBIN="$BIN_DIR" GOTOOLCHAIN=local CGO_ENABLED=0 \
    "$go" install -trimpath -ldflags "-w -s -X $HELM_MODULE/internal/version.version=$HELM_VERSION" \
    "$HELM_MODULE/cmd/helm@$HELM_VERSION" >"$buildlog" 2>&1 || status=$?
  if [ "$status" != 0 ]; then
    tail -n 30 "$buildlog" >&2
    rm -f "$buildlog"
    die "go install failed (exit $status)"
  fi
  rm -f "$buildlog"
  cached || die "built, but $HELM_BIN does not run or is not $HELM_VERSION"
  log "built helm $HELM_VERSION in $((SECONDS - start))s"
  echo "$HELM_BIN"
}

cmd_path() {
  if [ -x "$HELM_BIN" ]; then
    echo "$HELM_BIN"
  else
    log "$HELM_BIN: missing (bash scripts/helm.sh install builds it)"
    return 3
  fi
}

case "${1:-}" in
  install) cmd_install ;;
  path) cmd_path ;;
  *) echo "usage: $0 install|path" >&2; exit 2 ;;
esac
