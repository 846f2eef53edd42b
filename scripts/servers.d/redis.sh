#!/usr/bin/env bash
# Redis (Debian's redis-server) as a throwaway broker and result backend for the Celery executor, on
# 127.0.0.1, nothing saved to disk.
#   redis.sh start|stop|status|env
# Settings: CONV_ANALYTICS_REDIS_PORT (6379), CONV_ANALYTICS_SERVERS_DIR (<repo>/.servers).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
port="${CONV_ANALYTICS_REDIS_PORT:-6379}"
dir="${CONV_ANALYTICS_SERVERS_DIR:-$root/.servers}/redis"
pidfile="$dir/redis.pid"
name=redis
. "$root/scripts/lib/process.sh"
url="redis://127.0.0.1:$port"

ready() { [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; }

start() {
  if running; then echo "redis: already running (pid $(cat "$pidfile"), $url)"; return 0; fi
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "redis: redis-server is missing: run scripts/system-deps" >&2; return 1
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "redis: port $port is taken: stop that server or set CONV_ANALYTICS_REDIS_PORT" >&2; return 1
  fi
  mkdir -p "$dir"
  setsid redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --dir "$dir" >>"$dir/redis.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_ready 30 ready "$dir/redis.log" || return 1
  echo "redis: ready at $url (pid $(cat "$pidfile"))"
}

stop() { stop_process 10; }

address() { echo "$url"; }

exports() {
  echo "export CONV_ANALYTICS_CELERY_BROKER_URL='$url/0'"
  echo "export CONV_ANALYTICS_CELERY_BACKEND_URL='$url/1'"
}

serve "$@"
