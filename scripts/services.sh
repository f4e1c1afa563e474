#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer, and write their URLs to var/services.env.
#
# Uses DATABASE_URL (a superuser URL) and REDIS_URL when they answer; otherwise
# the loopback defaults; otherwise starts project-local instances under var/
# from Debian's binaries, installing postgresql or redis-server with apt when
# they are missing. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VAR="$ROOT/var"
mkdir -p "$VAR/log" "$VAR/run"

if [ "${1:-}" = stop ]; then
  # Stops only the project-local instances this script started.
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -f "$VAR/pg/data/postmaster.pid" ] && [ -n "$PGBIN" ]; then
    RUNAS=""; [ "$(id -u)" = 0 ] && RUNAS="runuser -u postgres --"
    $RUNAS "$PGBIN/pg_ctl" -D "$VAR/pg/data" -m fast stop >/dev/null && echo "Stopped project-local PostgreSQL."
  fi
  if [ -f "$VAR/run/redis.pid" ]; then
    kill "$(cat "$VAR/run/redis.pid")" 2>/dev/null && echo "Stopped project-local Redis."
    rm -f "$VAR/run/redis.pid"
  fi
  exit 0
fi

PG_URL="${DATABASE_URL:-${EGOV_ADMIN_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}}"
REDIS="${REDIS_URL:-${EGOV_REDIS_URL:-redis://127.0.0.1:6379/0}}"
LOCAL_PG_PORT=55432
LOCAL_REDIS_PORT=56379

apt_install() {
  if ! command -v apt-get >/dev/null; then echo "Need $* but apt-get is not available" >&2; exit 1; fi
  echo "Installing $* with apt-get ..."
  [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ] \
    || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_answers() { psql "$1" -Atqc 'select 1' >/dev/null 2>&1; }
redis_answers() { redis-cli -u "$1" ping 2>/dev/null | grep -q PONG; }

command -v psql >/dev/null || apt_install postgresql-client
command -v redis-cli >/dev/null || apt_install redis-tools

if ! pg_answers "$PG_URL"; then
  PG_URL="postgresql://postgres@127.0.0.1:${LOCAL_PG_PORT}/postgres"
  if ! pg_answers "$PG_URL"; then
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
      apt_install postgresql
      PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    fi
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$VAR/pg" postgres
    mkdir -p "$VAR/pg"
    chown postgres "$VAR/pg"
    RUNAS=""
    [ "$(id -u)" = 0 ] && RUNAS="runuser -u postgres --"
    if [ ! -f "$VAR/pg/data/PG_VERSION" ]; then
      echo "Creating a project-local PostgreSQL cluster in var/pg ..."
      $RUNAS "$PGBIN/initdb" -D "$VAR/pg/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    echo "Starting project-local PostgreSQL on 127.0.0.1:${LOCAL_PG_PORT} ..."
    $RUNAS "$PGBIN/pg_ctl" -D "$VAR/pg/data" -l "$VAR/pg/postgres.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p ${LOCAL_PG_PORT} -k $VAR/pg" start >/dev/null
  fi
fi

if ! redis_answers "$REDIS"; then
  REDIS="redis://127.0.0.1:${LOCAL_REDIS_PORT}/0"
  if ! redis_answers "$REDIS"; then
    command -v redis-server >/dev/null || apt_install redis-server
    mkdir -p "$VAR/redis"
    echo "Starting project-local Redis on 127.0.0.1:${LOCAL_REDIS_PORT} ..."
    redis-server --daemonize yes --bind 127.0.0.1 --port "$LOCAL_REDIS_PORT" --save "" --appendonly no \
      --dir "$VAR/redis" --pidfile "$VAR/run/redis.pid" --logfile "$VAR/log/redis.log"
    for _ in $(seq 50); do redis_answers "$REDIS" && break; sleep 0.1; done
  fi
fi

pg_answers "$PG_URL" || { echo "PostgreSQL does not answer at $PG_URL" >&2; exit 1; }
redis_answers "$REDIS" || { echo "Redis does not answer at $REDIS" >&2; exit 1; }

cat > "$VAR/services.env" <<ENV
export EGOV_ADMIN_DATABASE_URL='$PG_URL'
export EGOV_REDIS_URL='$REDIS'
ENV
echo "PostgreSQL: $PG_URL"
echo "Redis:      $REDIS"
