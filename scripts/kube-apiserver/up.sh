#!/usr/bin/env bash
# Start a real etcd + kube-apiserver on 127.0.0.1 (free ports), with RBAC,
# static-token admin, service-account tokens, an audit log file AND an audit
# webhook (batch mode, 1s max wait). Usually run through scripts/kube-apiserver.sh up.
#
#   up.sh [WEBHOOK_URL]
#
# WEBHOOK_URL (or env KAPI_AUDIT_WEBHOOK_URL): where the apiserver POSTs
#   audit.k8s.io/v1 EventList batches.  Unset/empty: the bundled recorder.py
#   is started and saves every batch under $KAPI_STATE/webhook/.
#   "none": no webhook backend (audit log file only).
# env: KAPI_CACHE  build.sh's cache (default ${KUBEVIGIL_CACHE_DIR:-~/.cache/kubevigil}/kube-apiserver)
#      KAPI_BIN    the binaries (default $KAPI_CACHE/bin)
#      KAPI_STATE  certs, data, logs, pids   (default $KAPI_CACHE/run; wiped)
#      KAPI_ETCD   etcd binary path, or "debian" (etcd on PATH); default
#                  $KAPI_BIN/etcd, else etcd on PATH
#      KAPI_AUDIT_POLICY  audit policy file (default: the one kubevigil ships,
#                  deploy/kube-apiserver/audit-policy.yaml in this repository)
#      KAPI_AUDIT_WEBHOOK_TOKEN  bearer token the webhook presents (kubevigil's
#                  KUBEVIGIL_INGEST_TOKEN); default none. Needs an https:// URL:
#                  kube-apiserver (client-go) sends a kubeconfig's credentials
#                  only over TLS, never over plain http.
#      KAPI_AUDIT_WEBHOOK_CA  PEM CA that signed the webhook's serving certificate
#      KAPI_WATCH_PID  stop everything (down.sh) once this process exits, even
#                  if it is killed; KAPI_WATCH_PURGE=1 also removes $KAPI_STATE
#      KAPI_PORT   apiserver port (default: a free one);  KAPI_V  log -v (1)
# stdout: only `export ...` lines (so `eval "$(up.sh)"` works); progress on
# stderr.  The same lines are saved to $KAPI_STATE/env; PIDs to $KAPI_STATE/pids.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${KAPI_CACHE:-${KUBEVIGIL_CACHE_DIR:-$HOME/.cache/kubevigil}/kube-apiserver}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
BIN=${KAPI_BIN:-$CACHE/bin}
STATE=${KAPI_STATE:-$CACHE/run}
WEBHOOK_URL=${1:-${KAPI_AUDIT_WEBHOOK_URL:-}}
POLICY=${KAPI_AUDIT_POLICY:-$ROOT/deploy/kube-apiserver/audit-policy.yaml}
APISERVER=$BIN/kube-apiserver
case "${KAPI_ETCD:-}" in
  "") if [ -x "$BIN/etcd" ]; then ETCD=$BIN/etcd; else ETCD=$(command -v etcd || true); fi ;;
  debian) ETCD=$(command -v etcd || true) ;;
  *) ETCD=$KAPI_ETCD ;;
esac
log() { echo "[up] $*" >&2; }
[ -x "$APISERVER" ] || { log "no $APISERVER: run scripts/kube-apiserver.sh build first"; exit 1; }
[ -n "$ETCD" ] && [ -x "$ETCD" ] || { log "no etcd: run scripts/kube-apiserver.sh build (or apt-get install etcd-server)"; exit 1; }
[ -f "$POLICY" ] || { log "no audit policy $POLICY (KAPI_AUDIT_POLICY)"; exit 1; }
for t in openssl curl python3; do
  command -v "$t" >/dev/null || { log "$t is required (apt-get install -y openssl curl python3)"; exit 1; }
