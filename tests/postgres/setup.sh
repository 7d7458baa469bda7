#!/usr/bin/env bash
# A PostgreSQL server on 127.0.0.1:${STATION_PG_PORT} that trusts local connections, for the
# tests that run the station on PostgreSQL (STATION_TEST_PG, tests/postgres.rs).
# Leaves a running server alone; otherwise installs Debian's package if needed
# and starts a throwaway cluster in /tmp. Fails loudly: CI requires it.
set -euo pipefail
STATION_PG_PORT=${STATION_PG_PORT:-5432}   # another port only to try this script beside a running server

if (exec 3<>/dev/tcp/127.0.0.1/${STATION_PG_PORT}) 2>/dev/null; then
    echo "postgres: already running on 127.0.0.1:${STATION_PG_PORT}"
    exit 0
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
data=/tmp/station-pgdata-$STATION_PG_PORT
run_as=()
if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root: the package's own user runs the server.
    run_as=(runuser -u postgres --)
fi
if [ ! -s "$data/PG_VERSION" ]; then
    rm -rf "$data"
    mkdir -p -m 700 "$data"
    if [ "$(id -u)" = 0 ]; then chown postgres "$data"; fi
    "${run_as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
fi
mkdir -p /tmp/station-pgsock
if [ "$(id -u)" = 0 ]; then chown postgres /tmp/station-pgsock; fi
"${run_as[@]}" "$bin/pg_ctl" -D "$data" -l /tmp/station-pg-$STATION_PG_PORT.log -w \
    -o "-c listen_addresses=127.0.0.1 -p ${STATION_PG_PORT} -k /tmp/station-pgsock -c max_connections=300 -c fsync=off" start
pg_isready -h 127.0.0.1 -p ${STATION_PG_PORT}
# The databases the machine's own server has.
for db in test root; do
    psql -h 127.0.0.1 -p "$STATION_PG_PORT" -U postgres -qtc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 \
        || psql -h 127.0.0.1 -p "$STATION_PG_PORT" -U postgres -qc "CREATE DATABASE $db"
done
echo "postgres: started on 127.0.0.1:${STATION_PG_PORT} ($("$bin/postgres" --version))"
