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
    "${COMPOSE[@]}" up -d
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
  status) "${COMPOSE[@]}" ps ;;
  *) "${COMPOSE[@]}" "$@" ;;
esac
