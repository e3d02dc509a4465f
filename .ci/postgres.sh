#!/usr/bin/env bash
# A throw-away PostgreSQL server on 127.0.0.1:54329 for the sweep tests (trust auth, data in a temp dir).
#   .ci/postgres.sh start   initdb + start; prints the URL the tests read from $CNNLAB_TEST_POSTGRES
#   .ci/postgres.sh stop    stop it and delete its data
# Needs Debian's `postgresql` package (apt-get install -y postgresql). As root, the server runs as
# the `postgres` user, since PostgreSQL refuses to run as root.
set -euo pipefail
PORT=${CNNLAB_PG_PORT:-54329}
DATA=${CNNLAB_PG_DATA:-/tmp/cnnlab-pg-$PORT}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$BIN" ] || { echo "postgres.sh: PostgreSQL is not installed (apt-get install -y postgresql)" >&2; exit 1; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "${1:-}" in
  start)
    rm -rf "$DATA"; mkdir -p "$DATA"
    [ "$(id -u)" = 0 ] && chown postgres "$DATA"
    as_pg "$BIN/initdb" -D "$DATA/db" -U postgres -A trust >/dev/null
    as_pg "$BIN/pg_ctl" -D "$DATA/db" -l "$DATA/log" -w -o "-p $PORT -k $DATA -c listen_addresses=127.0.0.1" start >/dev/null
    as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres cnnlab_test
    echo "postgresql://postgres@127.0.0.1:$PORT/cnnlab_test"
    ;;
  stop)
    if [ -d "$DATA/db" ]; then as_pg "$BIN/pg_ctl" -D "$DATA/db" -m fast -w stop >/dev/null || true; fi
    rm -rf "$DATA"
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
