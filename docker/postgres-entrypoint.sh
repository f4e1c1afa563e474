#!/bin/sh
# First start: a cluster with the superuser's password from POSTGRES_PASSWORD_FILE (scram, no trust).
# Then PostgreSQL in the foreground, logging to stderr (the container's log).
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb --username=postgres --pwfile="$POSTGRES_PASSWORD_FILE" --auth=scram-sha-256 --encoding=UTF8 \
    --locale=C.UTF-8 -D "$PGDATA"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c max_connections=300 -c logging_collector=off
