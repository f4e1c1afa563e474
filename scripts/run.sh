#!/usr/bin/env bash
# Start or stop the platform's background processes (portal, worker, scheduler, Superset).
# Pid files and logs live in var/run and var/log. `start` restarts what runs.
set -euo pipefail
cd "$(dirname "$0")/.."
VAR="$(pwd)/var"
BIN="$(pwd)/.venv/bin"
mkdir -p "$VAR/run" "$VAR/log"
[ -f "$VAR/services.env" ] && source "$VAR/services.env"
PORTAL_BIND="${EGOV_PORTAL_BIND:-127.0.0.1:5000}"
# The development identity provider (demo/dev_idp.py), not in production.
IDP_URL="${EGOV_DEV_IDP_URL:-http://127.0.0.1:9400}"
IDP_HOSTPORT="${IDP_URL#*://}"; IDP_HOSTPORT="${IDP_HOSTPORT%%/*}"

stop_one() {
  local pidfile="$VAR/run/$1.pid"
  if [ -f "$pidfile" ]; then
    local pid; pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  fi
}

start_one() {
  local name=$1; shift
  stop_one "$name"
  nohup "$@" >>"$VAR/log/$name.log" 2>&1 &
  echo $! >"$VAR/run/$name.pid"
}

case "${1:-}" in
  start)
    if [ "${EGOV_ENV:-development}" != production ]; then
      start_one idp "$BIN/python" -m demo.dev_idp --host "${IDP_HOSTPORT%:*}" --port "${IDP_HOSTPORT##*:}"
    fi
    start_one portal "$BIN/gunicorn" --workers 2 --threads 4 --worker-class gthread --timeout 120 \
      --bind "$PORTAL_BIND" --access-logfile - "portal:create_app()"
    start_one worker "$BIN/egov" worker
    start_one scheduler "$BIN/rq" cron --url "$EGOV_REDIS_URL" ingest_workers.cron
    start_one watchdog "$BIN/egov" watchdog
    # Superset runs from its own venv (.venv-superset); `egov superset serve` execs its gunicorn.
    [ -x "$(pwd)/.venv-superset/bin/gunicorn" ] && start_one superset "$BIN/egov" superset serve
    for _ in $(seq 100); do
      curl -fsS "http://$PORTAL_BIND/healthz" >/dev/null 2>&1 && break
      sleep 0.3
    done
    ;;
  stop)
    for name in superset watchdog scheduler worker portal idp; do stop_one "$name"; done
    ;;
  status)
    for name in portal worker scheduler watchdog idp superset; do
      if [ -f "$VAR/run/$name.pid" ] && kill -0 "$(cat "$VAR/run/$name.pid")" 2>/dev/null; then
        echo "$name: running (pid $(cat "$VAR/run/$name.pid"), log var/log/$name.log)"
      else
        echo "$name: stopped"
      fi
    done
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
