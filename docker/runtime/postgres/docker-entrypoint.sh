#!/usr/bin/env bash
# Entry point of the local postgres:15-bookworm equivalent (see Dockerfile): initializes PGDATA on
# the first start from POSTGRES_USER, POSTGRES_DB and POSTGRES_PASSWORD[_FILE], then runs postgres.
set -Eeuo pipefail

# VAR or VAR_FILE (the content of the file named by VAR_FILE), as the official image reads secrets.
file_env() {
  local var=$1 file_var="${1}_FILE" default=${2:-}
  if [[ -n ${!var:-} && -n ${!file_var:-} ]]; then
    echo "error: both $var and $file_var are set" >&2
    exit 1
  fi
  local value=$default
  if [[ -n ${!var:-} ]]; then
    value=${!var}
  elif [[ -n ${!file_var:-} ]]; then
    value=$(<"${!file_var}")
  fi
  export "$var"="$value"
  unset "$file_var"
}

if [[ ${1:0:1} == - ]]; then set -- postgres "$@"; fi
if [[ $1 != postgres ]]; then exec "$@"; fi

if [[ $(id -u) == 0 ]]; then
  # Started as root: own the data and socket folders, then run this script again as postgres.
  install -d -m 0700 -o postgres -g postgres "$PGDATA"
  install -d -m 3777 -o postgres -g postgres /var/run/postgresql
  find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

mkdir -p "$PGDATA"
chmod 0700 "$PGDATA" 2>/dev/null || true

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  if [[ -z $POSTGRES_PASSWORD && ${POSTGRES_HOST_AUTH_METHOD:-} != trust ]]; then
    echo "error: the database is uninitialized and no password is set:" \
      "set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
    exit 1
  fi
  auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS holds several options, split on purpose
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=trust --auth-host="$auth" --encoding=UTF8 ${POSTGRES_INITDB_ARGS:-} >/dev/null
  printf 'host all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

  # A server on the Unix socket only, for the first database and the init scripts.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start >/dev/null
  export PGUSER=$POSTGRES_USER PGHOST=/var/run/postgresql
  if [[ $POSTGRES_DB != postgres ]]; then
    psql -v ON_ERROR_STOP=1 --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";' >/dev/null
  fi
  for script in /docker-entrypoint-initdb.d/*; do
    case $script in
      *.sql) psql -v ON_ERROR_STOP=1 --dbname "$POSTGRES_DB" -f "$script" ;;
      *.sh) bash "$script" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  unset PGUSER PGHOST
  echo "docker-entrypoint: database $POSTGRES_DB initialized for user $POSTGRES_USER"
fi
unset POSTGRES_PASSWORD

exec "$@"
