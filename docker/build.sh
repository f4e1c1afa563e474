#!/usr/bin/env bash
# Build the production images (docs/operations.md, "Deploying"). Run from anywhere; uses podman, or docker
# when ENGINE=docker. BASE is the Debian bookworm image everything starts from:
#   BASE=python:3.11-slim-bookworm   with a registry (the default when no local base exists)
#   BASE=localhost/debian-base:bookworm   without one: made here with debootstrap when missing
# Pip inside the builds checks certificates against this machine's CA bundle (mounted, never copied).
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE=${ENGINE:-podman}
LOCAL_BASE=localhost/debian-base:bookworm
if [ -z "${BASE:-}" ]; then
  # A local base made earlier wins; else the registry's image if it can be pulled; else a local base.
  if $ENGINE image exists "$LOCAL_BASE" 2>/dev/null; then BASE=$LOCAL_BASE
  elif timeout 60 $ENGINE pull -q python:3.11-slim-bookworm >/dev/null 2>&1; then BASE=python:3.11-slim-bookworm
  else BASE=$LOCAL_BASE; fi
fi
run() { echo "+ $*" >&2; "$@"; }
if [ "$BASE" = "$LOCAL_BASE" ] && ! $ENGINE image exists "$LOCAL_BASE" 2>/dev/null; then
  command -v debootstrap >/dev/null || (apt-get update -qq && apt-get install -y -qq debootstrap)
  root=$(mktemp -d /var/tmp/egov-base.XXXXXX)
  mirror=${DEBIAN_MIRROR:-$(grep -hoE 'https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | head -1)}
  run debootstrap --variant=minbase bookworm "$root" "${mirror:-http://deb.debian.org/debian}" >/dev/null
  tar -C "$root" -c . | run $ENGINE import - "$LOCAL_BASE"
  rm -rf "$root"
fi
make -s assets translations >/dev/null
FLAGS=(--build-arg "BASE=$BASE")
if [ "$ENGINE" = podman ]; then
  # runc: crun fails on these hosts' hybrid cgroups; the ulimit: the default exceeds the hard limit here.
  # --format docker: the OCI image format has no HEALTHCHECK, podman would drop it.
  FLAGS+=(--runtime runc --ulimit nofile=20000:20000 --format docker)
  [ -f /etc/ssl/certs/ca-certificates.crt ] && \
    FLAGS+=(-v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro --build-arg PIP_CERT=/run/host-ca.crt)
fi
for image in portal superset proxy postgres redis; do
  [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $image "* ]] && continue
  run nice -n 10 $ENGINE build "${FLAGS[@]}" --build-arg PORTAL_IMAGE=localhost/egovsad-portal:latest \
    -f "docker/Containerfile.$image" -t "localhost/egovsad-$image:latest" .
done
