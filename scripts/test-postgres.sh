#!/usr/bin/env bash
# A private, throwaway PostgreSQL server for the tests, from Debian's postgresql package:
#   scripts/test-postgres.sh start   initdb (once) and start on 127.0.0.1; prints the admin URL
#   scripts/test-postgres.sh stop    stop it
# Tests create a database of their own per test on it. Data lives in a temporary folder (fsync off:
# nothing here needs to survive a crash). As root, the server runs as the `postgres` system user, since
# PostgreSQL refuses to run as root.
set -euo pipefail
command=${1:?usage: test-postgres.sh start|stop}
# Below Linux's ephemeral range (32768-60999): a port in it can be taken for a moment by any outgoing
# connection's local end, and the server then fails to start ("Address already in use"), as it once did.
port=${CODE_TEST_POSTGRES_PORT:-25432}
base=${CODE_TEST_POSTGRES_DIR:-/tmp/code-test-postgres-$port}
data="$base/data"
bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1)
if [[ -z "$bin" ]]; then
  echo "test-postgres: no PostgreSQL server found (apt-get install postgresql)" >&2
  exit 1
fi
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$command" in
  start)
    if [[ ! -f "$data/PG_VERSION" ]]; then
      mkdir -p "$base"
      [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$base"
      as_owner "$bin/initdb" --pgdata="$data" --username=code --auth=trust --no-sync --encoding=UTF8 --locale=C >"$base/initdb.log" 2>&1 \
        || { cat "$base/initdb.log" >&2; exit 1; }
    fi
    if ! as_owner "$bin/pg_ctl" --pgdata="$data" status >/dev/null 2>&1; then
      as_owner "$bin/pg_ctl" --pgdata="$data" --log="$base/server.log" --wait --timeout=60 \
        -o "-p $port -k $base -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
        start >/dev/null || { cat "$base/server.log" >&2; exit 1; }
    fi
    echo "postgres://code@127.0.0.1:$port/postgres?sslmode=disable"
    ;;
  stop)
    if [[ -f "$data/PG_VERSION" ]]; then
      as_owner "$bin/pg_ctl" --pgdata="$data" --mode=fast --wait stop >/dev/null 2>&1 || true
    fi
    ;;
  *)
    echo "usage: test-postgres.sh start|stop" >&2
    exit 64
    ;;
esac
