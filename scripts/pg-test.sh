#!/usr/bin/env bash
# Starts (or finds running) a throwaway PostgreSQL server for the tests, on 127.0.0.1 with
# trust authentication and its data under /tmp, and prints its URL. Debian's postgresql package
# provides the server (scripts/setup.sh installs it). Stop it with: scripts/pg-test.sh stop
set -euo pipefail
port=${ZKINFER_TEST_PG_PORT:-55432}
dir=/tmp/zkinfer-pg-$port
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "no PostgreSQL server found (apt-get install postgresql)" >&2
  exit 1
fi
# initdb and postgres refuse to run as root: run them as the package's postgres user.
as_db() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "${1:-}" = stop ]; then
  as_db "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
  exit 0
fi
if ! as_db "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  rm -rf "$dir"
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_db "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  as_db "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c max_connections=200 -c fsync=off" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
fi
echo "postgres://postgres@127.0.0.1:$port/postgres"
