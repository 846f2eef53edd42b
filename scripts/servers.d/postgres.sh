#!/usr/bin/env bash
# PostgreSQL (Debian's server binaries) as a private cluster for Dagster's run, event-log and schedule
# storage (dagster-postgres), on 127.0.0.1: made with initdb on first start, run with pg_ctl.
#   postgres.sh start|stop|status|env
# Settings: CONV_ANALYTICS_POSTGRES_PORT (5432), CONV_ANALYTICS_POSTGRES_BIN (the newest
# /usr/lib/postgresql/*/bin), CONV_ANALYTICS_SERVERS_DIR (<repo>/.servers). The cluster has one role
# and database, both `dagster`, with a password (scram-sha-256 over TCP). initdb refuses root, so
# under root the cluster belongs to the `postgres` user and its commands run as that user; where that
# user cannot reach the folder (a checkout under /root), the cluster lives in a folder of its own
# under /tmp, named in $CONV_ANALYTICS_SERVERS_DIR/postgres/base.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
port="${CONV_ANALYTICS_POSTGRES_PORT:-5432}"
dir="${CONV_ANALYTICS_SERVERS_DIR:-$root/.servers}/postgres"
bin="${CONV_ANALYTICS_POSTGRES_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
base="$dir"  # the cluster's folder: data/ and postgres.log
[ -s "$dir/base" ] && base="$(cat "$dir/base")"
data="$base/data"
log="$base/postgres.log"
user=dagster password=dagster database=dagster
name=postgres
. "$root/scripts/lib/process.sh"  # its running() is replaced below: pg_ctl knows, no pid file

as_owner() {  # run a server command as the cluster's owner (postgres under root, else ourselves)
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ready() { "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U "$user" -d "$database"; }
running() { [ -f "$data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; }

init() {  # a new cluster, owned by whoever runs it
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || { echo "postgres: no 'postgres' user to own the cluster: run scripts/system-deps" >&2; return 1; }
    chown postgres: "$dir"
    if ! runuser -u postgres -- test -w "$dir"; then  # a parent folder is closed to other users
      base="$(mktemp -d /tmp/conv-analytics-postgres.XXXXXX)"
      chown postgres: "$base"
      echo "$base" >"$dir/base"
      data="$base/data" log="$base/postgres.log"
    fi
  fi
  local pwfile="$base/.pw"
  as_owner sh -c "umask 077 && printf '%s\n' '$password' >'$pwfile'"
  as_owner "$bin/initdb" -D "$data" -U "$user" --pwfile="$pwfile" --auth-host=scram-sha-256 \
    --auth-local=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
    echo "postgres: initdb failed; last log lines:" >&2; tail -n 20 "$dir/initdb.log" >&2; rm -rf "$data"; return 1
  }
  rm -f "$pwfile"
}

start() {
  if [ ! -x "$bin/pg_ctl" ]; then
    echo "postgres: no PostgreSQL server binaries at '$bin': run scripts/system-deps (Debian package postgresql)" >&2
    return 1
  fi
  if running; then echo "postgres: already running (port $port)"; return 0; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "postgres: port $port is taken: stop that server or set CONV_ANALYTICS_POSTGRES_PORT" >&2; return 1
  fi
  [ -f "$data/PG_VERSION" ] || init
  # the socket lives in the cluster's folder, so no system folder (/run/postgresql) is needed
  as_owner "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1 -k '$data' -c max_connections=200" start >/dev/null || {
    echo "postgres: not started; last log lines:" >&2; tail -n 20 "$log" >&2; return 1
  }
  if ! as_owner "$bin/psql" -h "$data" -p "$port" -U "$user" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1; then
    as_owner "$bin/createdb" -h "$data" -p "$port" -U "$user" "$database"
  fi
  ready || { echo "postgres: not answering on port $port" >&2; return 1; }
  echo "postgres: ready at 127.0.0.1:$port, database $database"
}

stop() {
  if ! running; then echo "postgres: not running"; return 0; fi
  as_owner "$bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null
  echo "postgres: stopped"
}

address() { echo "127.0.0.1:$port"; }

exports() {
  echo "export DAGSTER_PG_HOST='127.0.0.1'"
  echo "export DAGSTER_PG_PORT='$port'"
  echo "export DAGSTER_PG_USERNAME='$user'"
  echo "export DAGSTER_PG_PASSWORD='$password'"
  echo "export DAGSTER_PG_DB='$database'"
}

serve "$@"
