#!/usr/bin/env bash
# The production shape on this machine (`make prod-up` / `make prod-down` / `make prod-status`):
# images (docker/build.sh), secrets (docker/secrets.sh), a local CA and certificate (docker/tls.sh), then
# docker/compose.yaml with podman-compose. The portal answers at https://portal.egov.test:8443 once the
# names point to this host (e.g. a line "127.0.0.1 portal.egov.test dashboards.egov.test" in /etc/hosts).
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF="$PWD/docker/containers.conf"
COMPOSE=(podman-compose -p egovsad -f docker/compose.yaml)
need() { command -v "$1" >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${@:2}"); }

case "${1:-up}" in
  up)
    need podman podman runc debootstrap
    need podman-compose podman-compose
    bash docker/build.sh
    bash docker/secrets.sh docker/secrets >/dev/null
    [ -f docker/egov.env ] || cp docker/egov.env.example docker/egov.env
    set -a; source docker/egov.env; set +a
    bash docker/tls.sh var/tls "$EGOV_PORTAL_HOST" "$EGOV_DASHBOARDS_HOST"
    # The proxy reads certificate and key like every secret: single files from docker/secrets/ (0700).
    # Replace these two with the operator's certificate for a real deployment.
    [ -s docker/secrets/tls_cert.pem ] || install -m 644 var/tls/server.pem docker/secrets/tls_cert.pem
    [ -s docker/secrets/tls_key.pem ] || install -m 644 var/tls/server.key docker/secrets/tls_key.pem
    "${COMPOSE[@]}" up -d --force-recreate   # new images and settings take effect; volumes stay
    echo "Waiting for the portal through the proxy ..."
    for _ in $(seq 300); do
      if curl -fsS -o /dev/null --cacert var/tls/ca.pem --resolve "$EGOV_PORTAL_HOST:$EGOV_PROXY_PORT:127.0.0.1" \
           "https://$EGOV_PORTAL_HOST:$EGOV_PROXY_PORT/healthz"; then
        echo "Portal:     $EGOV_PORTAL_URL   (CA to trust: var/tls/ca.pem)"
        echo "Dashboards: $EGOV_SUPERSET_URL"
        exit 0
      fi
      sleep 2
    done
    echo "The portal did not answer through the proxy; see: podman-compose -f docker/compose.yaml logs" >&2
    exit 1 ;;
  down) "${COMPOSE[@]}" down ;;
  status)
    "${COMPOSE[@]}" ps
    # Run every health check now: podman schedules them with systemd timers, which hosts without systemd lack.
    for name in $(podman ps --filter label=io.podman.compose.project=egovsad --format '{{.Names}}'); do
      if podman healthcheck run "$name" >/dev/null 2>&1; then echo "$name: healthy"; else echo "$name: UNHEALTHY"; fi
    done ;;
  *) "${COMPOSE[@]}" "$@" ;;
esac
