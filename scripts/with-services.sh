#!/usr/bin/env bash
# Runs one command with a real Kafka broker and Redis next to it:
#
#   scripts/with-services.sh npx vitest run
#
# starts both (Kafka with fresh data, jars cached), waits until they answer, exports KAFKA_BROKERS
# and REDIS_URL, runs the command, always stops what it started (also on failure or Ctrl-C), and
# exits with the command's status. A broker or server that already runs (scripts/kafka.sh start by
# hand) is used as it is and left running.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARG...]" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
started=()

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local s
  for s in "${started[@]}"; do "$here/$s.sh" stop || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

begin=$SECONDS
if kafka_env="$("$here/kafka.sh" status 2>/dev/null)"; then
  echo "with-services: using the running Kafka broker" >&2
else
  "$here/kafka.sh" clean >&2
  started+=(kafka)
  kafka_env="$("$here/kafka.sh" start)"
fi
if redis_env="$("$here/redis.sh" status 2>/dev/null)"; then
  echo "with-services: using the running Redis" >&2
else
  started+=(redis)
  redis_env="$("$here/redis.sh" start)"
fi
"$here/redis.sh" wait
"$here/kafka.sh" wait
export KAFKA_BROKERS="${kafka_env#KAFKA_BROKERS=}"
export REDIS_URL="${redis_env#REDIS_URL=}"
echo "with-services: KAFKA_BROKERS=$KAFKA_BROKERS REDIS_URL=$REDIS_URL (ready in $((SECONDS - begin))s)" >&2

status=0
"$@" || status=$?
exit "$status"
