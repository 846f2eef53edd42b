#!/usr/bin/env bash
# SecantusDB, a MongoDB wire-protocol server (WiredTiger, one-node replica set, so transactions
# work), from the project's virtualenv, on 127.0.0.1. No genuine mongod can be installed here.
#   mongodb.sh start|stop|status|env
# Settings: CONV_ANALYTICS_MONGODB_PORT (27018), CONV_ANALYTICS_SERVERS_DIR (<repo>/.servers),
# CONV_ANALYTICS_PYTHON (<repo>/.venv/bin/python), CONV_ANALYTICS_MONGODB_OPTIONS (more secantusd-py
# flags, e.g. --auth or --standalone). Another port and folder give a private instance.
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


ping() {  # exit 0 when the server answers within a second
  "$python" - "$uri" <<'EOF'
import sys
import pymongo
client = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=1000, connectTimeoutMS=1000)
try:
    client.admin.command("ping")
except pymongo.errors.OperationFailure:
    pass  # it answered (refusing an unauthenticated ping under --auth): it is up
except pymongo.errors.PyMongoError:
    sys.exit(1)
EOF
}

start() {
  if running; then echo "mongodb: already running (pid $(cat "$pidfile"), $uri)"; return 0; fi
  local server
  server="$(dirname "$python")/secantusd-py"
  if [ ! -x "$server" ]; then
    echo "mongodb: $server not found: install the dev extra (.venv/bin/pip install -e '.[dev]')" >&2
    return 1
  fi
  if ping; then echo "mongodb: port $port already answers: stop that server or set CONV_ANALYTICS_MONGODB_PORT" >&2; return 1; fi
  mkdir -p "$dir/data"
  # shellcheck disable=SC2086  # the options are meant to split into words
  setsid "$server" --host 127.0.0.1 --port "$port" --storage-path "$dir/data" \
    ${CONV_ANALYTICS_MONGODB_OPTIONS:-} >>"$dir/secantusd.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_ready 30 ping "$dir/secantusd.log" || return 1
  echo "mongodb: ready at $uri (pid $(cat "$pidfile"))"
}

stop() { stop_process 10; }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running && ping; then echo "mongodb: running at $uri (pid $(cat "$pidfile"))"; else echo "mongodb: stopped"; exit 3; fi ;;
  env)
    echo "export MONGODB_URI='$uri'"
    echo "export MONGODB_DATABASE='$database'"
    ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
