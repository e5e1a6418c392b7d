#!/usr/bin/env bash
# Make sure the real PostgreSQL and Redis servers the suite uses are up:
# start them with the machine's own commands if they are down, fail loudly if not.
set -u
PGHOST=${PGHOST:-127.0.0.1}; PGPORT=${PGPORT:-5432}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}; REDIS_PORT=${REDIS_PORT:-6379}

pg_up() { pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null; }
redis_up() { [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }

if ! pg_up; then
  echo "PostgreSQL is down at $PGHOST:$PGPORT; starting it" >&2
  if [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! redis_up; then
  echo "Redis is down at $REDIS_HOST:$REDIS_PORT; starting it" >&2
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
fi

ok=1
pg_up || { echo "ERROR: PostgreSQL is not reachable at $PGHOST:$PGPORT and could not be started." >&2; ok=0; }
redis_up || { echo "ERROR: Redis is not reachable at $REDIS_HOST:$REDIS_PORT and could not be started." >&2; ok=0; }
[ "$ok" = 1 ] || exit 1
echo "PostgreSQL and Redis are up."
