#!/usr/bin/env bash
# Start a throwaway PostgreSQL for the tests and print its URL on stdout.
# Installs Debian's server when it is missing (root only); prints nothing if
# no server can be had, and the PostgreSQL tests then skip with a message.
set -u
log() { echo "postgres.sh: $*" >&2; }

if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing postgresql from Debian's packages"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2 || { log "install failed"; exit 0; }
  else
    log "no PostgreSQL server and not root: skipping"; exit 0
  fi
fi
BIN=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n1)")
PGDATA=${CONSENTRY_PGDATA:-/tmp/consentry-pgdata}
PORT=${CONSENTRY_PGPORT:-54329}
RUNAS=""
[ "$(id -u)" = 0 ] && RUNAS="runuser -u postgres --"

if ! $RUNAS "$BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA" && [ -n "$RUNAS" ] && chown postgres:postgres "$PGDATA"
    $RUNAS "$BIN/initdb" -D "$PGDATA" -A trust -U postgres >/dev/null || { log "initdb failed"; exit 0; }
  fi
  $RUNAS "$BIN/pg_ctl" -D "$PGDATA" -o "-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off" \
    -l "$PGDATA/server.log" -w start >/dev/null || { log "start failed, see $PGDATA/server.log"; exit 0; }
fi
$RUNAS "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='consentry_test'" | grep -q 1 \
  || $RUNAS "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres consentry_test
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/consentry_test"
