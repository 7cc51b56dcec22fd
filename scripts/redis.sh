#!/usr/bin/env bash
# A real Redis server (Debian's redis-server) as a plain background process, for tests and local
# development: no init system, append-only persistence in its own directory under the cache.
#
#   scripts/redis.sh start    install redis-server when missing, start it on a free port (or REDIS_PORT);
#                             prints REDIS_URL=redis://127.0.0.1:<port> (also in <cache>/redis/env)
#   scripts/redis.sh wait     block until it answers PING (REDIS_WAIT_TIMEOUT seconds, default 30)
#   scripts/redis.sh stop     SIGTERM, then SIGKILL after REDIS_STOP_TIMEOUT seconds (default 10)
#   scripts/redis.sh status   exit 0 and print REDIS_URL when running, exit 3 otherwise
#   scripts/redis.sh clean    stop and delete its directory
#
# KUBEVIGIL_CACHE_DIR moves the cache (default <repo>/.cache). Only the REDIS_URL line goes to
# stdout, so `eval "$(scripts/redis.sh start)"` works; progress goes to stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KUBEVIGIL_CACHE_DIR:-$ROOT/.cache}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
RDIR="$CACHE/redis"
ENV_FILE="$RDIR/env"
PID_FILE="$RDIR/redis.pid"
LOG_FILE="$RDIR/redis.log"
WAIT_TIMEOUT="${REDIS_WAIT_TIMEOUT:-30}"
STOP_TIMEOUT="${REDIS_STOP_TIMEOUT:-10}"

log() { echo "redis.sh: $*" >&2; }
die() { log "$*"; exit 1; }
PROCESS_PATTERN='redis-server'
# shellcheck source=lib/process.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/process.sh"

ensure_redis() {
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || die "redis-server is missing; install it (apt-get install -y redis-server)"
  log "installing redis-server with apt-get"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
}

free_port() {
  node -e '
    const s = require("node:net").createServer();
    s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });
  '
}

port_free() {
  node -e '
    const s = require("node:net").createServer().once("error", () => process.exit(1));
    s.listen(Number(process.argv[1]), "127.0.0.1", () => s.close(() => process.exit(0)));
  ' "$1"
}

url() {
  [ -f "$ENV_FILE" ] || return 1
  sed -n 's/^REDIS_URL=//p' "$ENV_FILE"
}

cmd_start() {
  local pid
  if pid="$(running_pid)"; then
    log "already running (pid $pid)"
    echo "REDIS_URL=$(url)"
    return 0
  fi
  ensure_redis
  mkdir -p "$RDIR/data"
  local port="${REDIS_PORT:-}"
  # A restart keeps the previous port when it is still free, so running clients reconnect.
  if [ -z "$port" ] && [ -s "$RDIR/port" ] && port_free "$(cat "$RDIR/port")"; then port="$(cat "$RDIR/port")"; fi
  [ -n "$port" ] || port="$(free_port)"
  echo "$port" >"$RDIR/port"
  [ -f "$LOG_FILE" ] && mv -f "$LOG_FILE" "$LOG_FILE.1"
  rm -f "$PID_FILE"
  # setsid: the server outlives this shell and its process group; it writes its own pid file.
  # Append-only persistence, as production needs it: a restart keeps the correlators' checkpoints
  # (without it, a restart splits the incidents of attacks in progress).
  setsid redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly yes --appendfsync everysec \
    --dir "$RDIR/data" --pidfile "$PID_FILE" --logfile "$LOG_FILE" --daemonize no \
    --protected-mode yes </dev/null >/dev/null 2>&1 &
  local waited=0
  while [ ! -s "$PID_FILE" ] && [ "$waited" -lt 50 ]; do sleep 0.1; waited=$((waited + 1)); done
  running_pid >/dev/null || { tail -n 20 "$LOG_FILE" >&2 2>/dev/null || true; die "redis-server did not start; see $LOG_FILE"; }
  echo "REDIS_URL=redis://127.0.0.1:$port" >"$ENV_FILE"
  log "started $(redis-server --version | cut -d' ' -f3) (pid $(cat "$PID_FILE"), port $port, log $LOG_FILE)"
  echo "REDIS_URL=redis://127.0.0.1:$port"
}

cmd_wait() {
  local u start=$SECONDS
  u="$(url)" || die "not started (no $ENV_FILE); run scripts/redis.sh start"
  while :; do
    running_pid >/dev/null || { tail -n 20 "$LOG_FILE" >&2 2>/dev/null || true; die "redis-server is not running (see $LOG_FILE)"; }
    if [ "$(redis-cli -u "$u" ping 2>/dev/null)" = PONG ]; then
      log "ready at $u after $((SECONDS - start))s"
      return 0
    fi
    [ $((SECONDS - start)) -lt "$WAIT_TIMEOUT" ] || die "no PONG from $u within ${WAIT_TIMEOUT}s (REDIS_WAIT_TIMEOUT); see $LOG_FILE"
    sleep 0.2
  done
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    log "running (pid $pid)"
    echo "REDIS_URL=$(url)"
    return 0
  fi
  log "not running"
  return 3
}

case "${1:-}" in
  start) cmd_start ;;
  wait) cmd_wait ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  clean) cmd_stop; rm -rf "$RDIR"; log "removed $RDIR" ;;
  *) echo "usage: $0 start|wait|stop|status|clean" >&2; exit 2 ;;
esac