done
if [ -n "${KAPI_AUDIT_WEBHOOK_TOKEN:-}" ] && [[ $WEBHOOK_URL != https://* ]]; then
  log "KAPI_AUDIT_WEBHOOK_TOKEN needs an https:// webhook URL (kube-apiserver sends no credentials over http); got '$WEBHOOK_URL'"; exit 1
fi

if [ -f "$STATE/pids" ]; then
  for p in $(cut -d' ' -f2 "$STATE/pids"); do
    if kill -0 "$p" 2>/dev/null; then log "already running (pid $p): run down.sh first"; exit 1; fi
  done
fi
# The state directory is wiped: refuse one that holds anything but an earlier state.
if [ -d "$STATE" ] && [ -n "$(ls -A "$STATE")" ] && [ ! -d "$STATE/pki" ]; then
  log "$STATE is not empty and holds no earlier state (no pki/): choose another KAPI_STATE"; exit 1
fi
rm -rf "$STATE"
mkdir -p "$STATE"/{pki,audit}; mkdir -m 700 "$STATE/etcd"
: > "$STATE/pids"
# N distinct free ports on 127.0.0.1 (all held open at once, so they differ)
freeports() {
  python3 -c 'import socket,sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

# On any failure, stop what was started so far (down.sh reads the pids file).
trap 'rc=$?; if [ $rc -ne 0 ]; then log "failed; stopping what was started"; KAPI_STATE=$STATE "$HERE/down.sh" >&2 || true; fi' EXIT
if [ -n "${KAPI_WATCH_PID:-}" ]; then
  kill -0 "$KAPI_WATCH_PID" 2>/dev/null || { log "KAPI_WATCH_PID $KAPI_WATCH_PID is not running"; exit 1; }
  # setsid: the watchdog survives the end of the caller's process group
  # (it appends its own pid to the pids file)
  KAPI_STATE=$STATE KAPI_WATCH_PURGE=${KAPI_WATCH_PURGE:-} nohup setsid "$HERE/watchdog.sh" "$KAPI_WATCH_PID" \
    > /dev/null 2>&1 < /dev/null &
fi

# ---- PKI: CA, serving cert, service-account signing key pair, admin token ----
P=$STATE/pki
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/ca.key" -out "$P/ca.crt" \
  -days 3650 -subj "/CN=kapi-ca" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$P/apiserver.key" -out "$P/apiserver.csr" \
  -subj "/CN=kube-apiserver" 2>/dev/null
cat > "$P/apiserver.ext" <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
openssl x509 -req -in "$P/apiserver.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial \
  -out "$P/apiserver.crt" -days 3650 -extfile "$P/apiserver.ext" 2>/dev/null
openssl genrsa -out "$P/sa.key" 2048 2>/dev/null
openssl rsa -in "$P/sa.key" -pubout -out "$P/sa.pub" 2>/dev/null
ADMIN_TOKEN=$(openssl rand -hex 24)
# token,user,uid,"group1,group2"
echo "$ADMIN_TOKEN,admin,admin-uid,\"system:masters\"" > "$P/tokens.csv"
chmod 600 "$P"/*.key "$P/tokens.csv"

# ---- audit policy: kubevigil's own (deploy/kube-apiserver/audit-policy.yaml) --------
# KAPI_AUDIT_POLICY=file uses another. Keep serviceaccounts/token below
# RequestResponse: at that level the minted JWT (status.token) is in the audit
# event in clear text -- real apiserver behaviour.
cp "$POLICY" "$STATE/audit/policy.yaml"

# ---- audit webhook ----------------------------------------------------------
RECORDER_PID=
if [ -z "$WEBHOOK_URL" ]; then
  mkdir -p "$STATE/webhook"
  nohup python3 "$HERE/recorder.py" "$STATE/webhook" 0 > "$STATE/recorder.out" 2>&1 &
  RECORDER_PID=$!
  echo "recorder $RECORDER_PID" >> "$STATE/pids"
  for _ in $(seq 50); do [ -s "$STATE/webhook/port" ] && break; sleep 0.1; done
  WEBHOOK_URL="http://127.0.0.1:$(cat "$STATE/webhook/port")/audit"
  log "bundled recorder pid $RECORDER_PID -> $STATE/webhook ($WEBHOOK_URL)"
fi
WEBHOOK_FLAGS=()
if [ "$WEBHOOK_URL" != none ]; then
  # The bearer token kube-apiserver presents with every batch (kubevigil's ingest token).
  # client-go reads a kubeconfig's credentials only for a TLS server: over http:// the
  # apiserver would post without the token, and a receiver that wants one answers 401.
  WEBHOOK_USER="{}"
  if [ -n "${KAPI_AUDIT_WEBHOOK_TOKEN:-}" ]; then
    [[ $KAPI_AUDIT_WEBHOOK_TOKEN =~ ^[A-Za-z0-9._~+/=-]+$ ]] || { log "KAPI_AUDIT_WEBHOOK_TOKEN may hold only A-Z a-z 0-9 . _ ~ + / = -"; exit 1; }
    WEBHOOK_USER="{token: \"$KAPI_AUDIT_WEBHOOK_TOKEN\"}"
  fi
  WEBHOOK_CA=
  if [ -n "${KAPI_AUDIT_WEBHOOK_CA:-}" ]; then
    [ -f "$KAPI_AUDIT_WEBHOOK_CA" ] || { log "KAPI_AUDIT_WEBHOOK_CA: no file $KAPI_AUDIT_WEBHOOK_CA"; exit 1; }
    cp "$KAPI_AUDIT_WEBHOOK_CA" "$STATE/audit/webhook-ca.crt"
    WEBHOOK_CA="certificate-authority: $STATE/audit/webhook-ca.crt"
  fi
  cat > "$STATE/audit/webhook-kubeconfig.yaml" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: audit-sink
    cluster:
      server: $WEBHOOK_URL
      $WEBHOOK_CA
contexts:
  - name: audit-sink
    context:
      cluster: audit-sink
      user: audit-sink
users:
  - name: audit-sink
    user: $WEBHOOK_USER
current-context: audit-sink
EOF
  chmod 600 "$STATE/audit/webhook-kubeconfig.yaml"
  WEBHOOK_FLAGS=(--audit-webhook-config-file="$STATE/audit/webhook-kubeconfig.yaml"
    --audit-webhook-mode=batch --audit-webhook-batch-max-wait=1s
    --audit-webhook-version=audit.k8s.io/v1)
fi

# ---- etcd -------------------------------------------------------------------
# Ports are picked free, then bound by another process: another program may take one in
# between, so a start that fails to bind is retried on fresh ports (3 attempts).
start_etcd() {
  read -r ETCD_PORT PEER_PORT <<<"$(freeports 2)"
  nohup "$ETCD" --name kapi --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-cluster "kapi=http://127.0.0.1:$PEER_PORT" --initial-cluster-state new \
    --logger zap --log-level warn >> "$STATE/etcd.log" 2>&1 &
  ETCD_PID=$!
  echo "etcd $ETCD_PID" >> "$STATE/pids"
  local t0=$SECONDS
  until curl -sf --max-time 5 "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1; do
    kill -0 "$ETCD_PID" 2>/dev/null || return 1
    [ $((SECONDS - t0)) -lt 60 ] || { log "etcd not healthy after 60s:"; tail -20 "$STATE/etcd.log" >&2; exit 1; }
    sleep 0.2
  done
}
for attempt in 1 2 3; do
  start_etcd && break
  grep -q 'address already in use' "$STATE/etcd.log" && [ "$attempt" -lt 3 ] || { log "etcd died:"; tail -20 "$STATE/etcd.log" >&2; exit 1; }
  log "etcd: a port was taken meanwhile; retrying on others"
  rm -rf "$STATE/etcd"; mkdir -m 700 "$STATE/etcd"
done
log "etcd $("$ETCD" --version | head -1) pid $ETCD_PID on 127.0.0.1:$ETCD_PORT"

# ---- kube-apiserver -----------------------------------------------------------
ISSUER=https://kubernetes.default.svc.cluster.local
start_apiserver() {
  PORT=${KAPI_PORT:-$(freeports 1)}
  nohup "$APISERVER" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$PORT" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
    --client-ca-file="$P/ca.crt" --cert-dir="$P" \
    --token-auth-file="$P/tokens.csv" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true \
    --service-account-issuer="$ISSUER" \
    --service-account-key-file="$P/sa.pub" \
    --service-account-signing-key-file="$P/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --endpoint-reconciler-type=none \
    --audit-policy-file="$STATE/audit/policy.yaml" \
    --audit-log-path="$STATE/audit/audit.log" --audit-log-format=json \
    --audit-log-maxsize=100 --audit-log-maxbackup=2 \
    "${WEBHOOK_FLAGS[@]}" \
    --v="${KAPI_V:-1}" >> "$STATE/apiserver.log" 2>&1 &
  API_PID=$!
  echo "kube-apiserver $API_PID" >> "$STATE/pids"
  t0=$SECONDS
  until curl -sf --max-time 5 --cacert "$P/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" \
      "https://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; do
    kill -0 "$API_PID" 2>/dev/null || return 1
    [ $((SECONDS - t0)) -lt 120 ] || { log "kube-apiserver not ready after 120s"; tail -30 "$STATE/apiserver.log" >&2; exit 1; }
    sleep 0.5
  done
}
for attempt in 1 2 3; do
  start_apiserver && break
  [ -z "${KAPI_PORT:-}" ] && grep -q 'address already in use' "$STATE/apiserver.log" && [ "$attempt" -lt 3 ] \
    || { log "kube-apiserver died:"; tail -30 "$STATE/apiserver.log" >&2; exit 1; }
  log "kube-apiserver: port $PORT was taken meanwhile; retrying on another"
done
log "kube-apiserver pid $API_PID ready on https://127.0.0.1:$PORT after $((SECONDS - t0))s"

cat > "$STATE/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: kapi
    cluster:
      server: https://127.0.0.1:$PORT
      certificate-authority: $P/ca.crt
users:
  - name: admin
    user:
      token: $ADMIN_TOKEN
contexts:
  - name: admin@kapi
    context:
      cluster: kapi
      user: admin
current-context: admin@kapi
EOF
chmod 600 "$STATE/kubeconfig"

# values quoted for the shell (printf %q), so paths with spaces survive eval
ex() { printf 'export %s=%q\n' "$1" "$2"; }
{
  ex KUBECONFIG "$STATE/kubeconfig"
  ex KAPI_SERVER "https://127.0.0.1:$PORT"
  ex KAPI_CA "$P/ca.crt"
  ex KAPI_ADMIN_TOKEN "$ADMIN_TOKEN"
  ex KAPI_AUDIT_LOG "$STATE/audit/audit.log"
  ex KAPI_AUDIT_POLICY "$STATE/audit/policy.yaml"
  ex KAPI_AUDIT_WEBHOOK_URL "$WEBHOOK_URL"
  [ -z "$RECORDER_PID" ] || ex KAPI_WEBHOOK_DIR "$STATE/webhook"
  ex KAPI_STATE "$STATE"
  ex KAPI_PIDFILE "$STATE/pids"
  [ ! -x "$BIN/kubectl" ] || ex KAPI_KUBECTL "$BIN/kubectl"
} | tee "$STATE/env"
trap - EXIT
