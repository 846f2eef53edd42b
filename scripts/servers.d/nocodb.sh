#!/usr/bin/env bash
# A real NocoDB (npm `nocodb`, SQLite metadata) on 127.0.0.1, with a super user and an API token.
#   nocodb.sh start|stop|status|env
# The npm install (about 1.5 GB, 3-10 minutes: sqlite3 is built from source) is done once per version of
# scripts/nocodb/package.json and cached outside the checkout, under
# ${XDG_CACHE_HOME:-~/.cache}/conv-analytics/nocodb-<hash>, so fresh clones on the same machine (CI) reuse it.
# Settings: CONV_ANALYTICS_NOCODB_PORT (8080), CONV_ANALYTICS_SERVERS_DIR (<repo>/.servers, data and logs),
# CONV_ANALYTICS_NOCODB_APP (the install folder). Another port and folder give a private instance.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
port="${CONV_ANALYTICS_NOCODB_PORT:-8080}"
dir="${CONV_ANALYTICS_SERVERS_DIR:-$root/.servers}/nocodb"
stamp="$(sha256sum "$root/scripts/nocodb/package.json" | cut -c1-64)"
app="${CONV_ANALYTICS_NOCODB_APP:-${XDG_CACHE_HOME:-$HOME/.cache}/conv-analytics/nocodb-${stamp:0:16}}"
pidfile="$dir/nocodb.pid"
name=nocodb
. "$root/scripts/lib/process.sh"
url="http://127.0.0.1:$port"
email="admin@conv-analytics.local"

ready() { curl -fsS -m 2 -o /dev/null "$url/api/v1/health" 2>/dev/null; }

secret() {  # a random value kept (mode 600) in $dir/NAME, made once so restarts keep the same users
  local file="$dir/$1"
  if [ ! -s "$file" ]; then (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file"); fi
  cat "$file"
}

password() { echo "Adm1n-$(secret admin-password)"; }

json_field() {  # print field $1 of the JSON object on stdin (node is there anyway)
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];if(v===undefined)process.exit(1);console.log(v)})' "$1"
}

install() {
  if [ -f "$app/.installed" ] && [ "$(cat "$app/.installed")" = "$stamp" ]; then return 0; fi
  echo "nocodb: installing into $app (once; 2-3 minutes, log: $dir/install.log)"
  mkdir -p "$app" "$dir"
  cp "$root/scripts/nocodb/package.json" "$app/package.json"
  # --ignore-scripts: a dependency's preinstall insists on pnpm; sqlite3 is then built from source.
  if ! (cd "$app" && npm install --ignore-scripts --no-audit --no-fund && npm rebuild sqlite3) \
    >"$dir/install.log" 2>&1; then
    echo "nocodb: npm install failed; last lines of $dir/install.log:" >&2
    tail -n 20 "$dir/install.log" >&2
    return 1
  fi
  echo "$stamp" >"$app/.installed"
}

api_token() {  # a working xc-token: the stored one, or a new one made with the super user's session
  local token auth
  if [ -s "$dir/api-token" ]; then
    token="$(cat "$dir/api-token")"
    if curl -fsS -m 10 -o /dev/null -H "xc-token: $token" "$url/api/v2/meta/bases"; then return 0; fi
  fi
  auth="$(curl -fsS -m 30 -H 'Content-Type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$(password)\"}" \
    "$url/api/v1/auth/user/signin" | json_field token)"
  token="$(curl -fsS -m 30 -H 'Content-Type: application/json' -H "xc-auth: $auth" \
    -d '{"description":"conv-analytics"}' "$url/api/v1/tokens" | json_field token)"
  (umask 077; echo "$token" >"$dir/api-token")
}

start() {
  if running && ready; then echo "nocodb: already running (pid $(cat "$pidfile"), $url)"; return 0; fi
  if running; then stop >/dev/null; fi
  if ready; then echo "nocodb: port $port already answers: stop that server or set CONV_ANALYTICS_NOCODB_PORT" >&2; return 1; fi
  command -v node >/dev/null || { echo "nocodb: node (>= 20) is needed" >&2; return 1; }
  mkdir -p "$dir/data"
  install
  cp "$root/scripts/nocodb/server.js" "$app/server.js"
  (
    cd "$app"
    export PORT="$port" NC_DB="sqlite3://?d=$dir/data/noco.db" NC_TOOL_DIR="$dir/data/" \
      NC_AUTH_JWT_SECRET="$(secret jwt-secret)" NC_DISABLE_TELE=true NC_DISABLE_ERR_REPORTS=true \
      NC_ADMIN_EMAIL="$email" NC_ADMIN_PASSWORD="$(password)" NODE_ENV=production
    exec setsid node "$app/server.js" >>"$dir/nocodb.log" 2>&1 </dev/null
  ) &
  echo $! >"$pidfile"
  wait_ready 120 ready "$dir/nocodb.log" || return 1
  if ! api_token; then echo "nocodb: could not create an API token (log: $dir/nocodb.log)" >&2; return 1; fi
  echo "nocodb: ready at $url (pid $(cat "$pidfile"))"
}

stop() { stop_process 15; }

address() { echo "$url"; }

exports() {
  if ! running || [ ! -s "$dir/api-token" ]; then echo "nocodb: not running (scripts/servers start nocodb)" >&2; exit 3; fi
  echo "export NOCODB_URL='$url'"
  echo "export NOCODB_API_TOKEN='$(cat "$dir/api-token")'"
}

serve "$@"
