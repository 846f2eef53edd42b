#!/usr/bin/env bash
# SecantusDB, a MongoDB wire-protocol server (WiredTiger, one-node replica set, so transactions
# work), from the project's virtualenv, on 127.0.0.1. No genuine mongod can be installed here.
#   mongodb.sh start|stop|status|env
# Settings: CONV_ANALYTICS_MONGODB_PORT (27018), CONV_ANALYTICS_SERVERS_DIR (<repo>/.servers),
# CONV_ANALYTICS_PYTHON (<repo>/.venv/bin/python), CONV_ANALYTICS_MONGODB_OPTIONS (more secantusd-py
# flags, e.g. --auth or --standalone). Another port and folder give a private instance.
# With authentication: CONV_ANALYTICS_MONGODB_USER and CONV_ANALYTICS_MONGODB_PASSWORD (the user is
# created at the first start, with the root role in admin; the server then runs with --auth).
# With TLS: CONV_ANALYTICS_MONGODB_TLS=true (a CA and a server certificate for 127.0.0.1 and
# localhost are made once with openssl under <dir>/tls; clients trust <dir>/tls/ca.pem).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${CONV_ANALYTICS_PYTHON:-$root/.venv/bin/python}"
port="${CONV_ANALYTICS_MONGODB_PORT:-27018}"
dir="${CONV_ANALYTICS_SERVERS_DIR:-$root/.servers}/mongodb"
pidfile="$dir/secantusd.pid"
name=mongodb
. "$root/scripts/lib/process.sh"
database="${MONGODB_DATABASE:-conv_analytics}"
uri="mongodb://127.0.0.1:$port/?directConnection=true"
user="${CONV_ANALYTICS_MONGODB_USER:-}"
password="${CONV_ANALYTICS_MONGODB_PASSWORD:-}"
tls="${CONV_ANALYTICS_MONGODB_TLS:-false}"
tls_dir="$dir/tls"
if [ -n "$user" ] && [ -z "$password" ]; then
  echo "mongodb: CONV_ANALYTICS_MONGODB_USER needs CONV_ANALYTICS_MONGODB_PASSWORD" >&2; exit 2
fi

# client.py ACTION: ping (exit 0 when the server answers within a second) or create-user; the
# credentials travel in the environment, never on a command line
client() {
  MONGO_URI="$uri" MONGO_TLS_CA="$([ "$tls" = true ] && echo "$tls_dir/ca.pem" || true)" \
    MONGO_USER="$user" MONGO_PASSWORD="$password" "$python" - "$1" <<'EOF_PY'
import os
import sys
import pymongo
options = {"serverSelectionTimeoutMS": 1000, "connectTimeoutMS": 1000}
if os.environ["MONGO_TLS_CA"]:
    options.update(tls=True, tlsCAFile=os.environ["MONGO_TLS_CA"])
client = pymongo.MongoClient(os.environ["MONGO_URI"], **options)
try:
    if sys.argv[1] == "create-user":
        try:
            client.admin.command("createUser", os.environ["MONGO_USER"], pwd=os.environ["MONGO_PASSWORD"], roles=["root"])
        except pymongo.errors.OperationFailure as exc:
            if exc.code != 51003:  # the user exists already
                raise
    else:
        client.admin.command("ping")
except pymongo.errors.OperationFailure:
    if sys.argv[1] == "create-user":
        raise
    # it answered (refusing an unauthenticated ping under --auth): it is up
except pymongo.errors.PyMongoError:
    sys.exit(1)
EOF_PY
}
ready() { client ping; }

make_certificates() {  # a private CA and a server certificate signed by it, made once
  [ -f "$tls_dir/server.pem" ] && return 0
  mkdir -p "$tls_dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=conv-analytics test CA" \
    -keyout "$tls_dir/ca.key" -out "$tls_dir/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$tls_dir/server.key" -out "$tls_dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tls_dir/san.ext"
  openssl x509 -req -in "$tls_dir/server.csr" -CA "$tls_dir/ca.pem" -CAkey "$tls_dir/ca.key" \
    -CAcreateserial -days 3650 -extfile "$tls_dir/san.ext" -out "$tls_dir/server.pem" 2>/dev/null
  chmod 600 "$tls_dir"/*.key
}

launch() {  # launch EXTRA_FLAGS...: start the server in the background and wait until it answers
  local server flags=()
  server="$(dirname "$python")/secantusd-py"
  [ "$tls" = true ] && flags+=(--tls-cert-file "$tls_dir/server.pem" --tls-key-file "$tls_dir/server.key")
  # shellcheck disable=SC2086  # the options are meant to split into words
  setsid "$server" --host 127.0.0.1 --port "$port" --storage-path "$dir/data" "${flags[@]}" "$@" \
    ${CONV_ANALYTICS_MONGODB_OPTIONS:-} >>"$dir/secantusd.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_ready 30 ready "$dir/secantusd.log"
}

start() {
  if running; then echo "mongodb: already running (pid $(cat "$pidfile"), $uri)"; return 0; fi
  if [ ! -x "$(dirname "$python")/secantusd-py" ]; then
    echo "mongodb: $(dirname "$python")/secantusd-py not found: install the dev extra (.venv/bin/pip install -e '.[dev]')" >&2
    return 1
  fi
  mkdir -p "$dir/data"
  [ "$tls" = true ] && make_certificates
  if ready; then echo "mongodb: port $port already answers: stop that server or set CONV_ANALYTICS_MONGODB_PORT" >&2; return 1; fi
  if [ -n "$user" ]; then
    # SecantusDB provisions users on a server without --auth; it is then restarted with --auth
    launch || return 1
    client create-user || { stop_process >/dev/null; echo "mongodb: could not create the user" >&2; return 1; }
    stop_process >/dev/null
    launch --auth || return 1
  else
    launch || return 1
  fi
  echo "mongodb: ready at $uri${user:+ with authentication}$([ "$tls" = true ] && echo ' over TLS' || true) (pid $(cat "$pidfile"))"
}

stop() { stop_process 10; }

address() { echo "$uri"; }

exports() {
  echo "export MONGODB_URI='$uri'"
  echo "export MONGODB_DATABASE='$database'"
  if [ -n "$user" ]; then
    printf 'export MONGODB_USER=%q\nexport MONGODB_PASSWORD=%q\n' "$user" "$password"
    echo "export MONGODB_AUTH_SOURCE='admin'"
  fi
  if [ "$tls" = true ]; then
    echo "export MONGODB_TLS='true'"
    echo "export MONGODB_TLS_CA_FILE='$tls_dir/ca.pem'"
  fi
}

serve "$@"
