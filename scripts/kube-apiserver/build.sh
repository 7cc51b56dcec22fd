#!/usr/bin/env bash
# Build a real kube-apiserver (and a matching kubectl, and etcd) from the Go
# module proxy; no binary downloads, no Docker.  Idempotent: binaries that are
# already in the cache at the right version are kept. Usually run through
# scripts/kube-apiserver.sh build (which checks Go and takes a lock).
#
#   build.sh [CACHE_DIR]        (default ${KUBEVIGIL_CACHE_DIR:-~/.cache/kubevigil}/kube-apiserver)
#
# env: KAPI_K8S_VERSION   k8s.io/kubernetes version     (default v1.34.4)
#      KAPI_ETCD_VERSION  go.etcd.io/etcd/server/v3     (default v3.6.8)
#      KAPI_ETCD=debian   use Debian's etcd-server 3.4.23 (apt-get) instead of
#                         building etcd (works too, see README)
#      KAPI_SKIP_KUBECTL=1  do not build kubectl
#      GO                 go binary (default: go on PATH, else /usr/local/go/bin/go)
# Result: CACHE_DIR/bin/{kube-apiserver,kubectl,etcd}
set -euo pipefail
CACHE=${1:-${KAPI_CACHE:-${KUBEVIGIL_CACHE_DIR:-$HOME/.cache/kubevigil}/kube-apiserver}}
mkdir -p "$CACHE/bin" "$CACHE/src"
CACHE=$(cd "$CACHE" && pwd)
KV=${KAPI_K8S_VERSION:-v1.34.4}
EV=${KAPI_ETCD_VERSION:-v3.6.8}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
# GOTOOLCHAIN=local: build with this Go, never download another toolchain
export GOFLAGS=${GOFLAGS:--p=2} CGO_ENABLED=0 GOTOOLCHAIN=${GOTOOLCHAIN:-local}
T0=$(date +%s)
BUILT=
log() { echo "[build] $*" >&2; }
have() { [ -x "$CACHE/bin/$1" ] && grep -qx "$2" "$CACHE/bin/$1.version" 2>/dev/null; }

# ---------------------------------------------------------------- kubernetes
WANT=(kube-apiserver)
[ "${KAPI_SKIP_KUBECTL:-}" = 1 ] || WANT+=(kubectl)
TODO=()
for b in "${WANT[@]}"; do have "$b" "$KV" || TODO+=("$b"); done
if [ ${#TODO[@]} -gt 0 ]; then
  S=$CACHE/src/kubernetes-$KV
  mkdir -p "$S"
  cd "$S"
  # k8s.io/kubernetes replaces its staging modules (k8s.io/api, ...) with
  # ./staging/src/... paths, which are not part of the published module:
  # re-point every one of them at the published k8s.io/<x> v0.<minor>.<patch>.
  "$GO" mod download k8s.io/kubernetes@"$KV"
  KDIR=$("$GO" env GOMODCACHE)/k8s.io/kubernetes@$KV
  SV=v0.${KV#v1.}
  STAGING=$(awk '/^replace \(/{f=1;next} f&&/^\)/{f=0} f&&$2=="=>"&&$3~/^\.\/staging/{print $1}' "$KDIR/go.mod")
  GODIR=$(awk '$1=="go"{print $2; exit}' "$KDIR/go.mod")
  {
    echo "module kapi-build"
    echo
    echo "go $GODIR"
    echo
    # keep upstream's GODEBUG defaults for the main binary
    grep -E '^godebug ' "$KDIR/go.mod" || true
    echo
    echo "require k8s.io/kubernetes $KV"
    echo
    echo "replace ("
    for m in $STAGING; do echo "	$m => $m $SV"; done
    echo ")"
  } > go.mod
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    for b in "${TODO[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$b\""; done
    echo ")"
  } > tools.go
  log "go mod tidy (k8s.io/kubernetes $KV, $(echo $STAGING | wc -w) staging modules at $SV)"
  "$GO" mod tidy
  MINOR=${KV#v1.}; MINOR=${MINOR%%.*}
  LD="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LD="$LD -X $p.gitVersion=$KV -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
  done
  PKGS=(); for b in "${TODO[@]}"; do PKGS+=("k8s.io/kubernetes/cmd/$b"); done
  log "go build ${TODO[*]} ($GOFLAGS; 6-7 min cold on 2 busy cores)"
  t=$(date +%s)
  "$GO" build -trimpath -ldflags="$LD" -o "$CACHE/bin/" "${PKGS[@]}"
  for b in "${TODO[@]}"; do echo "$KV" > "$CACHE/bin/$b.version"; done
  log "built ${TODO[*]} in $(( $(date +%s) - t ))s"
  BUILT=1
else
  log "${WANT[*]} $KV already cached"
fi

# ---------------------------------------------------------------------- etcd
if [ "${KAPI_ETCD:-}" = debian ]; then
  if ! command -v etcd >/dev/null; then
    log "apt-get install etcd-server"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >&2
  fi
  log "etcd: $(etcd --version | head -1) from Debian ($(command -v etcd))"
elif have etcd "$EV"; then
  log "etcd $EV already cached"
else
  S=$CACHE/src/etcd-$EV
  mkdir -p "$S"
  cd "$S"
  # go.etcd.io/etcd/server/v3 is itself the etcd main package; its go.mod has
  # ../api-style replaces, so (like kubernetes) it is built from a wrapper module.
  printf 'module etcd-build\n\ngo 1.24.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$EV" > go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
  "$GO" mod tidy
  t=$(date +%s)
  "$GO" build -trimpath -ldflags="-s -w" -o "$CACHE/bin/etcd" go.etcd.io/etcd/server/v3
  echo "$EV" > "$CACHE/bin/etcd.version"
  log "built etcd $EV in $(( $(date +%s) - t ))s"
  BUILT=1
fi

[ -z "$BUILT" ] || ls -la "$CACHE/bin" >&2
log "done in $(( $(date +%s) - T0 ))s -> $CACHE/bin"
