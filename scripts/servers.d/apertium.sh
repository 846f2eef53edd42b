#!/usr/bin/env bash
# apertium-apy (Debian package apertium-apy: Apertium's HTTP translation server) over the English pairs
# installed under /usr/share/apertium/modes, on 127.0.0.1.
#   apertium.sh start|stop|status|env
# Settings: CONV_ANALYTICS_APERTIUM_PORT (2737), CONV_ANALYTICS_APERTIUM_MODES (/usr/share/apertium/modes),
# CONV_ANALYTICS_SERVERS_DIR (<repo>/.servers). Another port and folder give a private instance.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
port="${CONV_ANALYTICS_APERTIUM_PORT:-2737}"
modes="${CONV_ANALYTICS_APERTIUM_MODES:-/usr/share/apertium/modes}"
dir="${CONV_ANALYTICS_SERVERS_DIR:-$root/.servers}/apertium"
pidfile="$dir/apy.pid"
name=apertium
. "$root/scripts/lib/process.sh"
url="http://127.0.0.1:$port"

ready() {  # ready = the Spanish-English pair is listed
  curl -fsS --max-time 2 "$url/listPairs" 2>/dev/null | grep -q '"sourceLanguage": *"spa", *"targetLanguage": *"eng"'
}

start() {
  if running; then echo "apertium: already running (pid $(cat "$pidfile"), $url)"; return 0; fi
  if ! command -v apertium-apy >/dev/null 2>&1 || [ ! -e "$modes/spa-eng.mode" ]; then
    echo "apertium: apertium-apy or the spa-eng pair is missing: run scripts/system-deps" >&2
    return 1
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "apertium: port $port is taken: stop that server or set CONV_ANALYTICS_APERTIUM_PORT" >&2; return 1
  fi
  mkdir -p "$dir"
  # apertium-apy has no bind-address option and listens on every interface; binding its server to
  # 127.0.0.1 before its main() runs keeps it on loopback like the other test servers.
  setsid /usr/bin/python3 -c '
import sys
import tornado.tcpserver
bind = tornado.tcpserver.TCPServer.bind
tornado.tcpserver.TCPServer.bind = lambda self, port, address=None, *a, **k: bind(self, port, "127.0.0.1", *a, **k)
from apertium_apy.apy import main
sys.argv[0] = "apertium-apy"
main()
' -p "$port" "$modes" >>"$dir/apy.out" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_ready 60 ready "$dir/apy.out" || return 1
  echo "apertium: ready at $url (pid $(cat "$pidfile"))"
}

stop() { stop_process 10; }

address() { echo "$url"; }

exports() {
  echo "export CONV_ANALYTICS_TRANSLATOR='apertium'"
  echo "export CONV_ANALYTICS_TRANSLATOR_URL='$url'"
}

serve "$@"
